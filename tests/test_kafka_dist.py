"""Without Java, the Apache Kafka tests fail saying what to install: never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kafka_cluster import running_cluster


def test_without_java_a_kafka_fixture_fails_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java-here"))
    with (
        pytest.raises(pytest.fail.Exception, match=r"need Java 17\+ and Maven: run `sudo bash"),
        running_cluster(tmp_path / "kafka"),
    ):
        pass
