"""Expected totals computed straight from CSV files or records, independently of meterpipe's
code.

Plain csv + decimal: the first row of each eventId counts (empty eventIds are all
distinct), accounts are compared case-insensitively.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


def expected_totals(*paths: Path) -> list[dict[str, Any]]:
    """What `meterpipe totals --json` must print after ingesting `paths` in order."""
    return expected_totals_of(row for path in paths for row in _rows(path))


def without_month(source: Path, target: Path, month: str) -> int:
    """Copy `source` without its rows dated in `month` ("YYYY-MM", in UTC as billing periods
    are); return how many were left out."""
    rows = list(_rows(source))
    kept = [row for row in rows if _utc_month(row["eventDate"]) != month]
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return len(rows) - len(kept)


def _utc_month(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m")


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        yield from csv.DictReader(handle)


def expected_totals_of(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What `meterpipe totals --json` must print after consuming `events` (rows or Avro
    records: `billable` a bool or its text) in order."""
    seen: set[str] = set()
    sums: dict[tuple[str, str | None, str | None], list[Any]] = {}
    for row in events:
        event_id = row["eventId"]
        if event_id:
            if event_id in seen:
                continue
            seen.add(event_id)
        key = (row["accountId"].lower(), row["pricingUnit"] or None, row["customUnit"] or None)
        entry = sums.setdefault(key, [0, Decimal(0), Decimal(0)])
        entry[0] += 1
        entry[1] += Decimal(row["quantity"])
        if str(row["billable"]).lower() == "true":
            entry[2] += Decimal(row["quantity"])
    return [
        {
            "accountId": account, "pricingUnit": pricing, "customUnit": custom,
            "events": events, "quantity": Decimal(quantity), "billableQuantity": Decimal(billable),
        }
        for (account, pricing, custom), (events, quantity, billable) in sorted(
            sums.items(), key=lambda item: (item[0][0], item[0][1] or "", item[0][2] or "")
        )
    ]  # fmt: skip


def as_comparable(totals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """meterpipe's JSON totals with quantities as Decimals, for exact comparison."""
    return [
        {
            **row,
            "quantity": Decimal(row["quantity"]),
            "billableQuantity": Decimal(row["billableQuantity"]),
        }
        for row in totals
    ]
