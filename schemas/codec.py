"""The UsageEvent Avro contract on the wire: schema, fingerprint, batch codecs and framings.

Events travel as Avro binary bodies behind a small header naming the writer schema, so a
consumer reads events written with any released version of the schema (`schemas.versions`:
an earlier one is resolved to the current one) and refuses what it cannot read instead of
mis-reading it. Producers always write the current version. Two framings exist:

- Avro single-object encoding (``C3 01`` + the schema's 8-byte CRC-64-AVRO fingerprint,
  little-endian): self-describing, needs no service; the default.
- Confluent Schema Registry wire format (``00`` + 4-byte big-endian schema id): for
  deployments that run a registry.

Both encode and decode whole batches at once (see `schemas.avro_columns` and
`schemas.avro_decode`), because
publishing and consuming many small events one dict at a time is where a Python pipeline
spends its time. Bad messages are values in `DecodeResult.failures`, never exceptions:
one corrupt event must not stop a consumer.
"""

from __future__ import annotations

import functools
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias, cast

import fastavro
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from meterpipe.errors import SchemaError
from schemas.avro_columns import encode_records, polars_schema
from schemas.avro_decode import BARE, Framing, MessageValues, Status, binary_column, decode_records
from schemas.resolution import plan_resolution, resolve_columns
from schemas.versions import CURRENT, RELEASED, SchemaVersion, version_with_canonical_form

__all__ = [
    "FIELD_NAMES",
    "FRAME_SCHEMA",
    "SINGLE_OBJECT_HEADER",
    "DecodeResult",
    "EventCodec",
    "FailureReason",
    "RegistryCodec",
    "SingleObjectCodec",
    "decode_bodies",
    "encode_bodies",
    "make_codec",
]

FailureReason = Literal["not_avro", "unknown_schema", "undecodable"]
_FAILURE_REASONS: dict[Status, FailureReason] = {
    Status.NOT_FRAMED: "not_avro",
    Status.UNKNOWN_HEADER: "unknown_schema",
    Status.UNDECODABLE: "undecodable",
}

FIELD_NAMES: tuple[str, ...] = tuple(field["name"] for field in CURRENT.parsed["fields"])
FRAME_SCHEMA: pl.Schema = polars_schema(CURRENT.parsed)
SINGLE_OBJECT_HEADER = CURRENT.single_object_header
# Planned when the module loads: a released version the current schema cannot read is an
# error at start, never in the middle of a stream.
_RESOLUTIONS = {v: plan_resolution(v.parsed, CURRENT.parsed) for v in RELEASED[:-1]}
_BY_SINGLE_OBJECT_HEADER = {version.single_object_header: version for version in RELEASED}
_Positions: TypeAlias = npt.NDArray[np.int64]
_Statuses: TypeAlias = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class DecodeResult:
    """Decoded events in input order, where each came from, and what could not be decoded.

    `frame` has the columns of `FRAME_SCHEMA`; row i came from input `positions[i]`.
    `failures` lists (input index, reason) for every other input, in input order.
    """

    frame: pl.DataFrame
    positions: list[int]
    failures: list[tuple[int, str]]


def encode_bodies(frame: pl.DataFrame) -> list[bytes]:
    """Encode each row of `frame` (columns as in `FRAME_SCHEMA`) as a schemaless Avro body."""
    return encode_records(frame, CURRENT.parsed)


def decode_bodies(bodies: Sequence[bytes]) -> DecodeResult:
    """Decode schemaless UsageEvent bodies; failures carry a short human reason."""
    frame, statuses = decode_records(bodies, CURRENT.parsed, BARE)
    malformed = np.flatnonzero(statuses != Status.DECODED)
    failures = [(index, _failure_reason(bodies[index])) for index in malformed.tolist()]
    return DecodeResult(frame, np.flatnonzero(statuses == Status.DECODED).tolist(), failures)


def _decode_one(body: bytes) -> dict[str, Any] | str:
    """Return the record, or why `body` is not exactly one UsageEvent."""
    stream = io.BytesIO(body)
    try:
        record = cast(dict[str, Any], fastavro.schemaless_reader(stream, CURRENT.parsed, None))
    except EOFError:
        return "truncated body"
    except (ValueError, IndexError) as exc:  # bad UTF-8, impossible union index, ...
        return f"invalid body ({type(exc).__name__}: {exc})"[:120]
    extra = len(body) - stream.tell()
    return f"{extra} unexpected bytes after the record" if extra else record


