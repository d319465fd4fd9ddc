"""Kafka security settings against the real embedded broker, which does not speak SASL or TLS.

Tansu refuses every SASL handshake and never answers a TLS hello (measured), so a client
configured for SASL must fail at once with a clear error, and the password must appear in
no output, not even in librdkafka's debug log of its own configuration.
"""

from __future__ import annotations

from pathlib import Path

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.processes import run_cli

PASSWORD = "pw-7f3a-do-not-print"


def _sasl_env(pipeline_env: dict[str, str], protocol: str) -> dict[str, str]:
    return {
        **pipeline_env,
        "METERPIPE_SECURITY_PROTOCOL": protocol,
        "METERPIPE_SASL_MECHANISM": "SCRAM-SHA-512",
        "METERPIPE_SASL_USERNAME": "alice",
        "METERPIPE_SASL_PASSWORD": PASSWORD,
    }


def test_sasl_refused_by_the_broker_is_a_clear_error_without_the_password(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "usage.csv"
    write_sample_file(source, SampleSpec(rows=10))
    env = {
        **_sasl_env(pipeline_env, "SASL_PLAINTEXT"),
        "METERPIPE_CLIENT_OVERRIDES": '{"debug": "security,broker,conf"}',
    }
    done = run_cli(env, "--log-level", "DEBUG", "publish", str(source), check=False)
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: Kafka at 127.0.0.1:")
    assert "refused the connection (security.protocol=SASL_PLAINTEXT" in error
    assert "sasl.username=alice" in error
    assert "SCRAM-SHA-512 mechanism handshake failed" in error
    assert PASSWORD not in done.stdout + done.stderr


def test_tls_to_a_plaintext_listener_times_out_with_a_clear_error(
    pipeline_env: dict[str, str],
) -> None:
    env = {
        **_sasl_env(pipeline_env, "SASL_SSL"),
        "METERPIPE_CONNECT_TIMEOUT_S": "3",
        "METERPIPE_CLIENT_OVERRIDES": '{"socket.connection.setup.timeout.ms": "1500"}',
    }
    done = run_cli(env, "consume", check=False)
    assert done.returncode == 2
    assert "in state SSL_HANDSHAKE" in done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert "cannot reach Kafka at 127.0.0.1:" in error
    assert "within 3 s (security.protocol=SASL_SSL" in error
    assert PASSWORD not in done.stdout + done.stderr
