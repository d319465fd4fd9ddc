"""Security settings reach every librdkafka client; `config show` and errors never print secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from meterpipe.cli_config import mask_url
from meterpipe.kafka_config import admin_config, consumer_config, producer_config
from meterpipe.settings import load_settings
from tests.processes import run_cli

SECRETS = {
    "METERPIPE_SASL_PASSWORD": "sasl-pw-91c2",
    "METERPIPE_SSL_KEY_PASSWORD": "key-pw-44d0",
    "METERPIPE_STORE_URL": "postgresql://billing:store-pw-5e1b@127.0.0.1:1/meter",
    "METERPIPE_REGISTRY_URL": "https://reg-user:reg-pw-0a7f@registry.example:8081",
    "METERPIPE_CLIENT_OVERRIDES": '{"sasl.oauthbearer.client.secret": "oauth-77ab"}',
}
SECRET_VALUES = ("sasl-pw-91c2", "key-pw-44d0", "store-pw-5e1b", "reg-pw-0a7f", "oauth-77ab")


@pytest.fixture
def secret_env(tmp_path: Path) -> dict[str, str]:
    """Secrets in env vars, the rest of the security settings in the TOML file."""
    config = tmp_path / "meterpipe.toml"
    config.write_text(
        'security_protocol = "SASL_SSL"\nsasl_mechanism = "SCRAM-SHA-256"\n'
        'sasl_username = "alice"\nssl_ca_location = "/etc/ca.pem"\n'
        'ssl_certificate_location = "/etc/client.pem"\nssl_key_location = "/etc/client.key"\n'
    )
    return {
        **os.environ, **SECRETS, "METERPIPE_CONFIG": str(config),
        "METERPIPE_DATA_DIR": str(tmp_path / "data"),
    }  # fmt: skip


def test_env_and_file_security_settings_reach_every_client(
    secret_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in secret_env.items():
        monkeypatch.setenv(name, value)
    kafka = load_settings().kafka
    expected = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice",
        "sasl.password": "sasl-pw-91c2",
        "ssl.ca.location": "/etc/ca.pem",
        "ssl.certificate.location": "/etc/client.pem",
        "ssl.key.location": "/etc/client.key",
        "ssl.key.password": "key-pw-44d0",
        "sasl.oauthbearer.client.secret": "oauth-77ab",
    }
    for config in (
        admin_config(kafka, "b:9092"),
        producer_config(kafka, "b:9092"),
        consumer_config(kafka, "b:9092", "group"),
    ):
        assert {key: config.get(key) for key in expected} == expected
    assert "sasl-pw-91c2" not in repr(kafka)
    assert "key-pw-44d0" not in repr(kafka)


def test_config_show_masks_every_secret(secret_env: dict[str, str]) -> None:
    plain = run_cli(secret_env, "config", "show")
    as_json = run_cli(secret_env, "config", "show", "--json")
    for done in (plain, as_json):
        output = done.stdout + done.stderr
        assert not [secret for secret in SECRET_VALUES if secret in output]
        assert "alice" in output
        assert "billing" in output
    shown = json.loads(as_json.stdout)
    assert shown["kafka"]["sasl_password"] == "********"
    assert shown["kafka"]["ssl_key_password"] == "********"
    assert shown["kafka"]["ssl_ca_location"] == "/etc/ca.pem"
    assert shown["store"]["store_url"] == "postgresql://billing:********@127.0.0.1:1/meter"
    assert shown["kafka"]["registry_url"] == "https://reg-user:********@registry.example:8081"
    assert shown["kafka"]["client_overrides"] == {"sasl.oauthbearer.client.secret": "********"}
    assert shown["runtime"]["shutdown_timeout_s"] == 10.0


def test_a_store_that_cannot_be_reached_does_not_print_its_password(
    secret_env: dict[str, str],
) -> None:
    done = run_cli(secret_env, "uploads", check=False)
    assert done.returncode != 0
    assert "store-pw-5e1b" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p%40ss@h:5432/db", "postgresql://u:********@h:5432/db"),
        ("postgres://h/db?user=u&password=x&sslmode=require",
         "postgres://h/db?user=u&password=********&sslmode=require"),
        ("postgresql://u@h/db?options=-csearch_path%3Ds", "postgresql://u@h/db?options=-csearch_path%3Ds"),
        ("http://registry:8081", "http://registry:8081"),
    ],
)  # fmt: skip
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
