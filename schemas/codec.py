"""The UsageEvent Avro contract on the wire: schema, fingerprint, batch codecs and framings.

Events travel as Avro binary bodies behind a small header naming the writer schema, so a
consumer can refuse what it cannot read instead of mis-reading it. Two framings exist:

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
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import fastavro
import numpy as np
import polars as pl

from meterpipe.errors import SchemaError
from schemas.avro_columns import encode_records, polars_schema
from schemas.avro_decode import BARE, Framing, MessageValues, Status, binary_column, decode_records

__all__ = [
    "FIELD_NAMES",
    "FRAME_SCHEMA",
    "SINGLE_OBJECT_HEADER",
    "DecodeResult",
    "EventCodec",
    "FailureReason",
    "RegistryCodec",
    "SingleObjectCodec",
    "canonical_form",
    "crc64_avro",
    "decode_bodies",
    "encode_bodies",
    "load_schema",
    "make_codec",
    "schema_text",
]

FailureReason = Literal["not_avro", "unknown_schema", "undecodable"]
_FAILURE_REASONS: dict[Status, FailureReason] = {
    Status.NOT_FRAMED: "not_avro",
    Status.UNKNOWN_HEADER: "unknown_schema",
    Status.UNDECODABLE: "undecodable",
}

_SCHEMA_FILE = "usage_event.avsc"
_CRC64_EMPTY = 0xC15D213AA4D7A795


@functools.cache
def schema_text() -> str:
    """Return the UsageEvent schema JSON exactly as shipped (docs included), for registries."""
    try:
        return Path(__file__).with_name(_SCHEMA_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(f"cannot read the UsageEvent schema {_SCHEMA_FILE}") from exc


@functools.cache
def load_schema() -> dict[str, Any]:
    """Return the parsed UsageEvent schema (fastavro form); cached, so do not mutate it."""
    try:
        parsed = fastavro.parse_schema(json.loads(schema_text()))
    except (ValueError, fastavro.schema.SchemaParseException) as exc:
        raise SchemaError(f"the UsageEvent schema {_SCHEMA_FILE} is invalid: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaError(f"the UsageEvent schema {_SCHEMA_FILE} is not a record")
    return parsed


@functools.cache
def canonical_form() -> str:
    """Return the schema's Parsing Canonical Form: what fingerprints and equality are based on."""
    return fastavro.schema.to_parsing_canonical_form(load_schema())


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


FIELD_NAMES: tuple[str, ...] = tuple(field["name"] for field in load_schema()["fields"])
FRAME_SCHEMA: pl.Schema = polars_schema(load_schema())
# The spec stores the fingerprint little-endian (as Java's SchemaNormalization does).
SINGLE_OBJECT_HEADER = b"\xc3\x01" + crc64_avro(canonical_form().encode()).to_bytes(8, "little")


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
    return encode_records(frame, load_schema())


def decode_bodies(bodies: Sequence[bytes]) -> DecodeResult:
    """Decode schemaless UsageEvent bodies; failures carry a short human reason."""
    frame, statuses = decode_records(bodies, load_schema(), BARE)
    malformed = np.flatnonzero(statuses != Status.DECODED)
    failures = [(index, _failure_reason(bodies[index])) for index in malformed.tolist()]
    return DecodeResult(frame, np.flatnonzero(statuses == Status.DECODED).tolist(), failures)


def _decode_one(body: bytes) -> dict[str, Any] | str:
    """Return the record, or why `body` is not exactly one UsageEvent."""
    stream = io.BytesIO(body)
    try:
        record = cast(dict[str, Any], fastavro.schemaless_reader(stream, load_schema(), None))
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
    """A fixed-size header naming the writer schema, then the Avro body."""

    marker: bytes
    header_size: int
    # The headers seen so far that name our schema (`_accepts`), so each is asked once.
    _accepted_headers: tuple[bytes, ...] = ()

    @abstractmethod
    def _header(self) -> bytes:
        """Return the header to put before every body."""

    @abstractmethod
    def _accepts(self, header: bytes) -> bool:
        """Tell whether `header` (which starts with `marker`) names our schema."""

    def encode(self, frame: pl.DataFrame) -> list[bytes]:
        """Return one message value per row of `frame`."""
        return encode_records(frame, load_schema(), self._header())

    def decode(self, values: MessageValues) -> DecodeResult:
        """Decode message values; failures carry a `FailureReason` code."""
        column = binary_column(values)
        frame, statuses = decode_records(column, load_schema(), self._framing())
        unknown = np.flatnonzero(statuses == Status.UNKNOWN_HEADER).tolist()
        headers = {(column[index].as_py() or b"")[: self.header_size] for index in unknown}
        if self._remember_accepted([header for header in headers if self._accepts(header)]):
            frame, statuses = decode_records(column, load_schema(), self._framing())
        failed = np.flatnonzero(statuses != Status.DECODED).tolist()
        failures: list[tuple[int, str]] = [
            (index, _FAILURE_REASONS[Status(statuses[index])]) for index in failed
        ]
        return DecodeResult(frame, np.flatnonzero(statuses == Status.DECODED).tolist(), failures)

    def _framing(self) -> Framing:
        return Framing(self.header_size, self.marker, self._accepted_headers)

    def _remember_accepted(self, headers: list[bytes]) -> bool:
        """Remember more headers that name our schema; False if there were none."""
        self._accepted_headers = (*self._accepted_headers, *headers)
        return bool(headers)


class SingleObjectCodec(_HeaderCodec):
    """Avro single-object encoding: ``C3 01`` + CRC-64-AVRO fingerprint (LE) + body."""

    marker = b"\xc3\x01"
    header_size = len(SINGLE_OBJECT_HEADER)
    _accepted_headers = (SINGLE_OBJECT_HEADER,)

    def _header(self) -> bytes:
        return SINGLE_OBJECT_HEADER

    def _accepts(self, header: bytes) -> bool:
        return header == SINGLE_OBJECT_HEADER


class RegistryCodec(_HeaderCodec):
    """Confluent wire format: ``00`` + schema id (4 bytes, big-endian) + body.

    The schema is registered under `subject` on first use; messages whose schema id has
    our parsing canonical form are accepted, whatever subject or version they came from.
    """

    marker = b"\x00"
    header_size = 5

    def __init__(self, url: str, subject: str) -> None:
        self.url = url
        self.subject = subject
        self._schema_id: int | None = None
        self._accepted: dict[int, bool] = {}

    @property
    def client(self) -> Any:
        """The registry client for `url` (created on first use, shared per URL)."""
        return _registry_client(self.url)

    def _header(self) -> bytes:
        if self._schema_id is None:
            self._schema_id = _register(self.client, self.subject)
            self._accepted[self._schema_id] = True
        return self.marker + self._schema_id.to_bytes(4, "big")

    def _accepts(self, header: bytes) -> bool:
        schema_id = int.from_bytes(header[1:], "big")
        if schema_id not in self._accepted:
            registered = _registered_canonical_form(self.client, schema_id)
            self._accepted[schema_id] = registered == canonical_form()
        return self._accepted[schema_id]


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
        return int(client.register_schema(subject, Schema(schema_text(), "AVRO")))
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
