"""The released UsageEvent schema files, found on disk without schemas.versions; hypothesis
records of any of them; and their encoding by fastavro, the reference."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, cast

import fastavro
from hypothesis import strategies as st

SCHEMA_DIR = Path(__file__).parents[2] / "schemas"


def _version(path: Path) -> int:
    """The N of usage_event.vN.avsc."""
    return int(path.name.split(".")[1].removeprefix("v"))


RELEASED_FILES = sorted(SCHEMA_DIR.glob("usage_event.v*.avsc"), key=_version)
CURRENT_FILE = RELEASED_FILES[-1]


def read_avsc(path: Path) -> dict[str, Any]:
    """The schema file's JSON, as written."""
    avsc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return avsc


def parse(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` parsed by fastavro."""
    return cast(dict[str, Any], fastavro.parse_schema(schema))


def fingerprint(schema: dict[str, Any]) -> str:
    """The CRC-64-AVRO fingerprint of `schema`'s canonical form, in hex as on the wire."""
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    return fastavro.schema.fingerprint(canonical, "CRC-64-AVRO")


def header(schema: dict[str, Any]) -> bytes:
    """The single-object header of `schema` (parsed)."""
    return b"\xc3\x01" + bytes.fromhex(fingerprint(schema))


def written(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """`record`'s schemaless body, written by fastavro with `schema`."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


# Strings > 8192 bytes need multi-byte length varints; repeating a short unit keeps
# hypothesis' data small while still covering any code point.
LONG_TEXT = st.builds(
    lambda unit, times: unit * times, st.text(min_size=1, max_size=3), st.integers(8193, 9000)
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.one_of(st.text(), LONG_TEXT),
    "boolean": st.booleans(),
    "long": st.one_of(
        st.sampled_from([0, 1, 63, 64, 8191, 8192, 2**62]),
        st.integers(0, 2**62),
        st.integers(-(2**63), 2**63 - 1),
    ),
}


def field_values(avro_type: str | list[str]) -> st.SearchStrategy[Any]:
    """Any value of a field of the contract's types: T or ["null", T]."""
    if isinstance(avro_type, list):
        return st.one_of(st.none(), VALUES[avro_type[1]])
    return VALUES[avro_type]


def records_of(avsc: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Any record of schema `avsc`: nulls, long and empty strings, varint edges."""
    return st.fixed_dictionaries({f["name"]: field_values(f["type"]) for f in avsc["fields"]})
