"""Tests of schemas.codec: byte-exact Avro bodies, fingerprints, batch decoding and framings.

Ground truth never comes from the code under test: bodies are checked against fastavro's
schemaless writer and reader (on a schema parsed here from the current .avsc file), fingerprints
against the Avro project's published test vectors and fastavro.
"""

from __future__ import annotations

import io
import json
import random
import uuid
from collections.abc import Callable
from typing import Any, cast

import fastavro
import polars as pl
import pyarrow as pa
import pytest
from confluent_kafka.schema_registry import Schema
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpipe.errors import SchemaError
from schemas import avro_decode
from schemas._avro_batch import encode_records, scan_records
from schemas.codec import (
    FIELD_NAMES,
    FRAME_SCHEMA,
    SINGLE_OBJECT_HEADER,
    RegistryCodec,
    SingleObjectCodec,
    decode_bodies,
    encode_bodies,
    make_codec,
)
from schemas.versions import CURRENT, crc64_avro
from tests.schemas.schema_files import CURRENT_FILE, read_avsc, records_of

AVSC = read_avsc(CURRENT_FILE)
SCHEMA = fastavro.parse_schema(AVSC)
FEW = settings(max_examples=200, deadline=None, database=None)

Record = dict[str, Any]


def avro_body(record: Record) -> bytes:
    """The reference encoding of `record`."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA, record)
    return out.getvalue()


def avro_read(body: bytes) -> Record | None:
    """The reference decoding of `body`; None unless it is exactly one record."""
    stream = io.BytesIO(body)
    try:
        record = cast(Record, fastavro.schemaless_reader(stream, SCHEMA, None))
    except (EOFError, ValueError, IndexError):
        return None
    return record if stream.tell() == len(body) else None


def frame_of(records: list[Record]) -> pl.DataFrame:
    return pl.DataFrame(records, schema=FRAME_SCHEMA)


def event(n: int, **changes: object) -> Record:
    """A realistic event, different for each `n`."""
    record: Record = {
        "accountId": str(uuid.UUID(int=n + 1)),
        "developerId": str(uuid.UUID(int=10**20 + n)),
        "pricingUnit": "API_CALL" if n % 3 else None,
        "customUnit": None if n % 3 else "seats",
        "quantity": f"{n}.{n % 1000:03d}",
        "unitPrice": "0.25" if n % 2 else None,
        "description": "Überstunden ☕" if n % 4 else None,
        "currency": "EUR" if n % 2 else None,
        "eventDate": f"2026-07-{n % 28 + 1:02d}T19:20:30+01:00",
        "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, str(n))),
        "billable": n % 5 != 0,
        "uploadRef": f"upload-{n // 100}",
        "rowNumber": n + 2,
        "eventIdAssigned": n % 7 == 0,
        "sourceFormat": "solvimon" if n % 3 == 2 else "appdirect",
        "subscriptionRef": f"sub-{n}" if n % 3 == 2 else None,
        "properties": '{"region":"eu"}' if n % 3 == 2 else None,
    }
    return {**record, **changes}


EVENTS = [event(n) for n in range(9)]

RECORDS = records_of(AVSC)


def test_field_names_and_frame_dtypes_follow_the_schema_file() -> None:
    assert [f["name"] for f in AVSC["fields"]] == list(FIELD_NAMES) == FRAME_SCHEMA.names()
    assert FRAME_SCHEMA["customUnit"] == pl.String
    assert FRAME_SCHEMA["billable"] == pl.Boolean
    assert FRAME_SCHEMA["rowNumber"] == pl.Int64


@FEW
@given(st.lists(RECORDS, max_size=6))
def test_bodies_are_byte_identical_to_fastavro(records: list[Record]) -> None:
    assert encode_bodies(frame_of(records)) == [avro_body(r) for r in records]


@FEW
@given(st.lists(RECORDS, min_size=2, max_size=8), st.data())
def test_slices_and_chunked_frames_encode_like_whole_ones(
    records: list[Record], data: st.DataObject
) -> None:
    # Arrow arrays of a slice start at an offset into their buffers (polars hands a frame
    # of several chunks over as one). Each must encode exactly the rows it shows.
    cut = data.draw(st.integers(1, len(records) - 1))
    head, tail = frame_of(records[:cut]), frame_of(records[cut:])
    chunked = pl.concat([head, tail], rechunk=False)
    assert encode_bodies(chunked) == [avro_body(r) for r in records]
    assert encode_bodies(chunked.slice(cut - 1)) == [avro_body(r) for r in records[cut - 1 :]]
    assert encode_bodies(frame_of(records).slice(1, cut)) == [
        avro_body(r) for r in records[1 : cut + 1]
    ]


def test_batches_of_many_blocks_encode_like_fastavro() -> None:
    # The encoder works 8,192 rows at a time with the GIL released: every block, and a
    # slice starting inside the first, must come out row for row.
    records = [event(n) for n in range(20_000)]
    frame = frame_of(records)
    assert encode_bodies(frame) == [avro_body(r) for r in records]
    assert encode_bodies(frame.slice(5_000)) == [avro_body(r) for r in records[5_000:]]


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(RECORDS, max_size=6))
def test_decoding_reference_bodies_gives_the_records_back(records: list[Record]) -> None:
    result = decode_bodies([avro_body(r) for r in records])
    assert result.frame.to_dicts() == records
    assert result.frame.schema == FRAME_SCHEMA
    assert result.positions == list(range(len(records)))
    assert result.failures == []


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda f: f.drop("eventId"), id="missing column"),
        pytest.param(lambda f: f.with_columns(pl.col("billable").cast(pl.String)), id="dtype"),
        pytest.param(lambda f: f.with_columns(accountId=pl.lit(None, pl.String)), id="null"),
    ],
)
def test_frames_that_do_not_fit_the_schema_are_refused(
    spoil: Callable[[pl.DataFrame], pl.DataFrame],
) -> None:
    with pytest.raises(SchemaError):
        encode_bodies(spoil(frame_of(EVENTS)))


# Published in the Avro project's share/test/data/schema-tests.txt, as Java signed longs.
@pytest.mark.parametrize(
    ("canonical", "fingerprint"),
    [
        ('"null"', 7195948357588979594),
        ('"boolean"', -6970731678124411036),
        ('"int"', 8247732601305521295),
        ('"long"', -3434872931120570953),
        ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ],
)
def test_crc64_avro_matches_the_spec_test_vectors(canonical: str, fingerprint: int) -> None:
    assert crc64_avro(canonical.encode()) == fingerprint % 2**64


def test_single_object_header_is_the_marker_then_the_little_endian_fingerprint() -> None:
    canonical = fastavro.schema.to_parsing_canonical_form(SCHEMA)
    # fastavro gives the bytes in the order the spec (and Java) put them on the wire.
    on_the_wire = bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
    fingerprint = crc64_avro(canonical.encode())
    assert CURRENT.canonical == canonical
    assert b"\xc3\x01" + on_the_wire == SINGLE_OBJECT_HEADER
    assert on_the_wire == fingerprint.to_bytes(8, "little") != fingerprint.to_bytes(8, "big")


CONSTANT_FIELDS = {"customUnit": None, "uploadRef": "u-1", "sourceFormat": "appdirect",
                   "subscriptionRef": None, "properties": None}  # fmt: skip


@pytest.mark.parametrize(
    "records",
    [
        pytest.param([event(n, **CONSTANT_FIELDS) for n in range(40)], id="some constant"),
        pytest.param([event(3)] * 4, id="all rows alike"),
    ],
)
def test_columns_with_one_value_are_encoded_like_any_other(records: list[Record]) -> None:
    # A column holding one value for all rows is encoded once and shared.
    values = SingleObjectCodec().encode(frame_of(records))
    assert values == [SINGLE_OBJECT_HEADER + avro_body(r) for r in records]


@pytest.mark.parametrize("make", [SingleObjectCodec, lambda: RegistryCodec(mock_url(), "s")])
def test_codecs_round_trip_and_frame_fastavro_bodies(make: Callable[[], Any]) -> None:
    codec = make()
    values = codec.encode(frame_of(EVENTS))
    size = 10 if isinstance(codec, SingleObjectCodec) else 5
    assert [v[size:] for v in values] == [avro_body(r) for r in EVENTS]
    assert len({v[:size] for v in values}) == 1
    result = codec.decode(values)
    assert result.frame.to_dicts() == EVENTS
    assert (result.positions, result.failures) == (list(range(len(EVENTS))), [])


@pytest.mark.parametrize("make", [SingleObjectCodec, lambda: RegistryCodec(mock_url(), "s")])
def test_codecs_handle_empty_batches(make: Callable[[], Any]) -> None:
    codec = make()
    assert codec.encode(frame_of([])) == []
    result = codec.decode([])
    assert result.frame.schema == FRAME_SCHEMA
    assert (result.frame.height, result.positions, result.failures) == (0, [], [])


def test_empty_batches_of_bodies() -> None:
    assert len(encode_bodies(frame_of([]))) == 0
    result = decode_bodies([])
    assert (result.frame.schema, result.positions, result.failures) == (FRAME_SCHEMA, [], [])


def test_single_object_decode_names_each_bad_message() -> None:
    other_schema = b"\xc3\x01" + bytes(8)
    good = SingleObjectCodec().encode(frame_of(EVENTS[:3]))
    values: list[bytes | None] = [
        good[0],
        None,
        b"",
        SINGLE_OBJECT_HEADER[:6],
        b'{"accountId": "x"}',
        other_schema + avro_body(EVENTS[1]),
        good[1][:-2],
        good[2],
    ]
    result = SingleObjectCodec().decode(values)
    assert result.failures == [
        (1, "not_avro"),
        (2, "not_avro"),
        (3, "not_avro"),
        (4, "not_avro"),
        (5, "unknown_schema"),
        (6, "undecodable"),
    ]
    assert result.positions == [0, 7]
    assert result.frame.to_dicts() == [EVENTS[0], EVENTS[2]]


def test_a_sliced_arrow_column_decodes_like_its_list() -> None:
    # As the consumer reads them: one large binary column, here cut out of a longer one
    # (its buffers start elsewhere) and with nulls (its validity bitmap is read too).
    good = SingleObjectCodec().encode(frame_of(EVENTS))
    values = [good[0], None, b"junk", *good[1:], None]
    column = pa.array([good[2], *values, good[0]], type=pa.large_binary()).slice(1, len(values))
    from_list, from_column = SingleObjectCodec().decode(values), SingleObjectCodec().decode(column)
    assert (
        from_column.failures
        == from_list.failures
        == [(1, "not_avro"), (2, "not_avro"), (len(values) - 1, "not_avro")]
    )
    assert from_column.positions == from_list.positions
    assert from_column.frame.to_dicts() == from_list.frame.to_dicts() == EVENTS


def first_union_at(body: bytes) -> int:
    """Offset of pricingUnit's union index: after accountId and a set developerId."""
    developer = 1 + body[0] // 2
    assert body[developer] == 2, "developerId is set"
    return developer + 2 + body[developer + 1] // 2


