"""Apache Kafka for the test suite: its jars, resolved from Maven Central once into a cache.

`org.apache.kafka:kafka_2.13` and its runtime dependencies (plus a log4j binding, so each
node writes a log) are copied by `mvn dependency:copy-dependencies` from a small generated
pom into `~/.cache/meterpipe/kafka-<version>/libs` (`$XDG_CACHE_HOME` is honoured), and
reused by every later run (see `tests.maven_runtime`).

Run `python -m tests.kafka_dist` to fetch ahead of a test run.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from tests.maven_runtime import JavaToolsUnavailableError, cached_build, java_command, run_maven

__all__ = ["KAFKA_VERSION", "WHO", "kafka_classpath"]

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # the version kafka_2.13 4.1.1 depends on
FETCH_TIMEOUT_S = 600
WHO = "the Apache Kafka tests"
POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>meterpipe.tests</groupId>
  <artifactId>apache-kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def kafka_classpath(version: str = KAFKA_VERSION) -> str:
    """The classpath of Apache Kafka `version`, fetched first if it is not cached yet."""
    return f"{cached_build(f'kafka-{version}', functools.partial(_fetch, version))}/libs/*"


def _fetch(version: str, work: Path, target: Path) -> None:
    """Copy the jars into `target/libs`."""
    pom = work / "pom.xml"
    pom.write_text(POM.format(kafka=version, log4j=LOG4J_VERSION), encoding="utf-8")
    out = work / "libs"
    args = ["dependency:copy-dependencies", f"-DoutputDirectory={out}", "-DincludeScope=runtime"]
    run_maven(pom, args, f"fetching Kafka {version}", WHO, FETCH_TIMEOUT_S)
    if not any(out.glob(f"kafka_2.13-{version}.jar")):
        raise JavaToolsUnavailableError(f"mvn fetched no kafka_2.13-{version}.jar")
    shutil.rmtree(target / "libs", ignore_errors=True)
    out.rename(target / "libs")


if __name__ == "__main__":
    java_command(WHO)
    print(kafka_classpath())
