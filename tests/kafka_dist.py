"""Apache Kafka for the test suite: its jars, resolved from Maven Central once into a cache.

`org.apache.kafka:kafka_2.13` and its runtime dependencies (plus a log4j binding, so each
node writes a log) are copied by `mvn dependency:copy-dependencies` from a small generated
pom into `~/.cache/meterpipe/kafka-<version>/libs` (`$XDG_CACHE_HOME` is honoured), and
reused by every later run. Test processes started at once take a file lock, so the first
fetches and the others wait for it.

Run `python -m tests.kafka_dist` to fetch ahead of a test run.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["KAFKA_VERSION", "KafkaUnavailableError", "java_command", "kafka_classpath"]

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # the version kafka_2.13 4.1.1 depends on
JAVA_MIN = 17
FETCH_TIMEOUT_S = 600
INSTALL_HINT = (
    "the Apache Kafka tests need Java 17+ and Maven: run `sudo bash deploy/install-tools.sh`"
    " (or apt-get install openjdk-17-jre-headless maven); Maven Central must be reachable"
    " once, to fetch Kafka's jars"
)
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


class KafkaUnavailableError(RuntimeError):
    """Java or Maven is missing, or the jars could not be fetched."""


def cache_dir(version: str = KAFKA_VERSION) -> Path:
    """Where this version's jars live."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "meterpipe" / f"kafka-{version}"


def java_command() -> str:
    """The `java` to run Kafka with; KafkaUnavailableError if there is none of 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise KafkaUnavailableError(f"no java found: {INSTALL_HINT}")
    done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)', done.stderr)
    if not found or int(found.group(1)) < JAVA_MIN:
        raise KafkaUnavailableError(f"{java} is not Java {JAVA_MIN}+: {INSTALL_HINT}")
    return java


def kafka_classpath(version: str = KAFKA_VERSION) -> str:
    """The classpath of Apache Kafka `version`, fetched first if it is not cached yet."""
    target = cache_dir(version)
    libs = target / "libs"
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "complete").exists():
            _fetch(version, target)
    return f"{libs}/*"


def _fetch(version: str, target: Path) -> None:
    """Copy the jars into `target/libs` through a temporary directory: all or nothing."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailableError(f"no mvn found: {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(dir=target, prefix="fetch-") as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(POM.format(kafka=version, log4j=LOG4J_VERSION), encoding="utf-8")
        out = Path(work) / "libs"
        command = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"]
        command += [f"-DoutputDirectory={out}", "-DincludeScope=runtime"]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaUnavailableError(f"fetching Kafka {version} timed out") from exc
        if done.returncode != 0 or not any(out.glob(f"kafka_2.13-{version}.jar")):
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise KafkaUnavailableError(f"mvn could not fetch Kafka {version}:\n{tail}")
        shutil.rmtree(target / "libs", ignore_errors=True)
        out.rename(target / "libs")
    (target / "complete").write_text(version, encoding="utf-8")


if __name__ == "__main__":
    java_command()
    print(kafka_classpath())