APPDIRECT_TAIL = b"\x12appdirect\x00\x00"  # sourceFormat, then null subscriptionRef, properties


def boolean_at(body: bytes) -> int:
    """Offset of eventIdAssigned in an AppDirect event's body: just before its tail."""
    assert body.endswith(APPDIRECT_TAIL)
    return len(body) - len(APPDIRECT_TAIL) - 1


def avro_long(value: int) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, "long", value)
    return out.getvalue()


def with_byte(body: bytes, offset: int, value: int) -> bytes:
    return body[:offset] + bytes([value]) + body[offset + 1 :]


# How a body can be corrupt, and a word its failure reason must contain.
CORRUPTIONS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (lambda body: body[:-1], "truncated"),
    "trailing byte": (lambda body: body + b"\x00", "1 unexpected bytes"),
    "random bytes": (lambda body: random.Random(7).randbytes(40), "body"),
    "union index 2": (lambda body: with_byte(body, first_union_at(body), 4), "IndexError"),
    "boolean byte 2": (lambda body: with_byte(body, boolean_at(body), 2), "malformed"),
    "bad utf-8": (lambda body: body.replace(b"2026-", b"2026\xff"), "UnicodeDecodeError"),
    "empty": (lambda body: b"", "truncated"),
    # Offsets past 2**63 must not wrap around to valid-looking positions.
    "absurd length": (lambda body: avro_long(2**63 - 20) + body[1:], "truncated"),
}


