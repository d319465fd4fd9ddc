"""A click group whose commands are imported only when they run (or are asked for help).

A command's module imports what the command needs, and some need a lot (polars, Kafka's
client, the HTTP server): listing the commands, or running a light one, loads none of it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

__all__ = ["CommandTable", "LazyGroup"]

# name: (module, attribute, one line for the group's --help)
CommandTable = Mapping[str, tuple[str, str, str]]


class LazyGroup(click.Group):
    """A group of the commands `lazy_commands` names, imported when they are run."""

    def __init__(self, *args: Any, lazy_commands: CommandTable, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, in the order of the table."""
        return list(self.lazy_commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the command's module now."""
        if cmd_name not in self.lazy_commands:
            return None
        module, attribute, _ = self.lazy_commands[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table, without importing any command."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, line) for name, (_, _, line) in self.lazy_commands.items()])
