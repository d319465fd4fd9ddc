"""`meterpipe template`: write the CSV template of an upload format.

The command is a thin shell over `producers.templates`; the `meterpipe` group adds it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from meterpipe.cli_options import format_option, friendly_errors, meters_option
from meterpipe.format_names import FormatName
from meterpipe.settings import load_settings
from producers.templates import template_columns, write_template

__all__ = ["template"]


@click.command()
@format_option("Upload format of the template.", required=True)
@meters_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to create (never overwritten); default: standard output.",
)
@friendly_errors
def template(file_format: FormatName, meters: Path | None, output: Path | None) -> None:
    """Write the CSV template (the header row) of an upload format, ready to fill in.

    Solvimon's template has the four fixed columns, then the configured meter values and
    properties, so it needs the meters file.

    Example: meterpipe template --format solvimon --meters meters.toml -o usage.csv
    """
    columns = template_columns(file_format, load_settings(meters=meters).upload)
    if output is None:
        write_template(sys.stdout, columns)
        return
    try:
        with output.open("x", encoding="utf-8", newline="") as out:
            write_template(out, columns)
    except FileExistsError as exc:
        raise click.ClickException(f"{output} exists already; not overwriting it") from exc