@pytest.mark.parametrize(("corrupt", "reason"), CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_body_in_a_batch_fails_alone(
    corrupt: Callable[[bytes], bytes], reason: str
) -> None:
    bodies = [avro_body(r) for r in EVENTS]
    bodies[4] = corrupt(bodies[4])
    assert bodies[4] != avro_body(EVENTS[4])
    result = decode_bodies(bodies)
    assert [index for index, _ in result.failures] == [4]
    assert reason in result.failures[0][1]
    assert result.positions == [0, 1, 2, 3, 5, 6, 7, 8]
    assert result.frame.to_dicts() == EVENTS[:4] + EVENTS[5:]


def mutations(body: bytes) -> st.SearchStrategy[bytes]:
    """Ways a body can go wrong: cut, extended, overwritten, replaced."""
    return st.one_of(
        st.integers(0, len(body) - 1).map(lambda k: body[:k]),
        st.binary(min_size=1, max_size=3).map(lambda extra: body + extra),
        st.tuples(st.integers(0, len(body) - 1), st.integers(0, 255)).map(
            lambda spot: body[: spot[0]] + bytes([spot[1]]) + body[spot[0] + 1 :]
        ),
        st.binary(max_size=64),
    )


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(RECORDS, min_size=1, max_size=6), st.data())
def test_decoding_never_accepts_more_than_fastavro(
    records: list[Record], data: st.DataObject
) -> None:
    bodies = [avro_body(r) for r in records]
    spoiled = data.draw(st.sets(st.integers(0, len(bodies) - 1), min_size=1))
    for index in spoiled:
        bodies[index] = data.draw(mutations(bodies[index]))
    result = decode_bodies(bodies)
    decoded = dict(zip(result.positions, result.frame.to_dicts(), strict=True))
    assert all(decoded[i] == avro_read(bodies[i]) for i in decoded)
    assert set(range(len(records))) - spoiled <= set(decoded)
    assert sorted([*decoded, *(index for index, _ in result.failures)]) == list(range(len(bodies)))