def _failure_reason(body: bytes) -> str:
    """Explain why a body `well_formed` rejected is bad, in fastavro's words when it has some."""
    outcome = _decode_one(body)
    # fastavro tolerates what the spec forbids: booleans other than 0/1, negative union
    # indexes, varints over 10 bytes.
    return outcome if isinstance(outcome, str) else "malformed body (boolean, union or varint)"


class EventCodec(Protocol):
    """Turns event frames into Kafka message values and back."""

    def encode(self, frame: pl.DataFrame) -> list[bytes]:
        """Return one message value per row of `frame`."""
        ...

    def decode(self, values: MessageValues) -> DecodeResult:
        """Decode message values; failures carry a `FailureReason` code."""
        ...


class _HeaderCodec(ABC):
    """A fixed-size header naming the writer schema, then the Avro body.

    Events of the current version are decoded in one C pass. Those of an earlier released
    version take one more pass per version present in the batch, with their writer's schema,
    and are then resolved to the current columns (`schemas.resolution`), so that they are
    validated, deduplicated and counted like any other. A header naming no released version
    is `unknown_schema`.
    """

    marker: bytes
    header_size: int

    def __init__(self) -> None:
        # Each header seen so far and the released version it names (None: none), so that
        # each is looked up once.
        self._writers: dict[bytes, SchemaVersion | None] = {}

    @abstractmethod
    def _header(self) -> bytes:
        """Return the header to put before every body."""

    @abstractmethod
    def _writer_of(self, header: bytes) -> SchemaVersion | None:
        """The released version `header` (which starts with `marker`) names, if any."""

    def encode(self, frame: pl.DataFrame) -> list[bytes]:
        """Return one message value per row of `frame`."""
        return encode_records(frame, CURRENT.parsed, self._header())

    def decode(self, values: MessageValues) -> DecodeResult:
        """Decode message values; failures carry a `FailureReason` code."""
        column = binary_column(values)
        frame, statuses = decode_records(column, CURRENT.parsed, self._framing(CURRENT))
        unknown = np.flatnonzero(statuses == Status.UNKNOWN_HEADER)
        if not unknown.size:  # the usual batch: every event is of the current version
            return _result(frame, np.flatnonzero(statuses == Status.DECODED), statuses)
        versions = self._learn(_headers(column, unknown, self.header_size))
        if CURRENT in versions:  # a header seen for the first time names the current version
            frame, statuses = decode_records(column, CURRENT.parsed, self._framing(CURRENT))
        parts = [(frame, np.flatnonzero(statuses == Status.DECODED))]
        parts += [self._decode_earlier(column, v, statuses) for v in versions - {CURRENT}]
        return _result(*_in_input_order(parts), statuses)

    def _framing(self, version: SchemaVersion) -> Framing:
        """The framing whose accepted headers are those known to name `version`."""
        headers = tuple(header for header, named in self._writers.items() if named is version)
        return Framing(self.header_size, self.marker, headers)

    def _learn(self, headers: list[bytes]) -> set[SchemaVersion]:
        """The released versions `headers` name, looking up those seen for the first time."""
        for header in headers:
            if header not in self._writers:
                self._writers[header] = self._writer_of(header)
        return {version for header in headers if (version := self._writers[header])}

    def _decode_earlier(
        self, column: pa.Array, version: SchemaVersion, statuses: _Statuses
    ) -> tuple[pl.DataFrame, _Positions]:
        """Decode the events written with earlier `version` as current ones, and their
        positions; the outcome of each of its messages goes into `statuses`."""
        written, found = decode_records(column, version.parsed, self._framing(version))
        ours = (found == Status.DECODED) | (found == Status.UNDECODABLE)
        statuses[ours] = found[ours]
        frame, unreadable = resolve_columns(written, _RESOLUTIONS[version])
        positions = np.flatnonzero(found == Status.DECODED)
        statuses[positions[unreadable]] = Status.UNDECODABLE
        return frame, positions[~unreadable]


def _headers(column: pa.Array, indexes: _Positions, size: int) -> list[bytes]:
    """The distinct headers of the values at `indexes` (framed, so none is null)."""
    heads = pc.binary_slice(column.take(pa.array(indexes)), 0, size)
    found: list[bytes] = pc.unique(heads).to_pylist()
    return found


