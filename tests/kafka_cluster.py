"""Apache Kafka (KRaft) clusters started by the test suite: 1 or 3 combined broker+controller
nodes on free loopback ports, their storage in a temporary directory.

Each node is a `java kafka.Kafka server.properties` child process with a small heap; its
storage is formatted with `kafka.tools.StorageTool` (what `kafka-storage.sh format` runs).
A node can be SIGKILLed and started again on the same ports and data, for fault drills.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from confluent_kafka import KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    OffsetSpec,
    TopicDescription,
)

from meterpipe.broker import free_port
from tests.kafka_dist import WHO, kafka_classpath
from tests.maven_runtime import JavaToolsUnavailableError, java_command

__all__ = ["KafkaCluster", "KafkaNode", "running_cluster"]

# A small heap, and only the first JIT tier: nodes start in a few seconds on a busy 2-core
# machine, which matters more to the suite than their peak throughput.
JVM_OPTIONS = ("-Xmx512m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
READY_TIMEOUT_S = 90.0
# librdkafka's lines of the tests' own admin clients ("connection refused" while a node
# starts) go to logging, which pytest shows for a failing test, not to raw stderr.
CLIENT_LOG = logging.getLogger("tests.kafka_cluster")
STOP_TIMEOUT_S = 30.0
LOG4J = """\
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = FILE
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.apache.name = org.apache.kafka
logger.apache.level = {level}
"""


@dataclass
class KafkaNode:
    """One combined broker+controller: its id, ports, directory and process."""

    node_id: int
    port: int
    controller_port: int
    internal_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """Its client listener."""
        return f"127.0.0.1:{self.port}"

    def is_running(self) -> bool:
        """True while its JVM lives."""
        return self.process is not None and self.process.poll() is None


class KafkaCluster:
    """`size` KRaft nodes under `root`; a context manager that stops them all at the end.

    `broker_configs` are added to every node's server.properties (they win); `listener`
    replaces the client listener's protocol (e.g. SASL_SSL, with its settings in
    `broker_configs`) and `advertised_host` the host it is advertised under. Brokers talk to
    each other and to the controllers over plaintext loopback listeners.
    """

    def __init__(
        self,
        root: Path,
        size: int = 1,
        *,
        broker_configs: Mapping[str, str] | None = None,
        listener: str = "PLAINTEXT",
        advertised_host: str = "127.0.0.1",
        format_args: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.size = size
        self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self._configs = dict(broker_configs or {})
        self._listener = listener
        self._advertised_host = advertised_host
        self._format_args = format_args
        self.nodes: list[KafkaNode] = []
        self.start_seconds = 0.0
        self.format_seconds = 0.0

    @property
    def bootstrap_servers(self) -> str:
        """Every node's client listener, as advertised."""
        return ",".join(f"{self._advertised_host}:{node.port}" for node in self.nodes)

    @property
    def internal_bootstrap(self) -> str:
        """The plaintext inter-broker listeners: for admin work in tests (no credentials)."""
        return ",".join(f"127.0.0.1:{node.internal_port}" for node in self.nodes)

    def start(self) -> KafkaCluster:
        """Format every node's storage, start them all and wait until all are brokers."""
        began = time.monotonic()
        java, classpath = java_command(WHO), kafka_classpath()
        self._java = [java, *JVM_OPTIONS, "-cp", classpath]
        self.nodes = [
            KafkaNode(n, free_port(), free_port(), free_port(), self.root / f"node-{n}")
            for n in range(1, self.size + 1)
        ]
        for node in self.nodes:
            self._write_config(node)
        formatting = [self._format(node) for node in self.nodes]
        for node, process in zip(self.nodes, formatting, strict=True):
            out, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"formatting node {node.node_id} failed:\n{out}")
        self.format_seconds = time.monotonic() - began
        for node in self.nodes:
            self.start_node(node.node_id, wait=False)
        self.wait_ready()
        self.start_seconds = time.monotonic() - began
        return self

    def node(self, node_id: int) -> KafkaNode:
        """The node with this id."""
        return self.nodes[node_id - 1]

    def _write_config(self, node: KafkaNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        replicas = str(min(self.size, 3))
        client = f"{self._listener}://127.0.0.1:{node.port}"
        configs = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"{client},INTERNAL://127.0.0.1:{node.internal_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"{self._listener}://{self._advertised_host}:{node.port},"
            f"INTERNAL://127.0.0.1:{node.internal_port}",
            "listener.security.protocol.map": f"{self._listener}:{self._listener},"
            "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(node.directory / "data"),
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": replicas,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": str(min(self.size, 2)),
            "transaction.state.log.num.partitions": "5",
            "group.initial.rebalance.delay.ms": "0",
            # A killed node is fenced, and its partitions led elsewhere, sooner than the 9 s
            # default; still well above a loaded machine's pauses.
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
            **self._configs,
        }
        text = "".join(f"{key}={value}\n" for key, value in configs.items())
        (node.directory / "server.properties").write_text(text, encoding="utf-8")
        log4j = LOG4J.format(level="INFO", path=node.directory / "server.log")
        (node.directory / "log4j2.properties").write_text(log4j, encoding="utf-8")

    def _format(self, node: KafkaNode) -> subprocess.Popen[str]:
        """Start formatting one node's storage (the nodes are formatted together)."""
        # `=`: a cluster id may start with a dash.
        command = [*self._java, "kafka.tools.StorageTool", "format"]
        command += [
            f"--cluster-id={self.cluster_id}",
            "-c",
            str(node.directory / "server.properties"),
            *self._format_args,
        ]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def start_node(self, node_id: int, *, wait: bool = True) -> None:
        """Start (or start again) one node on its ports and data; wait until it is a broker."""
        node = self.node(node_id)
        log4j = f"-Dlog4j2.configurationFile={node.directory / 'log4j2.properties'}"
        command = [*self._java, log4j, "kafka.Kafka", str(node.directory / "server.properties")]
        with (node.directory / "stdout.log").open("ab") as out:
            node.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no controlled shutdown, whatever it had not flushed is gone."""
        node = self.node(node_id)
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()

    def stop_node(self, node_id: int) -> None:
        """SIGTERM one node (a controlled shutdown moves its leaderships first)."""
        node = self.node(node_id)
        if node.process is None or node.process.poll() is not None:
            return
        node.process.terminate()
        try:
            node.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill(node_id)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until every running node answers on its own listener as a registered broker.

        Asking each node itself matters after a restart: the others go on listing a killed
        node as a broker until its session times out.
        """
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.process is None:
                continue
            admin = _admin_client(f"127.0.0.1:{node.internal_port}")
            last = "no answer"
            while not self._serves(node, admin):
                if not node.is_running():
                    raise RuntimeError(f"Kafka node {node.node_id} exited; see {node.directory}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Kafka node {node.node_id} not ready after {timeout:.0f} s: {last};"
                        f" see {node.directory}"
                    )
                time.sleep(0.2)

    def _serves(self, node: KafkaNode, admin: AdminClient) -> bool:
        try:
            described = admin.describe_cluster(request_timeout=5).result(timeout=10)
        except KafkaException:
            return False
        return len(described.nodes) >= sum(1 for n in self.nodes if n.is_running()) and any(
            n.id == node.node_id for n in described.nodes
        )

    def admin(self) -> AdminClient:
        """An AdminClient on the plaintext internal listeners (a super user when ACLs are on)."""
        return _admin_client(self.internal_bootstrap)

    def _describe(self, topic: str) -> TopicDescription | None:
        """`topic` as the cluster describes it now; None while it cannot say (a node just
        died, a controller being elected)."""
        admin = self.admin()  # kept until the answer is in: a freed client cancels it
        futures = admin.describe_topics(TopicCollection([topic]), request_timeout=10)
        try:
            description: TopicDescription = futures[topic].result(timeout=15)
        except KafkaException:
            return None
        return description

    def leader_of(self, topic: str, partition: int = 0) -> int | None:
        """The node id leading `topic`'s `partition` now (None: none known right now)."""
        description = self._describe(topic)
        if description is None or description.partitions[partition].leader is None:
            return None
        return int(description.partitions[partition].leader.id)

    def fully_replicated(self, topic: str) -> bool:
        """Every partition of `topic` has all its replicas in sync."""
        description = self._describe(topic)
        return description is not None and all(
            len(p.isr) == len(p.replicas) for p in description.partitions
        )

    def written(self, topic: str, timeout: float = 30.0) -> int:
        """Messages written to `topic` so far: its high watermarks added up (exact on Kafka).

        Asked again while leadership is settling (a new topic, a node just killed)."""
        admin = self.admin()
        deadline = time.monotonic() + timeout
        while True:
            try:
                partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
                latest = {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}  # type: ignore[no-untyped-call]
                futures = admin.list_offsets(latest, request_timeout=10)
                return sum(future.result(timeout=15).offset for future in futures.values())
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop every node: SIGTERM together, then SIGKILL what is left."""
        running = [n for n in self.nodes if n.is_running()]
        for node in running:
            node.process.terminate()  # type: ignore[union-attr]
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for node in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            self.kill(node.node_id)

    def __enter__(self) -> KafkaCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _admin_client(bootstrap: str) -> AdminClient:
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": CLIENT_LOG}
    return AdminClient(config)


@contextmanager
def running_cluster(root: Path, size: int = 1, **options: object) -> Iterator[KafkaCluster]:
    """For fixtures: a started cluster, stopped at the end. Without Java or Maven the test
    fails (never skips), saying what to install."""
    try:
        with KafkaCluster(root, size, **options) as cluster:  # type: ignore[arg-type]
            yield cluster
    except JavaToolsUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
