"""Without Java, the tests of Apache Kafka and of the schema registry fail saying what to
install: never skipped."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.kafka_cluster import running_cluster
from tests.schema_registry import running_registry


@pytest.mark.parametrize("running", [running_cluster, running_registry], ids=["kafka", "registry"])
def test_without_java_a_fixture_fails_saying_what_to_install(
    running: Callable[[Path], AbstractContextManager[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java-here"))
    with (
        pytest.raises(pytest.fail.Exception, match=r"need Java 17\+ and Maven: run `sudo bash"),
        running(tmp_path / "runtime"),
    ):
        pass