@pytest.mark.parametrize("length", [0, 1, 4, 11, 12, 13, 63, 64, 200])
def test_strings_decode_exactly_either_side_of_the_inline_view_limit(length: int) -> None:
    # Arrow keeps strings of up to 12 bytes inside the view and points at longer ones.
    text = ("é☕a" * length)[:length]
    records = [event(n, accountId=text, description=text[: n % (length + 1)]) for n in range(5)]
    result = decode_bodies([avro_body(r) for r in records])
    assert (result.frame.to_dicts(), result.failures) == (records, [])


def test_bad_utf8_in_two_columns_fails_only_those_bodies() -> None:
    bodies = [avro_body(r) for r in EVENTS]
    bodies[1] = bodies[1].replace(b"API_CALL", b"API\xffCALL")
    bodies[6] = bodies[6].replace(b"2026-", b"2026\xfe")
    result = decode_bodies(bodies)
    assert [index for index, _ in result.failures] == [1, 6]
    assert result.frame.to_dicts() == [EVENTS[i] for i in (0, 2, 3, 4, 5, 7, 8)]


# Each side of every rule of UTF-8, inside a text long enough to pass the 8-byte ASCII scan.
UTF8_EDGES = [
    b"\x7f", b"\xc2\x80", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xee\x80\x80",
    b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf",  # valid: the first and last of each form
    b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xed\xa0\x80",
    b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff",
    b"\xc2", b"\xe1\x80", b"\xf1\x80\x80", b"\xe1\x80\x41", b"\xf1\x80\x41\x80",
]  # fmt: skip


@pytest.mark.parametrize("edge", UTF8_EDGES, ids=lambda edge: edge.hex())
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_strings_decode_exactly_when_python_reads_them_as_utf8(edge: bytes, where: str) -> None:
    placed = {"start": edge + b"x" * 20, "middle": b"x" * 9 + edge + b"y" * 9}
    text = placed.get(where, b"x" * 20 + edge)
    marker = "m" * len(text)  # as long as the text, which replaces it in the body
    body = avro_body(event(0, description=marker)).replace(marker.encode(), text)
    result = decode_bodies([body])
    try:
        expected = text.decode("utf-8")
    except UnicodeDecodeError:
        assert ([i for i, _ in result.failures], result.frame.height) == ([0], 0)
    else:
        assert result.frame["description"].to_list() == [expected]


def test_a_varint_beyond_64_bits_is_malformed() -> None:
    body = avro_body(EVENTS[0])
    row_number = avro_long(EVENTS[0]["rowNumber"])
    assert body.count(b"\x02" + row_number) == 1
    ten_bytes = b"\xff" * 9 + b"\x02"  # the 10th byte may only carry bit 63
    result = decode_bodies([body.replace(b"\x02" + row_number, b"\x02" + ten_bytes)])
    assert result.positions == []
    assert "malformed" in result.failures[0][1]


def test_batches_too_large_for_one_view_buffer_are_decoded_in_parts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real limit is 2 GiB of bodies; a small one exercises the same split.
    monkeypatch.setattr(avro_decode, "_MAX_VIEW_OFFSET", 700)
    bodies = [avro_body(r) for r in EVENTS]
    bodies[7] = bodies[7][:-1]
    result = decode_bodies(bodies)
    assert result.frame.to_dicts() == EVENTS[:7] + EVENTS[8:]
    assert [index for index, _ in result.failures] == [7]
    huge = event(1, description="x" * 800)  # one body alone over the limit
    alone = decode_bodies([avro_body(EVENTS[0]), avro_body(huge)])
    assert (alone.positions, [index for index, _ in alone.failures]) == ([0], [1])


