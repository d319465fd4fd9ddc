"""Every released version of the UsageEvent schema, and which one is current.

Each released version is a file ``usage_event.v<N>.avsc`` beside this module, numbered from 1,
and is never edited once released: events written with it may still be on the topic (during a
rolling upgrade, or replayed from the dead-letter topic), and their header names it by its
fingerprint or registry id. The newest file is the current schema, the one producers write and
consumers read as; there is no separate unnumbered copy that could drift from it. Releasing a
version is adding the next file; tests check that the current schema reads data written with
every earlier one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from meterpipe.errors import SchemaError

__all__ = [
    "CURRENT",
    "RELEASED",
    "SchemaVersion",
    "crc64_avro",
    "version_with_canonical_form",
]

_FILE_NAME = re.compile(r"usage_event\.v([1-9][0-9]*)\.avsc")
_CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        fp = byte
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """Return the 64-bit Rabin fingerprint the Avro spec calls CRC-64-AVRO, as an unsigned int."""
    fp = _CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


# Compared and hashed by identity: each version is loaded once.
@dataclass(frozen=True, eq=False)
class SchemaVersion:
    """One released UsageEvent schema: its file's text (docs included, for registries), the
    parsed schema (fastavro form; shared, so never mutate it) and its Parsing Canonical Form,
    which fingerprints and registry lookups compare."""

    number: int
    text: str
    parsed: dict[str, Any]
    canonical: str

    @property
    def single_object_header(self) -> bytes:
        """``C3 01`` + the CRC-64-AVRO fingerprint of the canonical form, little-endian (as
        the spec and Java's SchemaNormalization store it)."""
        return b"\xc3\x01" + crc64_avro(self.canonical.encode()).to_bytes(8, "little")


def _load(path: Path, number: int) -> SchemaVersion:
    """Read and parse one released schema file; SchemaError if it is not a record schema."""
    try:
        text = path.read_text(encoding="utf-8")
        parsed = fastavro.parse_schema(json.loads(text))
    except OSError as exc:
        raise SchemaError(f"cannot read the UsageEvent schema {path.name}") from exc
    except (ValueError, fastavro.schema.SchemaParseException) as exc:
        raise SchemaError(f"the UsageEvent schema {path.name} is invalid: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaError(f"the UsageEvent schema {path.name} is not a record")
    canonical = fastavro.schema.to_parsing_canonical_form(parsed)
    return SchemaVersion(number, text, parsed, canonical)


def _released() -> tuple[SchemaVersion, ...]:
    """Every released version, oldest first; SchemaError unless they are numbered 1 to N."""
    files = {}
    for path in Path(__file__).parent.iterdir():
        if match := _FILE_NAME.fullmatch(path.name):
            files[int(match[1])] = path
    if not files or sorted(files) != list(range(1, len(files) + 1)):
        raise SchemaError(f"UsageEvent schema versions must be 1 to N, found {sorted(files)}")
    return tuple(_load(files[number], number) for number in sorted(files))


RELEASED = _released()
CURRENT = RELEASED[-1]
_BY_CANONICAL_FORM = {version.canonical: version for version in RELEASED}


def version_with_canonical_form(canonical: str | None) -> SchemaVersion | None:
    """The released version whose Parsing Canonical Form is `canonical`, if any (docs and
    formatting do not count: a registry may hold the same schema written differently)."""
    return _BY_CANONICAL_FORM.get(canonical) if canonical is not None else None
