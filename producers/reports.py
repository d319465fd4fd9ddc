"""Reports a person can open next to a file that ended in error/.

`<name>.errors.csv` lists row, column, value, reason and message of each bad cell, and is
safe to open in a spreadsheet: a cell that starts with `=`, `+`, `-`, `@`, tab or CR is
prefixed with `'` so it is shown, not evaluated (CSV injection). `<name>.status.json` is
the same object `meterpipe uploads --json` prints. An existing file is never overwritten.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, TextIO

from schemas.uploads import UploadRecord

__all__ = ["spreadsheet_safe", "write_error_reports", "write_errors_csv"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
REPORT_COLUMNS = ("row", "column", "value", "reason", "message")


def spreadsheet_safe(value: Any) -> str:
    """A cell value a spreadsheet will display rather than evaluate."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _create(path: Path) -> Path:
    """The first of `path`, `path.1`, `path.2`... that does not exist yet, created empty."""
    candidate, counter = path, 1
    while True:
        try:
            candidate.open("x").close()
            return candidate
        except FileExistsError:
            candidate = path.with_name(f"{path.name}.{counter}")
            counter += 1


def write_error_reports(folder: Path, name: str, upload: UploadRecord) -> tuple[Path, Path]:
    """Write `<name>.errors.csv` and `<name>.status.json` into `folder`; return their paths."""
    errors_path = _create(folder / f"{name}.errors.csv")
    with errors_path.open("w", newline="", encoding="utf-8") as handle:
        write_errors_csv(handle, upload)
    status_path = _create(folder / f"{name}.status.json")
    status_path.write_text(json.dumps(upload.to_json(), indent=2) + "\n", encoding="utf-8")
    return errors_path, status_path


def write_errors_csv(out: TextIO, upload: UploadRecord) -> None:
    """The error report of `upload` as CSV; `out` is opened with newline=""."""
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    for error in upload.errors:
        writer.writerow([spreadsheet_safe(error.get(column)) for column in REPORT_COLUMNS])
