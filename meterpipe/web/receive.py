"""Request bodies to disk as they arrive: a raw CSV body, or the `file` part of a form.

Nothing of the file is held in memory beyond one received piece; the file is hashed on
the way. A body over the limit is 413 and its file is deleted; so is the file of a client
that disconnects mid-body (Starlette raises `ClientDisconnect`), or of any other failure.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from meterpipe.web.problems import ProblemError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = ["Received", "receive_form", "receive_raw"]

MAX_FIELD_BYTES = 4096


@dataclass
class Received:
    """A received file on disk, its size and SHA-256, and the form's other fields."""

    path: Path
    size: int = 0
    sha256: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None


class _Sink:
    """Writes the file's bytes, hashing them."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self._hash.update(data)
        self.size += len(data)

    def finish(self, received: Received) -> Received:
        self._handle.flush()
        received.size, received.sha256 = self.size, self._hash.hexdigest()
        return received


@contextmanager
def _incoming(folder: Path) -> Iterator[tuple[Received, _Sink]]:
    """A new file in `folder`, deleted unless the body was received whole."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.part"
    try:
        with path.open("xb") as handle:
            yield Received(path), _Sink(handle)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _too_large(limit: int) -> ProblemError:
    return ProblemError(413, f"the body is larger than the limit of {limit} bytes")


async def _limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        yield chunk


async def receive_raw(chunks: AsyncIterator[bytes], folder: Path, limit: int) -> Received:
    """Write a raw body into a new file in `folder`."""
    with _incoming(folder) as (received, sink):
        async for chunk in _limited(chunks, limit):
            sink.write(chunk)
        return sink.finish(received)


async def receive_form(
    chunks: AsyncIterator[bytes], content_type: str, folder: Path, limit: int
) -> Received:
    """Write the `file` part of a multipart/form-data body into a new file in `folder`."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ProblemError(400, "a multipart/form-data body needs a boundary")
    with _incoming(folder) as (received, sink):
        form = _FormWriter(sink, received)
        parser = MultipartParser(boundary, form.callbacks())
        async for chunk in _limited(chunks, limit):
            parser.write(chunk)
            form.raise_if_bad()
        parser.finalize()
        form.raise_if_bad()
        if not form.had_file:
            raise ProblemError(422, "the form has no `file` part")
        return sink.finish(received)


class _FormWriter:
    """Routes the parts of a form: the file part to the sink, small fields to a dict."""

    def __init__(self, sink: _Sink, received: Received) -> None:
        self._sink = sink
        self._received = received
        self._header_field = b""
        self._header_value = b""
        self._name: str | None = None
        self._is_file = False
        self._value = bytearray()
        self._error: ProblemError | None = None
        self.had_file = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin, "on_header_field": self._field,
            "on_header_value": self._header, "on_header_end": self._header_end,
            "on_part_data": self._data, "on_part_end": self._end,
        }  # fmt: skip

    def raise_if_bad(self) -> None:
        if self._error is not None:
            raise self._error

    def _begin(self) -> None:
        self._name, self._is_file, self._value = None, False, bytearray()

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            _, options = parse_options_header(self._header_value)
            self._name = options.get(b"name", b"").decode("utf-8", "replace")
            if self._name == "file":
                self._is_file = True
                filename = options.get(b"filename")
                self._received.filename = filename.decode("utf-8", "replace") if filename else None
        self._header_field = self._header_value = b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.had_file = True
            self._sink.write(data[start:end])
        elif len(self._value) + end - start > MAX_FIELD_BYTES:
            self._error = ProblemError(422, f"form field {self._name!r} is too long")
        else:
            self._value += data[start:end]

    def _end(self) -> None:
        if self._is_file:
            self.had_file = True
        elif self._name:
            self._received.fields[self._name] = self._value.decode("utf-8", "replace")
