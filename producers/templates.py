"""The CSV templates users fill in: a header row naming the columns of an upload format.

A file must carry exactly its format's columns, so the safest way to start one is from the
template: AppDirect's 11 columns, or Solvimon's four fixed columns followed by the meters
configured for this deployment (which is why the Solvimon template needs the meters file).
"""

from __future__ import annotations

import csv
from typing import TextIO

from meterpipe.errors import ConfigError
from meterpipe.format_names import FormatName
from meterpipe.settings import UploadSettings
from producers.formats import APPDIRECT
from producers.solvimon import SolvimonFormat, load_meters

__all__ = ["template_columns", "write_template"]


def template_columns(file_format: FormatName, settings: UploadSettings) -> tuple[str, ...]:
    """The columns of `file_format`'s template, in template order.

    Solvimon's come from the meters file of `settings`; ConfigError if none is configured.
    """
    if file_format == "appdirect":
        return APPDIRECT.columns
    if settings.meters is None:
        raise ConfigError(
            "the solvimon template needs the meters: --meters FILE or METERPIPE_METERS"
        )
    return SolvimonFormat(load_meters(settings.meters)).columns


def write_template(out: TextIO, columns: tuple[str, ...]) -> None:
    """Write the header row; `out` is opened with newline="" as the csv module wants."""
    csv.writer(out).writerow(columns)
