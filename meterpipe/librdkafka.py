"""Where meterpipe's C Kafka clients find librdkafka, and how they are configured.

The publisher's producer (`meterpipe/_direct_producer.c`) and the consumer's group member
(`consumers/_direct_consumer.c`) drive librdkafka through its public C API
(`meterpipe/rdkafka_api.h`), so that a batch is one call instead of a Python call per
message. They use the very library confluent-kafka loaded: every client in a process is
one librdkafka version, and the dicts of `meterpipe.kafka_config` mean the same to all.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path

import confluent_kafka  # noqa: F401  (loads the librdkafka that _loaded_librdkafka finds)

from meterpipe.errors import ConfigError

__all__ = ["ClientValue", "librdkafka_path", "librdkafka_settings", "refusal_as_config_error"]

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


def librdkafka_settings(config: Mapping[str, ClientValue]) -> dict[str, str]:
    """A client config as the text librdkafka's `rd_kafka_conf_set` takes."""
    return {name: _as_text(value) for name, value in config.items()}


@contextlib.contextmanager
def refusal_as_config_error() -> Iterator[None]:
    """A setting librdkafka refuses (ValueError from a C client) as a ConfigError naming it."""
    try:
        yield
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
