"""Every released UsageEvent schema stays readable by the current one.

Ground truth is fastavro: records of each earlier version are written with its schemaless
writer and read back by its resolving reader with the current schema as the reader, which
fails if a schema change broke backward compatibility. meterpipe's codecs must give the same
values. Schemas come from the files, headers from fastavro's fingerprints.
"""

from __future__ import annotations

import copy
import fnmatch
import io
import json
import tomllib
import uuid
from pathlib import Path
from typing import Any, cast

import fastavro
import polars as pl
import pytest
from confluent_kafka.schema_registry import Schema
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpipe.errors import SchemaError
from schemas.avro_decode import decode_records
from schemas.codec import FRAME_SCHEMA, RegistryCodec, SingleObjectCodec
from schemas.resolution import plan_resolution, resolve_columns
from schemas.versions import CURRENT, RELEASED
from tests.schemas.schema_files import (
    RELEASED_FILES,
    SCHEMA_DIR,
    fingerprint,
    header,
    parse,
    read_avsc,
    records_of,
    written,
)

Record = dict[str, Any]

# The CRC-64-AVRO fingerprint of each released version, as on the wire. A released schema is
# never edited (events written with it may still be on the topic): a new version is a new
# file, and its fingerprint is added here.
RELEASED_FINGERPRINTS = {1: "2a7b11f6a2d3bbb4", 2: "abd3c5c3af896024"}


AVSCS = [read_avsc(path) for path in RELEASED_FILES]
SCHEMAS = [parse(avsc) for avsc in AVSCS]
READER = SCHEMAS[-1]
EARLIER = [pytest.param(n, id=path.name) for n, path in enumerate(RELEASED_FILES[:-1])]
FEW = settings(max_examples=150, deadline=None, database=None)


def read_as_current(schema: dict[str, Any], body: bytes) -> Record:
    """What fastavro reads of `body`, written with `schema`, as a current record."""
    return cast(Record, fastavro.schemaless_reader(io.BytesIO(body), schema, READER))


def early(n: int, **changes: object) -> Record:
    """A realistic record of the first version, different for each `n`."""
    record: Record = {
        "accountId": str(uuid.UUID(int=n + 1)), "developerId": str(uuid.UUID(int=10**20 + n)),
        "pricingUnit": None if n % 3 == 0 else "API_CALL",
        "customUnit": "seats" if n % 3 == 0 else None,
        "quantity": f"{n}.000000000001", "unitPrice": "0.25" if n % 2 else None,
        "description": "Überstunden ☕" if n % 4 else None, "currency": "EUR" if n % 2 else None,
        "eventDate": f"2026-07-{n % 28 + 1:02d}T19:20:30+01:00", "eventId": f"evt-{n}",
        "billable": n % 5 != 0, "uploadRef": None if n % 2 else "u-1", "rowNumber": n + 2,
        "eventIdAssigned": n % 7 == 0,
    }  # fmt: skip
    return {**record, **changes}


def test_released_schemas_are_never_edited() -> None:
    found = {n: fingerprint(schema) for n, schema in enumerate(SCHEMAS, start=1)}
    assert found == RELEASED_FINGERPRINTS


def test_the_newest_released_file_is_the_current_schema() -> None:
    assert [version.number for version in RELEASED] == list(range(1, len(RELEASED_FILES) + 1))
    assert [version.text for version in RELEASED] == [p.read_text() for p in RELEASED_FILES]
    assert [version.single_object_header for version in RELEASED] == [header(s) for s in SCHEMAS]
    assert CURRENT is RELEASED[-1]
    assert FRAME_SCHEMA.names() == [field["name"] for field in AVSCS[-1]["fields"]]
    assert not (SCHEMA_DIR / "usage_event.avsc").exists()


def test_every_released_schema_is_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["schemas"]
    for path in RELEASED_FILES:
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), path.name


@pytest.mark.parametrize("old", EARLIER)
@FEW
@given(data=st.data())
def test_the_current_schema_reads_what_every_earlier_version_wrote(
    old: int, data: st.DataObject
) -> None:
    records = data.draw(st.lists(records_of(AVSCS[old]), max_size=6))
    bodies = [written(SCHEMAS[old], record) for record in records]
    expected = [read_as_current(SCHEMAS[old], body) for body in bodies]
    result = SingleObjectCodec().decode([header(SCHEMAS[old]) + body for body in bodies])
    assert (result.frame.to_dicts(), result.failures) == (expected, [])
    assert result.frame.schema == FRAME_SCHEMA


def test_a_batch_of_every_version_keeps_its_order_and_refuses_only_the_unknown() -> None:
    old, current = SCHEMAS[0], READER
    now = {**early(1), "sourceFormat": "solvimon", "subscriptionRef": "s", "properties": "{}"}
    values = [
        header(old) + written(old, early(0)),
        header(current) + written(current, now),
        b"\xc3\x01" + bytes(8) + written(old, early(2)),  # a fingerprint of no released version
        header(old) + written(old, early(3))[:-1],  # truncated
        None,
        header(old) + written(old, early(4)),
    ]
    result = SingleObjectCodec().decode(values)
    assert result.failures == [(2, "unknown_schema"), (3, "undecodable"), (4, "not_avro")]
    assert result.positions == [0, 1, 5]
    assert result.frame.to_dicts() == [
        read_as_current(old, written(old, early(0))),
        now,
        read_as_current(old, written(old, early(4))),
    ]


