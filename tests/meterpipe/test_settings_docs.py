"""docs/configuration.md lists every setting meterpipe reads, with its default and meaning."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from meterpipe.settings import Settings

DOC = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
FIELDS = [
    (name, field)
    for component in Settings.model_fields.values()
    for name, field in component.annotation.model_fields.items()  # type: ignore[union-attr]
]


def _row(name: str, field: FieldInfo) -> str:
    """The reference table's row of one setting."""
    default = field.get_default(call_default_factory=True)
    shown = "unset" if default is None else "{}" if isinstance(default, dict) else str(default)
    described = (field.description or "").replace("|", "\\|")
    return f"| `METERPIPE_{name.upper()}` | `{shown}` | {described} |"


@pytest.mark.parametrize(("name", "field"), FIELDS, ids=[name for name, _ in FIELDS])
def test_every_setting_is_described_and_documented_as_it_is(name: str, field: FieldInfo) -> None:
    assert field.description, f"{name} has no description"
    assert _row(name, field) in DOC.splitlines()


def test_the_reference_lists_no_setting_that_does_not_exist() -> None:
    documented = {
        line.split("`")[1] for line in DOC.splitlines() if line.startswith("| `METERPIPE_")
    }
    assert documented == {f"METERPIPE_{name.upper()}" for name, _ in FIELDS}
