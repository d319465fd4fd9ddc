"""Every command has an example in its help and a row in the README."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from meterpipe.cli import main

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(main.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help_has_an_example_and_the_readme_documents_it(name: str) -> None:
    command = main.commands[name]
    assert isinstance(command, click.Command)
    assert "Example: meterpipe" in (command.help or "")
    assert f"meterpipe {name}" in README
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0


def test_env_vars_are_shown_in_help() -> None:
    result = CliRunner().invoke(main, ["up", "--help"])
    assert "METERPIPE_INBOX" in result.output
    assert "METERPIPE_DATA_DIR" in result.output
    assert "METERPIPE_BOOTSTRAP_SERVERS" in result.output
