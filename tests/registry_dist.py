"""Apicurio Registry for the test suite: built from Maven Central once into a cache.

Apicurio Registry serves the Confluent Schema Registry API under `/apis/ccompat/v7`. Maven
Central has its application as a plain jar (`io.apicurio:apicurio-registry-app`), not a
runnable one, so a small generated project depends on it and builds it with the Quarkus Maven
plugin of the Quarkus version it was released with: the jar's own `application.properties`
and `META-INF/web.xml` are unpacked as the project's, and its classes are indexed as the
application's (they carry no bean index of their own). The result, a runner jar and its
`lib/`, goes to `~/.cache/meterpipe/apicurio-registry-<version>`; its default storage is an
in-memory H2 database. 2.4.2.Final is the release whose modules Maven Central serves whole,
but for its JSON Schema validator (`com.github.everit-org.json-schema`, from JitPack), which
is taken under the coordinates its author publishes on Maven Central.

Run `python -m tests.registry_dist` to build ahead of a test run.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from tests.maven_runtime import JavaToolsUnavailableError, cached_build, java_command, run_maven

__all__ = ["REGISTRY_VERSION", "WHO", "registry_runner"]

REGISTRY_VERSION = "2.4.2.Final"
QUARKUS_VERSION = "2.16.4.Final"  # the version apicurio-registry 2.4.2.Final is built with
EVERIT_VERSION = "1.14.2"  # the version apicurio-registry 2.4.2.Final depends on
CONFIG_INDEX_VERSION = "0.1.10.Final"
BUILD_TIMEOUT_S = 900
WHO = "the schema registry tests"
POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>meterpipe.tests</groupId>
  <artifactId>apicurio-registry-runtime</artifactId>
  <version>1</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <quarkus.index-dependency.registry.group-id>io.apicurio</quarkus.index-dependency.registry.group-id>
    <quarkus.index-dependency.registry.artifact-id>apicurio-registry-app</quarkus.index-dependency.registry.artifact-id>
  </properties>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>io.quarkus</groupId><artifactId>quarkus-bom</artifactId>
        <version>{quarkus}</version><type>pom</type><scope>import</scope>
      </dependency>
      <dependency>
        <groupId>io.apicurio</groupId>
        <artifactId>apicurio-common-app-components-config-index</artifactId>
        <version>{config_index}</version>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>io.apicurio</groupId><artifactId>apicurio-registry-app</artifactId>
      <version>{registry}</version>
      <exclusions>
        <exclusion>
          <groupId>com.github.everit-org.json-schema</groupId>
          <artifactId>org.everit.json.schema</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>com.github.erosb</groupId><artifactId>everit-json-schema</artifactId>
      <version>{everit}</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
        <executions>
          <execution>
            <id>application-resources</id><phase>generate-resources</phase>
            <goals><goal>unpack</goal></goals>
            <configuration>
              <artifactItems>
                <artifactItem>
                  <groupId>io.apicurio</groupId><artifactId>apicurio-registry-app</artifactId>
                  <version>{registry}</version>
                  <includes>application.properties,META-INF/web.xml</includes>
                  <outputDirectory>${{project.build.outputDirectory}}</outputDirectory>
                </artifactItem>
              </artifactItems>
            </configuration>
          </execution>
        </executions>
      </plugin>
      <plugin>
        <groupId>io.quarkus</groupId><artifactId>quarkus-maven-plugin</artifactId>
        <version>{quarkus}</version>
        <executions><execution><goals><goal>build</goal></goals></execution></executions>
      </plugin>
    </plugins>
  </build>
</project>
"""


def registry_runner(version: str = REGISTRY_VERSION) -> Path:
    """The runner jar of Apicurio Registry `version`, built first if it is not cached yet."""
    built = cached_build(f"apicurio-registry-{version}", functools.partial(_build, version))
    return built / "registry-runner.jar"


def _build(version: str, work: Path, target: Path) -> None:
    """Build the application in `work`; move its runner jar and `lib/` into `target`."""
    pom = work / "pom.xml"
    text = POM.format(
        registry=version,
        quarkus=QUARKUS_VERSION,
        everit=EVERIT_VERSION,
        config_index=CONFIG_INDEX_VERSION,
    )
    pom.write_text(text, encoding="utf-8")
    run_maven(pom, ["package"], f"building Apicurio Registry {version}", WHO, BUILD_TIMEOUT_S)
    runner = work / "target" / "apicurio-registry-runtime-1-runner.jar"
    if not runner.exists():
        raise JavaToolsUnavailableError(f"the Quarkus build left no {runner.name}")
    shutil.rmtree(target / "lib", ignore_errors=True)
    (work / "target" / "lib").rename(target / "lib")
    runner.rename(target / "registry-runner.jar")


if __name__ == "__main__":
    java_command(WHO)
    print(registry_runner())