def _in_input_order(
    parts: list[tuple[pl.DataFrame, _Positions]],
) -> tuple[pl.DataFrame, _Positions]:
    """The decoded rows of every version as one frame, in the order of their messages."""
    positions = np.concatenate([part_positions for _, part_positions in parts])
    order = np.argsort(positions, kind="stable")
    frame = pl.concat([part for part, _ in parts])
    return frame.select(pl.all().gather(order)), positions[order]


def _result(frame: pl.DataFrame, positions: _Positions, statuses: _Statuses) -> DecodeResult:
    """The decode result: `frame`'s rows came from `positions`; a failure per other status."""
    failed = np.flatnonzero(statuses != Status.DECODED).tolist()
    failures: list[tuple[int, str]] = [
        (index, _FAILURE_REASONS[Status(statuses[index])]) for index in failed
    ]
    return DecodeResult(frame, positions.tolist(), failures)


class SingleObjectCodec(_HeaderCodec):
    """Avro single-object encoding: ``C3 01`` + CRC-64-AVRO fingerprint (LE) + body.

    The fingerprint of every released version is known, so no service is asked.
    """

    marker = b"\xc3\x01"
    header_size = len(SINGLE_OBJECT_HEADER)

    def __init__(self) -> None:
        super().__init__()
        # Known before the first batch, which then takes a single pass.
        self._writers[SINGLE_OBJECT_HEADER] = CURRENT

    def _header(self) -> bytes:
        return SINGLE_OBJECT_HEADER

    def _writer_of(self, header: bytes) -> SchemaVersion | None:
        return _BY_SINGLE_OBJECT_HEADER.get(header)


class RegistryCodec(_HeaderCodec):
    """Confluent wire format: ``00`` + schema id (4 bytes, big-endian) + body.

    The current schema is registered under `subject` on first use. A message is read when
    the registry's schema for its id has the Parsing Canonical Form of a released version
    (an earlier one is resolved to the current one), whatever subject or version number it
    was registered under.
    """

    marker = b"\x00"
    header_size = 5

    def __init__(self, url: str, subject: str) -> None:
        super().__init__()
        self.url = url
        self.subject = subject
        self._registered: bytes | None = None

    @property
    def client(self) -> Any:
        """The registry client for `url` (created on first use, shared per URL)."""
        return _registry_client(self.url)

    def _header(self) -> bytes:
        if self._registered is None:
            schema_id = _register(self.client, self.subject)
            self._registered = self.marker + schema_id.to_bytes(4, "big")
            self._writers[self._registered] = CURRENT
        return self._registered

    def _writer_of(self, header: bytes) -> SchemaVersion | None:
        schema_id = int.from_bytes(header[1:], "big")
        return version_with_canonical_form(_registered_canonical_form(self.client, schema_id))


def make_codec(registry_url: str | None, subject: str) -> EventCodec:
    """Return a `RegistryCodec` when a registry URL is configured, else `SingleObjectCodec`."""
    return RegistryCodec(registry_url, subject) if registry_url else SingleObjectCodec()


@functools.cache
def _registry_client(url: str) -> Any:
    """One client per registry URL, so codecs in one process see the same ``mock://`` registry."""
    # Imported here: only registry deployments pay for httpx and authlib.
    from confluent_kafka.schema_registry import SchemaRegistryClient

    # new_client, unlike the constructor, maps mock:// URLs to the in-memory registry.
    return SchemaRegistryClient.new_client({"url": url})


def _register(client: Any, subject: str) -> int:
    import httpx
    from confluent_kafka.schema_registry import Schema, SchemaRegistryError

    try:
        return int(client.register_schema(subject, Schema(CURRENT.text, "AVRO")))
    except (SchemaRegistryError, httpx.HTTPError) as exc:
        raise SchemaError(f"cannot register the UsageEvent schema under {subject!r}") from exc


def _registered_canonical_form(client: Any, schema_id: int) -> str | None:
    """Return the canonical form of registered schema `schema_id`; None if absent or not Avro."""
    import httpx
    from confluent_kafka.schema_registry import SchemaRegistryError

    try:
        schema = client.get_schema(schema_id)
    except (SchemaRegistryError, httpx.HTTPError) as exc:
        if isinstance(exc, SchemaRegistryError) and exc.http_status_code == 404:
            return None
        raise SchemaError(f"cannot look up schema id {schema_id} in the registry") from exc
    if schema.schema_type not in (None, "AVRO"):
        return None
    try:
        parsed = fastavro.parse_schema(json.loads(schema.schema_str))
    except (ValueError, fastavro.schema.SchemaParseException):
        return None
    return fastavro.schema.to_parsing_canonical_form(parsed)
