"""Pure parts of the HTTP API: bodies to disk, file names, references, scopes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meterpipe.api_keys import grants, hash_key
from meterpipe.web.access import is_loopback
from meterpipe.web.intake import checked_reference, file_name
from meterpipe.web.problems import ProblemError
from meterpipe.web.receive import Received, receive_form, receive_raw

BOUNDARY = "xYzBoundary"


async def _pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _form(file_bytes: bytes, **fields: str) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="u.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + file_bytes
        + b"\r\n"
    )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_a_form_file_goes_to_disk_hashed_with_its_fields(tmp_path: Path, piece: int) -> None:
    data = b"accountId,quantity\r\n" + bytes(range(256)) * 40
    body = _form(data, name="N", reference="ref-1")
    received: Received = asyncio.run(
        receive_form(
            _pieces(body, piece), f"multipart/form-data; boundary={BOUNDARY}", tmp_path, 10**6
        )
    )
    assert received.path.read_bytes() == data
    assert (received.size, received.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert received.fields == {"name": "N", "reference": "ref-1"}
    assert received.filename == "u.csv"


def test_over_the_limit_nothing_is_left(tmp_path: Path) -> None:
    with pytest.raises(ProblemError) as raised:
        asyncio.run(receive_raw(_pieces(b"x" * 1000, 100), tmp_path, 999))
    assert raised.value.status == 413
    with pytest.raises(ProblemError):
        asyncio.run(
            receive_form(
                _pieces(_form(b"y" * 1000), 64),
                f"multipart/form-data; boundary={BOUNDARY}",
                tmp_path,
                500,
            )
        )
    assert list(tmp_path.iterdir()) == []


def test_a_failing_stream_leaves_nothing(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"abc"
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        asyncio.run(receive_raw(broken(), tmp_path, 100))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "upload.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\usage.csv", "usage.csv"),
        (".hidden.csv", "hidden.csv"),
        ("a\x00b\nc.csv", "a_b_c.csv"),
        ("é" * 200, "é" * 75),
    ],
)
def test_file_names_are_safe_path_parts(given: str | None, expected: str) -> None:
    assert file_name(given) == expected


@pytest.mark.parametrize("reference", ["a", "2026-10-acme", "u-0123456789abcdef", "a.b_c-d"])
def test_references_that_name_uploads(reference: str) -> None:
    assert checked_reference(reference) == reference


@pytest.mark.parametrize("reference", ["", "a--b", "-a", "a-", "a b", "é", "x" * 65, "a/b"])
def test_references_refused(reference: str) -> None:
    with pytest.raises(ProblemError):
        checked_reference(reference)


def test_scopes_and_hashes() -> None:
    assert grants(["admin"], "upload")
    assert grants(["admin"], "read")
    assert grants(["read"], "read")
    assert not grants(["read"], "upload")
    assert not grants(["upload"], "admin")
    assert hash_key("k") == hashlib.sha256(b"k").hexdigest()
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.0.0.1")] == [
        True, True, True, False, False,
    ]  # fmt: skip
