"""Every configuration file under deploy/ parses, and no YAML mapping repeats a key."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.deploy.deployfiles import DEPLOY, load_yaml_documents, yaml_files

JSON_FILES = sorted(DEPLOY.rglob("*.json"))
TOML_FILES = sorted(DEPLOY.rglob("*.toml"))


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(DEPLOY)) for p in paths]


def test_the_deploy_files_exist() -> None:
    """Guards the parametrized tests below against silently checking nothing."""
    names = set(_ids(yaml_files() + JSON_FILES))
    assert {
        "compose.yaml", "prometheus/prometheus.yml", "prometheus/alerts.yml",
        "prometheus/alerts_test.yml", "grafana/meterpipe.json", "kubernetes/kustomization.yaml",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", yaml_files(), ids=_ids(yaml_files()))
def test_yaml_parses_without_duplicate_keys(path: Path) -> None:
    documents = load_yaml_documents(path)
    assert documents
    assert all(isinstance(document, dict) and document for document in documents)


@pytest.mark.parametrize("path", JSON_FILES, ids=_ids(JSON_FILES))
def test_json_parses(path: Path) -> None:
    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys in {path}: {keys}"
        return dict(pairs)

    document = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=no_duplicates)
    assert isinstance(document, dict)


@pytest.mark.parametrize("path", TOML_FILES, ids=_ids(TOML_FILES))
def test_toml_parses(path: Path) -> None:
    with path.open("rb") as handle:
        assert tomllib.load(handle)
