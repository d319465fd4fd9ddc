"""Every command has an example in its help and a row in the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from meterpipe.cli import COMMANDS as LISTED
from meterpipe.cli import main

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(LISTED)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help_has_an_example_and_the_readme_documents_it(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command)
    assert command.name == name
    assert "Example: meterpipe" in (command.help or "")
    assert f"meterpipe {name}" in README
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0


def test_env_vars_are_shown_in_help() -> None:
    result = CliRunner().invoke(main, ["up", "--help"])
    assert "METERPIPE_INBOX" in result.output
    assert "METERPIPE_DATA_DIR" in result.output
    assert "METERPIPE_BOOTSTRAP_SERVERS" in result.output


def test_the_command_list_shows_each_command_without_importing_it() -> None:
    """`meterpipe --help` lists every command from the table, in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from meterpipe.cli import main\n"
         "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
         "print(sorted(m for m in sys.modules if m.startswith(('polars', 'confluent_kafka',"
         " 'pyarrow', 'consumers', 'producers'))))"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert all(f"  {name} " in done.stdout for name in LISTED)
    assert done.stdout.splitlines()[-1] == "[]"
