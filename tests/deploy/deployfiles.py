"""Loading the deploy configuration strictly, and finding the external tools that check it."""

from __future__ import annotations

import shutil
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest
import yaml

__all__ = [
    "DEPLOY",
    "REPO",
    "load_yaml",
    "load_yaml_documents",
    "require_prometheus_tool",
    "yaml_files",
]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
INSTALL_HINT = "`apt-get install prometheus` (deploy/install-tools.sh does it when run as root)"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` keys may be overridden on purpose
            key = str(key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark,
                )  # fmt: skip
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_documents(path: Path) -> list[Any]:
    """Every document of a YAML file, duplicate keys refused."""
    with path.open(encoding="utf-8") as handle:
        return list(yaml.load_all(handle, Loader=_StrictLoader))


def load_yaml(path: Path) -> Any:
    """The single document of a YAML file."""
    (document,) = load_yaml_documents(path)
    return document


def yaml_files(directory: Path = DEPLOY) -> list[Path]:
    """Every YAML file under `directory`, sorted."""
    return sorted(p for p in directory.rglob("*") if p.suffix in {".yaml", ".yml"})


def require_prometheus_tool(name: str) -> str:
    """The path of `promtool` or `prometheus`; a missing one fails the test, never skips it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found on PATH: install it with {INSTALL_HINT}", pytrace=False)
    return path