def mock_url() -> str:
    """A registry of its own for each test: mock:// registries live as long as the process."""
    return f"mock://{uuid.uuid4().hex}"


def test_registry_codec_registers_the_schema_and_puts_its_id_big_endian() -> None:
    codec = RegistryCodec(mock_url(), "usage-value")
    value = codec.encode(frame_of(EVENTS[:1]))[0]
    registered = codec.client.get_latest_version("usage-value")
    assert value[:5] == b"\x00" + registered.schema_id.to_bytes(4, "big")
    assert json.loads(registered.schema.schema_str) == AVSC


def test_registry_codecs_on_one_url_share_the_registry() -> None:
    url = mock_url()
    values = RegistryCodec(url, "producer-subject").encode(frame_of(EVENTS))
    result = RegistryCodec(url, "consumer-subject").decode(values)
    assert (result.frame.to_dicts(), result.failures) == (EVENTS, [])


def test_registry_decode_accepts_only_ids_of_the_same_canonical_form() -> None:
    codec = RegistryCodec(mock_url(), "usage-value")
    same = {k: v for k, v in AVSC.items() if k != "doc"}
    other = {**same, "fields": AVSC["fields"][:-1]}
    same_id = codec.client.register_schema("a", Schema(json.dumps(same, indent=1), "AVRO"))
    other_id = codec.client.register_schema("b", Schema(json.dumps(other), "AVRO"))
    body = avro_body(EVENTS[0])
    framed = [b"\x00" + i.to_bytes(4, "big") + body for i in (same_id, other_id, 999)]
    result = codec.decode([*framed, None, b"\x00\x00", b"\x01" + framed[0][1:]])
    assert result.failures == [
        (1, "unknown_schema"),
        (2, "unknown_schema"),
        (3, "not_avro"),
        (4, "not_avro"),
        (5, "not_avro"),
    ]
    assert (result.positions, result.frame.to_dicts()) == ([0], [EVENTS[0]])


def test_registry_decode_reports_undecodable_bodies() -> None:
    codec = RegistryCodec(mock_url(), "usage-value")
    values = codec.encode(frame_of(EVENTS[:3]))
    values[1] = values[1][:-1]
    result = codec.decode(values)
    assert result.failures == [(1, "undecodable")]
    assert result.frame.to_dicts() == [EVENTS[0], EVENTS[2]]


def test_make_codec_uses_the_registry_only_when_configured() -> None:
    # Unreachable: constructing must not touch the network.
    codec = make_codec("http://127.0.0.1:1", "usage-value")
    assert isinstance(codec, RegistryCodec)
    assert (codec.url, codec.subject) == ("http://127.0.0.1:1", "usage-value")
    assert isinstance(make_codec(None, "usage-value"), SingleObjectCodec)
    assert isinstance(make_codec("", "usage-value"), SingleObjectCodec)


def test_the_scanner_refuses_arguments_it_cannot_honour() -> None:
    values = pa.array([avro_body(EVENTS[0])], type=pa.large_binary())
    column = ("S", 0, *values.buffers())
    with pytest.raises(ValueError, match="header_size"):
        scan_records(1, column, 2, b"", (b"x",), b"s", 1_000)
    with pytest.raises(ValueError, match="kind"):
        scan_records(1, column, 0, b"", (b"",), b"sx", 1_000)
    with pytest.raises(ValueError, match="marker"):
        scan_records(1, column, 0, b"\x00", (b"",), b"s", 1_000)
    with pytest.raises(ValueError, match="too short"):
        scan_records(2, column, 0, b"", (b"",), b"s", 1_000)
    with pytest.raises(ValueError, match="binary column"):
        scan_records(1, ("L", 0, None, pa.array([1]).buffers()[1], None), 0, b"", (b"",), b"s", 9)


def test_the_encoder_refuses_buffers_that_do_not_hold_the_rows() -> None:
    longs = pa.array([1, 2, 3], type=pa.int64())
    _, values = longs.buffers()
    assert encode_records(3, [("l", 0, None, values, None)], b"") == [b"\x02", b"\x04", b"\x06"]
    with pytest.raises(ValueError, match="too short"):
        encode_records(4, [("l", 0, None, values, None)], b"")
    with pytest.raises(ValueError, match="too short"):
        encode_records(3, [("l", 1, None, values, None)], b"")
    gappy = pa.array([1, None, 3], type=pa.int64())
    with pytest.raises(ValueError, match="null"):
        encode_records(3, [("l", 0, *gappy.buffers(), None)], b"")
    with pytest.raises(ValueError, match="missing"):
        encode_records(3, [("s", 0, None, None, None)], b"")