def mock_url() -> str:
    """A registry of its own for each test: mock:// registries live as long as the process."""
    return f"mock://{uuid.uuid4().hex}"


@pytest.mark.parametrize("old", EARLIER)
def test_registry_ids_of_earlier_versions_are_resolved(old: int) -> None:
    # The same schema may be registered under several subjects, written differently.
    codec = RegistryCodec(mock_url(), "usage-value")
    undocumented = {key: value for key, value in AVSCS[old].items() if key != "doc"}
    ids = [
        codec.client.register_schema("old-value", Schema(RELEASED_FILES[old].read_text(), "AVRO")),
        codec.client.register_schema("elsewhere", Schema(json.dumps(undocumented), "AVRO")),
    ]
    bodies = [written(SCHEMAS[old], early(n)) for n in range(4)]
    values = [b"\x00" + ids[n % 2].to_bytes(4, "big") + body for n, body in enumerate(bodies)]
    expected = [read_as_current(SCHEMAS[old], body) for body in bodies]
    current = codec.encode(pl.DataFrame(expected[:1], schema=FRAME_SCHEMA))
    result = codec.decode([*values, *current])
    assert (result.frame.to_dicts(), result.failures) == ([*expected, expected[0]], [])


# Avro's resolution rules on small hand-made schemas, each held to fastavro's verdict.
WRITER: dict[str, Any] = {
    "type": "record", "name": "R",
    "fields": [{"name": "a", "type": ["null", "string"]}, {"name": "b", "type": "long"}],
}  # fmt: skip
SMALL = parse(WRITER)
WRITTEN: list[Record] = [
    {"a": None, "b": 1},
    {"a": "", "b": -(2**63)},
    {"a": "é" * 20, "b": 2**63 - 1},
]


def reader(*changes: tuple[int, dict[str, Any] | None], **record: Any) -> dict[str, Any]:
    """WRITER with field i replaced (None: dropped, i past the end: added), record keys too."""
    fields = copy.deepcopy(WRITER["fields"])
    for index, field in sorted(changes, reverse=True):
        fields[index : index + 1] = [] if field is None else [field]
    return {**WRITER, **record, "fields": fields}


COMPATIBLE = {
    "same": reader(),
    "new fields with defaults": reader(
        (2, {"name": "c", "type": "string", "default": "x"}),
        (3, {"name": "d", "type": ["null", "long"], "default": None}),
        (4, {"name": "e", "type": "boolean", "default": True}),
    ),
    "field dropped": reader((0, None)),
    "T read as a union with null": reader((1, {"name": "b", "type": ["null", "long"]})),
    "field renamed with an alias": reader((1, {"name": "bee", "type": "long", "aliases": ["b"]})),
    "union read as T: nulls unreadable": reader((0, {"name": "a", "type": "string"})),
}
INCOMPATIBLE = {
    "type changed": reader((1, {"name": "b", "type": "string"})),
    "new field without default": reader((2, {"name": "c", "type": "long"})),
    "another record": reader(name="S"),
}


def fastavro_reads(body: bytes, reader_schema: dict[str, Any]) -> Record | None:
    """fastavro's resolution of `body` (written with WRITER); None if it cannot read it."""
    parsed = parse(reader_schema)
    try:
        return cast(Record, fastavro.schemaless_reader(io.BytesIO(body), SMALL, parsed))
    except fastavro.read.SchemaResolutionError:
        return None


@pytest.mark.parametrize("reader_schema", COMPATIBLE.values(), ids=COMPATIBLE.keys())
def test_resolved_columns_are_what_fastavro_reads(reader_schema: dict[str, Any]) -> None:
    bodies = [written(SMALL, record) for record in WRITTEN]
    expected = [fastavro_reads(body, reader_schema) for body in bodies]
    frame, statuses = decode_records(bodies, SMALL)
    assert statuses.tolist() == [0] * len(bodies)
    plan = plan_resolution(SMALL, parse(reader_schema))
    resolved, unreadable = resolve_columns(frame, plan)
    assert resolved.to_dicts() == [record for record in expected if record is not None]
    assert unreadable.tolist() == [record is None for record in expected]


@pytest.mark.parametrize("reader_schema", INCOMPATIBLE.values(), ids=INCOMPATIBLE.keys())
def test_what_fastavro_cannot_resolve_is_refused_before_reading(
    reader_schema: dict[str, Any],
) -> None:
    assert fastavro_reads(written(SMALL, WRITTEN[1]), reader_schema) is None
    with pytest.raises(SchemaError):
        plan_resolution(SMALL, parse(reader_schema))
