"""The C clients' librdkafka is the very one confluent-kafka runs on."""

from __future__ import annotations

import ctypes

import confluent_kafka

from meterpipe.librdkafka import librdkafka_path, librdkafka_settings


def test_the_library_found_is_the_one_confluent_kafka_loaded() -> None:
    library = ctypes.CDLL(librdkafka_path())
    library.rd_kafka_version_str.restype = ctypes.c_char_p
    version = library.rd_kafka_version_str().decode()
    assert version == confluent_kafka.libversion()[0]


def test_settings_are_spelled_as_librdkafka_reads_them() -> None:
    settings = librdkafka_settings({"enable.idempotence": True, "linger.ms": 5, "acks": "all"})
    assert settings == {"enable.idempotence": "true", "linger.ms": "5", "acks": "all"}
