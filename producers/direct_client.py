"""Opening the C producer (producers/_direct_producer.c) on confluent-kafka's librdkafka.

The C producer drives librdkafka itself, through its public C API, so that a chunk of
events is queued in one call instead of one Python call per message. It uses the very
library confluent-kafka loaded, so both clients in a process are one librdkafka
version, and the configuration dicts of `meterpipe.kafka_config` mean the same to both.
"""

from __future__ import annotations

import ctypes.util
import functools
from collections.abc import Mapping
from pathlib import Path

import confluent_kafka  # noqa: F401  (loads the librdkafka that _loaded_librdkafka finds)

from meterpipe.errors import ConfigError
from meterpipe.kafka_config import KAFKA_LOG
from producers._direct_producer import DirectProducer

__all__ = ["librdkafka_path", "open_direct_producer"]

ClientValue = str | int | float | bool
PROCESS_MAPS = Path("/proc/self/maps")


def _loaded_librdkafka() -> str | None:
    """The librdkafka file mapped into this process (Linux): the one confluent-kafka uses."""
    if not PROCESS_MAPS.exists():
        return None
    for line in PROCESS_MAPS.read_text(encoding="utf-8", errors="replace").splitlines():
        path = line.split(maxsplit=5)[-1]
        if "/librdkafka" in path and ".so" in path:
            return path
    return None


@functools.cache
def librdkafka_path() -> str:
    """Where librdkafka is: the copy confluent-kafka loaded, else the system's."""
    found = _loaded_librdkafka() or ctypes.util.find_library("rdkafka")
    if found is None:
        raise ConfigError("cannot find librdkafka, the library confluent-kafka is built on")
    return found


def _as_text(value: ClientValue) -> str:
    """librdkafka's spelling of a config value: booleans are `true`/`false`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def open_direct_producer(config: Mapping[str, ClientValue], topic: str) -> DirectProducer:
    """A C producer for `topic`; its log lines go to the `librdkafka` logger.

    Raises ConfigError when librdkafka refuses a key or value (a bad client override).
    """
    settings = {name: _as_text(value) for name, value in config.items()}
    try:
        return DirectProducer(librdkafka_path(), settings, topic, KAFKA_LOG)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
