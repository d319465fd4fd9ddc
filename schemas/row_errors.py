"""A bad row or event as a value: what reports, dead letters and metrics are made of.

Its own module because both the pydantic models (which explain a row's errors) and the
vectorised validation (which finds the rows) speak it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["RowError"]


@dataclass(frozen=True)
class RowError:
    """Why one row is invalid: a value for reports and the dead-letter topic, never raised.

    `row` is the row as a spreadsheet shows it (the header is row 1), 0 for a row without
    a number; `column` the Avro field name; `value` the raw cell; `reason` a stable
    snake_case code, fit for a metric label; `message` what a person reads.
    """

    row: int
    column: str
    value: str | None
    reason: str
    message: str

    def to_dict(self) -> dict[str, str | int | None]:
        """The error as a JSON-ready dict: row, column, value, reason, message."""
        return asdict(self)
