"""Settings precedence: explicit values > env vars > TOML file > defaults."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from meterpipe.kafka_config import consumer_config, producer_config
from meterpipe.settings import load_settings


def test_precedence_and_component_routing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "meterpipe.toml"
    config.write_text('topic = "from-file"\npartitions = 12\ninbox = "file-inbox"\n')
    monkeypatch.setenv("METERPIPE_CONFIG", str(config))
    monkeypatch.setenv("METERPIPE_PARTITIONS", "3")
    settings = load_settings(inbox=tmp_path / "cli-inbox")
    assert settings.kafka.topic == "from-file"
    assert settings.kafka.partitions == 3
    assert settings.watch.inbox == tmp_path / "cli-inbox"
    assert settings.store.data_dir == Path("data")


def test_unknown_override_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown settings: nope"):
        load_settings(nope=1)


def test_secrets_reach_librdkafka_but_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERPIPE_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("METERPIPE_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("METERPIPE_SASL_PASSWORD", "hunter2")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    config = producer_config(settings.kafka, "broker:9092")
    assert config["sasl.password"] == "hunter2"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["enable.idempotence"] is True


def test_client_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERPIPE_CLIENT_OVERRIDES", '{"fetch.queue.backoff.ms": "50"}')
    config = consumer_config(load_settings().kafka, "broker:9092", "group")
    assert config["fetch.queue.backoff.ms"] == "50"
    assert config["enable.auto.commit"] is False


def test_the_example_config_names_real_settings_at_their_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Unknown keys in a config file are ignored, so a misspelt key in the example would
    # silently mislead whoever copies it.
    example = Path(__file__).parents[2] / "deploy" / "meterpipe.example.toml"
    keys = set(tomllib.loads(example.read_text()))
    monkeypatch.delenv("METERPIPE_CONFIG", raising=False)
    defaults = load_settings()
    fields = {name for part in defaults.model_dump().values() for name in part}
    assert keys
    assert keys <= fields, keys - fields
    monkeypatch.setenv("METERPIPE_CONFIG", str(example))
    assert load_settings() == defaults


def test_min_insync_replicas_above_the_replication_factor_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METERPIPE_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("METERPIPE_MIN_INSYNC_REPLICAS", "2")
    assert load_settings().kafka.min_insync_replicas == 2
    monkeypatch.setenv("METERPIPE_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(ValueError, match=r"min_insync_replicas \(4\) is more than"):
        load_settings()
