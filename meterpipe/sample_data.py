"""Reproducible AppDirect usage files, for tests, demos and benchmarks.

The same seed always gives the same bytes. A share of rows repeats an earlier row's
eventId (a true duplicate, with its own quantity) and a share leaves eventId empty, so
files exercise dedupe and eventId assignment. Event dates fall in June to August 2026,
safely in the past for the `event_in_future` rule.
"""

from __future__ import annotations

import csv
import random
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SampleSpec", "write_sample_file"]

HEADER = (
    "accountId", "developerId", "pricingUnit", "customUnit", "quantity", "unitPrice",
    "description", "currency", "eventDate", "eventId", "billable",
)  # fmt: skip
UNITS = ("API_CALL", "GIGABYTE", "SEAT", "HOUR", "MESSAGE")


@dataclass(frozen=True)
class SampleSpec:
    """Shape of a generated file."""

    rows: int
    seed: int = 7
    accounts: int = 5_000
    units: int = 5
    duplicate_share: float = 0.02
    empty_id_share: float = 0.05


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def write_sample_file(path: Path, spec: SampleSpec) -> None:
    """Write `spec.rows` valid data rows (plus the header) to `path`."""
    rng = random.Random(spec.seed)
    accounts = [_uuid(rng) for _ in range(spec.accounts)]
    developer = _uuid(rng)
    used_ids: list[str] = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for _ in range(spec.rows):
            draw = rng.random()
            if draw < spec.empty_id_share:
                event_id = ""
            elif draw < spec.empty_id_share + spec.duplicate_share and used_ids:
                event_id = rng.choice(used_ids)
            else:
                event_id = _uuid(rng)
                used_ids.append(event_id)
            account = rng.choice(accounts)
            writer.writerow((
                account.upper() if rng.random() < 0.1 else account,
                developer,
                UNITS[rng.randrange(spec.units)],
                "",
                f"{rng.randrange(0, 100_000)}.{rng.randrange(0, 1000):03d}",
                "0.0125",
                "metered usage",
                "USD",
                f"2026-{rng.randrange(6, 9):02d}-{rng.randrange(1, 29):02d}T"
                f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
                f"{rng.choice(('Z', '+02:00', '-05:30'))}",
                event_id,
                rng.choice(("true", "false", "TRUE")),
            ))  # fmt: skip
