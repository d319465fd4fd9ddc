"""Upload file formats: which header a file has, and how its rows become canonical events.

Each format knows its exact column names (any order is accepted), how to validate a chunk
of its rows, and how to turn valid rows into Avro-shaped events. The format of a file is
detected from its header, or forced by the caller; a header that fits no format rejects
the whole file, naming the missing and unknown columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import polars as pl

from meterpipe.errors import ConfigError, FileRejectedError
from meterpipe.format_names import FormatName
from meterpipe.settings import UploadSettings
from producers.event_ids import assign_event_ids
from producers.solvimon import SolvimonFormat, load_meters
from schemas.codec import FIELD_NAMES
from schemas.uploads import UploadRecord
from schemas.validation import ValidationResult, validate_frame

__all__ = [
    "APPDIRECT",
    "AppDirectFormat",
    "FormatChooser",
    "FormatName",
    "RowFormat",
    "available_formats",
]


class RowFormat(Protocol):
    """One upload file format."""

    @property
    def name(self) -> FormatName:
        """The format's name, as `--format` takes it."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The exact accepted column names, in template order."""

    def validate(self, rows: pl.DataFrame, max_errors: int) -> ValidationResult:
        """Split string rows (plus `rowNumber`) into valid, normalised rows and errors."""

    def to_events(self, valid: pl.DataFrame, upload: UploadRecord) -> pl.DataFrame:
        """Valid rows as Avro-shaped events, with provenance and eventIds.

        Everything derived must be a function of the rows and the upload record alone,
        so that publishing the upload again yields the very same events.
        """


class AppDirectFormat:
    """AppDirect's metered usage file: one row is one event."""

    name: FormatName = "appdirect"
    columns = (
        "accountId", "developerId", "pricingUnit", "customUnit", "quantity", "unitPrice",
        "description", "currency", "eventDate", "eventId", "billable",
    )  # fmt: skip

    def validate(self, rows: pl.DataFrame, max_errors: int) -> ValidationResult:
        """The AppDirect rules (schemas.validation)."""
        return validate_frame(rows, max_errors=max_errors)

    def to_events(self, valid: pl.DataFrame, upload: UploadRecord) -> pl.DataFrame:
        """Missing eventIds assigned, the upload reference and the format added."""
        with_ids = assign_event_ids(valid, upload.upload_key)
        return with_ids.with_columns(
            pl.lit(upload.reference).alias("uploadRef"),
            pl.lit(self.name).alias("sourceFormat"),
            pl.lit(None, pl.String).alias("subscriptionRef"),
            pl.lit(None, pl.String).alias("properties"),
        ).select(FIELD_NAMES)


APPDIRECT = AppDirectFormat()


def available_formats(settings: UploadSettings) -> list[RowFormat]:
    """The formats an upload may have: AppDirect always, Solvimon once meters are configured.

    Call it once per upload: the Solvimon format remembers the Event references it has seen,
    so each upload needs a fresh one. ConfigError if Solvimon is forced without meters.
    """
    if settings.meters is not None:
        return [APPDIRECT, SolvimonFormat(load_meters(settings.meters))]
    if settings.file_format == "solvimon":
        raise ConfigError("the solvimon format needs its meters: --meters FILE or METERPIPE_METERS")
    return [APPDIRECT]


def header_problems(header: Sequence[str], columns: Sequence[str]) -> list[str]:
    """What keeps `header` from being exactly `columns` (in any order)."""
    missing = [name for name in columns if name not in header]
    unknown = [name for name in header if name not in columns]
    repeated = sorted({name for name in header if list(header).count(name) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s): {', '.join(map(repr, unknown))}")
    if repeated:
        problems.append(f"repeated column(s): {', '.join(repeated)}")
    return problems


class FormatChooser:
    """Picks a file's format from its header (or checks the forced one); remembers it."""

    def __init__(self, formats: Sequence[RowFormat], forced: FormatName | None = None) -> None:
        self._formats = [f for f in formats if forced is None or f.name == forced]
        self.chosen: RowFormat | None = None

    def __call__(self, header: list[str]) -> tuple[str, ...]:
        """The chosen format's columns; FileRejectedError naming the columns if none fits."""
        for candidate in self._formats:
            if not header_problems(header, candidate.columns):
                self.chosen = candidate
                return candidate.columns
        closest = max(self._formats, key=lambda f: len(set(header) & set(f.columns)))
        problems = "; ".join(header_problems(header, closest.columns))
        raise FileRejectedError("bad_header", f"header rejected ({closest.name}): {problems}")
