"""SASL_SSL with SCRAM-SHA-512 against Apache Kafka, with ACLs (StandardAuthorizer).

The suite makes its own CA and a broker certificate for `localhost` alone; the broker's
client listener is SASL_SSL (advertised as localhost), and the brokers' own listeners stay
plaintext on loopback, where the tests create users and ACLs as a super user. Every user
gets a name and topics of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.kafka_cluster import KafkaCluster, running_cluster
from tests.processes import (
    METERPIPE,
    all_final,
    run_cli,
    start_cli,
    stop,
    totals,
    uploads,
    wait_for,
)
from tests.tls_certs import Pki, make_pki

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kafka-sasl-ssl")]

PASSWORD = "s3cret-9c1e-never-printed"
FAIL_WITHIN_S = 15.0
EVERYTHING = (AclOperation.ALL,)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The test CA, the broker's keystore and an unrelated CA."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[KafkaCluster]:
    """One Apache Kafka node whose client listener is SASL_SSL + SCRAM-SHA-512, with ACLs."""
    configs = {
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki.keystore),
        "ssl.keystore.password": pki.keystore_password,
        "ssl.key.password": pki.keystore_password,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # The plaintext broker and controller listeners (loopback only) act as ANONYMOUS.
        "super.users": "User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }  # fmt: skip
    root = tmp_path_factory.mktemp("kafka-sasl-ssl")
    with running_cluster(
        root, 1, broker_configs=configs, listener="SASL_SSL", advertised_host="localhost"
    ) as cluster:
        yield cluster


@pytest.fixture
def broker(secure_kafka: KafkaCluster) -> KafkaCluster:
    """`pipeline_env` on the SASL_SSL node."""
    return secure_kafka


def _grant(
    cluster: KafkaCluster, user: str, *grants: tuple[ResourceType, str, AclOperation]
) -> None:
    """Create SCRAM credentials for `user` and allow it `grants` (prefixed resource names)."""
    admin = cluster.admin()
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    upsert = UserScramCredentialUpsertion(user, info, PASSWORD.encode())
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)
    acls = [
        AclBinding(kind, name, ResourcePatternType.PREFIXED, f"User:{user}", "*", operation,
                   AclPermissionType.ALLOW)
        for kind, name, operation in grants
    ]  # fmt: skip
    for future in admin.create_acls(acls).values():
        future.result(timeout=30)


def _full_rights(env: dict[str, str]) -> list[tuple[ResourceType, str, AclOperation]]:
    """What a meterpipe user needs: its topics (creating them too), its group, the cluster."""
    return [
        (ResourceType.TOPIC, env["METERPIPE_TOPIC"], AclOperation.ALL),
        (ResourceType.TOPIC, env["METERPIPE_DLQ_TOPIC"], AclOperation.ALL),
        (ResourceType.GROUP, env["METERPIPE_CONSUMER_GROUP"], AclOperation.ALL),
        (ResourceType.BROKER, "kafka-cluster", AclOperation.DESCRIBE),
    ]


@pytest.fixture
def user_env(pipeline_env: dict[str, str], pki: Pki) -> dict[str, str]:
    """`pipeline_env` as a new SCRAM user (not granted anything yet), trusting the test CA."""
    return {
        **pipeline_env,
        "METERPIPE_SECURITY_PROTOCOL": "SASL_SSL",
        "METERPIPE_SASL_MECHANISM": "SCRAM-SHA-512",
        "METERPIPE_SASL_USERNAME": f"user-{uuid.uuid4().hex[:8]}",
        "METERPIPE_SASL_PASSWORD": PASSWORD,
        "METERPIPE_SSL_CA_LOCATION": str(pki.ca),
        "METERPIPE_CONNECT_TIMEOUT_S": "10",
    }


def _sample(tmp_path: Path, rows: int, seed: int = 17) -> Path:
    path = tmp_path / f"usage-{seed}.csv"
    write_sample_file(path, SampleSpec(rows=rows, seed=seed, accounts=50))
    return path


def test_publish_consume_and_up_with_the_right_credentials(
    secure_kafka: KafkaCluster, user_env: dict[str, str], tmp_path: Path
) -> None:
    _grant(secure_kafka, user_env["METERPIPE_SASL_USERNAME"], *_full_rights(user_env))
    path = _sample(tmp_path, 5_000)
    run_cli(user_env, "publish", str(path))
    consumer = start_cli(user_env, tmp_path / "consumer.log", "consume")
    try:
        (upload,) = wait_for(lambda: all_final(user_env, 1), 120, "upload Done")
    finally:
        stop(consumer)
    assert upload["status"] == "Done"
    assert as_comparable(totals(user_env)) == expected_totals(path)
    inbox = Path(user_env["METERPIPE_INBOX"])
    inbox.mkdir()
    up = start_cli(user_env, tmp_path / "up.log", "up")
    try:
        second = _sample(tmp_path, 3_000, seed=18)
        shutil.copy(second, inbox / "second.csv.part")
        (inbox / "second.csv.part").rename(inbox / "second.csv")
        wait_for(lambda: all_final(user_env, 2), 120, "the inbox upload Done")
    finally:
        stop(up)
    assert as_comparable(totals(user_env)) == expected_totals(path, second)


def _refused(env: dict[str, str], *args: str) -> str:
    """Run a command that must fail quickly with exit code 2; its last stderr line."""
    began = time.monotonic()
    done = subprocess.run(
        [*METERPIPE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert time.monotonic() - began < FAIL_WITHIN_S
    assert PASSWORD not in done.stdout + done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_a_wrong_password_is_refused(user_env: dict[str, str]) -> None:
    env = {**user_env, "METERPIPE_SASL_PASSWORD": "not-the-password"}
    error = _refused(env, "consume")
    assert "refused the connection (security.protocol=SASL_SSL" in error
    assert "Authentication failed" in error


def test_an_untrusted_certificate_is_refused(user_env: dict[str, str], pki: Pki) -> None:
    env = {**user_env, "METERPIPE_SSL_CA_LOCATION": str(pki.other_ca)}
    error = _refused(env, "consume")
    assert "certificate verify failed" in error
    assert error.endswith("the broker's certificate: self-signed certificate in certificate chain")


def test_a_certificate_for_another_host_is_refused(
    secure_kafka: KafkaCluster, user_env: dict[str, str]
) -> None:
    port = secure_kafka.nodes[0].port
    env = {**user_env, "METERPIPE_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    error = _refused(env, "consume")
    assert "certificate verify failed" in error
    assert error.endswith("certificate is not valid for '127.0.0.1'.")


def _everything_but(
    env: dict[str, str], kind: ResourceType, name: str, missing: AclOperation
) -> list[tuple[ResourceType, str, AclOperation]]:
    """Full rights, except `missing` on `name`: every other operation is granted one by one."""
    operations = [AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE,
                  AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS]  # fmt: skip
    rights = [right for right in _full_rights(env) if right[:2] != (kind, name)]
    return rights + [(kind, name, op) for op in operations if op != missing]


def test_no_read_on_the_topic_is_a_clear_authorisation_error(
    secure_kafka: KafkaCluster, user_env: dict[str, str]
) -> None:
    topic = user_env["METERPIPE_TOPIC"]
    rights = _everything_but(user_env, ResourceType.TOPIC, topic, AclOperation.READ)
    _grant(secure_kafka, user_env["METERPIPE_SASL_USERNAME"], *rights)
    error = _refused(user_env, "consume")
    assert error.startswith("error: Kafka refused this consumer:")
    assert "Topic authorization failed" in error


@pytest.mark.parametrize("command", ["consume", "up"])  # `up` ends too, not a restart loop
def test_no_read_on_the_group_is_a_clear_authorisation_error(
    secure_kafka: KafkaCluster, user_env: dict[str, str], command: str
) -> None:
    group = user_env["METERPIPE_CONSUMER_GROUP"]
    rights = _everything_but(user_env, ResourceType.GROUP, group, AclOperation.READ)
    _grant(secure_kafka, user_env["METERPIPE_SASL_USERNAME"], *rights)
    error = _refused(user_env, command)
    assert error.startswith("error: Kafka refused this consumer:")
    assert "Group authorization failed" in error


def test_no_write_on_the_dead_letter_topic_stops_before_committing(
    secure_kafka: KafkaCluster, user_env: dict[str, str], tmp_path: Path
) -> None:
    """Partition 0 starts with a message that is not Avro: no batch holding it may commit.
    The consumer stops with an authorisation error, and partition 0 has no stored offset."""
    topic, dlq = user_env["METERPIPE_TOPIC"], user_env["METERPIPE_DLQ_TOPIC"]
    rights = _everything_but(user_env, ResourceType.TOPIC, dlq, AclOperation.WRITE)
    _grant(secure_kafka, user_env["METERPIPE_SASL_USERNAME"], *rights)
    path = _sample(tmp_path, 2_000)
    run_cli(user_env, "publish", str(path))  # creates the topics
    poison = Producer({"bootstrap.servers": secure_kafka.internal_bootstrap})
    poison.produce(topic, b"not Avro", b"poison", partition=0)
    assert poison.flush(30) == 0
    error = _refused(user_env, "consume")
    assert error.startswith(f"error: cannot write dead letters to {dlq}, so nothing of the")
    assert "Topic authorization failed" in error
    store = Path(user_env["METERPIPE_DATA_DIR"]) / "meterpipe.sqlite3"
    with contextlib.closing(sqlite3.connect(store)) as db:
        stored = db.execute(
            "SELECT next_offset FROM offsets WHERE topic = ? AND partition = 0", (topic,)
        ).fetchall()
    assert stored == []
    (upload,) = uploads(user_env)
    assert upload["status"] == "Processing"  # its events on partition 0 are not counted
