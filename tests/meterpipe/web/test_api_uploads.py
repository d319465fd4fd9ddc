"""Uploads over real HTTP against a real `meterpipe up`: the inbox's path, whatever the door."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.store import UploadRecord, open_store
from meterpipe.sample_data import SampleSpec, write_sample_file
from meterpipe.settings import StoreSettings
from tests.groundtruth import as_comparable, expected_totals
from tests.meterpipe.web.conftest import Server, ServerFactory
from tests.processes import uploads, wait_for
from tests.rows import VALID_CELLS

pytestmark = pytest.mark.slow
CSV = {"Content-Type": "text/csv"}


def _sample(path: Path, rows: int, seed: int) -> Path:
    write_sample_file(path, SampleSpec(rows=rows, seed=seed, accounts=50))
    return path


def _rows_file(path: Path, *rows: dict[str, str | None]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(VALID_CELLS))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _pieces(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    """The file in pieces: httpx sends a generator with chunked transfer encoding."""
    with path.open("rb") as handle:
        while piece := handle.read(size):
            yield piece


def test_raw_and_form_uploads_reach_done_with_exact_totals(server: Server, tmp_path: Path) -> None:
    first = _sample(tmp_path / "first.csv", 20_000, seed=1)
    second = _sample(tmp_path / "second.csv", 5_000, seed=2)
    with server.client() as client:
        raw = client.post(
            "/v1/uploads", params={"reference": "oct-1", "name": "first.csv",
                                   "description": "October"},
            headers=CSV, content=_pieces(first),
        )  # fmt: skip
        assert raw.status_code == 202, raw.text
        assert raw.headers["Location"] == "/v1/uploads/oct-1"
        assert raw.json()["status"] == "Processing"
        with second.open("rb") as handle:
            form = client.post(
                "/v1/uploads", files={"file": ("second.csv", handle, "text/csv")},
                data={"description": "from a form"},
            )  # fmt: skip
        assert form.status_code == 202, form.text
        reference = form.json()["reference"]
        assert form.headers["Location"] == f"/v1/uploads/{reference}"
    done = [server.wait_final("oct-1"), server.wait_final(reference)]
    assert [u["status"] for u in done] == ["Done", "Done"]
    assert (done[0]["name"], done[0]["description"], done[0]["records"]) == (
        "first.csv", "October", 20_000,
    )  # fmt: skip
    assert (done[1]["name"], done[1]["description"]) == ("second.csv", "from a form")
    with server.client() as client:
        totals = client.get("/v1/totals").json()["items"]
    assert as_comparable(totals) == expected_totals(first, second)
    # The same objects as the CLI's --json, and the files went the inbox's way.
    cli = {u["reference"]: u for u in uploads(server.env)}
    assert cli["oct-1"] == done[0]

    # The watcher moves a file to done/ once it sees its upload Done: a moment later.
    def moved() -> bool | None:
        names = sorted(p.name for p in (server.inbox / "done").glob("*"))  # may not exist yet
        return names == ["first.csv", "second.csv"] or None

    wait_for(moved, 60, "both files in done/")
    assert not list((server.data_dir / "incoming").iterdir())


def test_the_list_pages_newest_first(server: Server) -> None:
    with server.client() as client:
        for number in range(5):
            body = f"not,a,template\n{number},2,3\n"
            sent = client.post("/v1/uploads", params={"reference": f"r{number}"}, headers=CSV,
                               content=body)  # fmt: skip
            assert sent.status_code == 202
        for number in range(5):
            server.wait_final(f"r{number}")
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/uploads", params=params).json()
            seen += [u["reference"] for u in page["items"]]
            if (cursor := page["next"]) is None:
                break
        assert seen == [f"r{n}" for n in reversed(range(5))]
        errors = client.get("/v1/uploads", params={"status": "Error"}).json()["items"]
        assert len(errors) == 5
        assert client.get("/v1/uploads", params={"status": "Done"}).json() == {
            "items": [], "next": None,
        }  # fmt: skip
        bad = client.get("/v1/uploads", params={"cursor": "nonsense"})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"


def test_a_reference_names_one_file(server: Server, tmp_path: Path) -> None:
    """Same reference and bytes: the upload there is, nothing counted twice; other bytes: 409."""
    source = _sample(tmp_path / "usage.csv", 3_000, seed=4)
    other = _sample(tmp_path / "other.csv", 10, seed=5)
    with server.client() as client:
        first = client.post("/v1/uploads", params={"reference": "once"}, headers=CSV,
                            content=source.read_bytes())  # fmt: skip
        again = client.post("/v1/uploads", params={"reference": "once"}, headers=CSV,
                            content=source.read_bytes())  # fmt: skip
        clash = client.post("/v1/uploads", params={"reference": "once"}, headers=CSV,
                            content=other.read_bytes())  # fmt: skip
        assert (first.status_code, again.status_code, clash.status_code) == (202, 200, 409)
        assert again.json()["reference"] == "once"
        assert clash.headers["content-type"] == "application/problem+json"
        assert clash.json()["status"] == 409
        assert server.wait_final("once")["status"] == "Done"
        # The same bytes without a reference are a duplicate, as in the inbox.
        copy = client.post("/v1/uploads", headers=CSV, content=source.read_bytes()).json()
        duplicate = server.wait_final(copy["reference"])
        assert (duplicate["duplicateOf"], duplicate["accepted"]) == ("once", 0)
        totals = client.get("/v1/totals").json()["items"]
    assert as_comparable(totals) == expected_totals(source)
    assert len(uploads(server.env)) == 2


def test_bad_files_end_in_error_with_their_report(server: Server, tmp_path: Path) -> None:
    good = dict(VALID_CELLS)
    bad = {**VALID_CELLS, "eventId": "evt-2", "quantity": "-3"}
    path = _rows_file(tmp_path / "mixed.csv", good, bad)
    with server.client() as client:
        strict = client.post("/v1/uploads", params={"reference": "strict"}, headers=CSV,
                             content=path.read_bytes())  # fmt: skip
        skipping = client.post("/v1/uploads", params={"reference": "skip", "skipInvalid": "true"},
                               headers=CSV, content=path.read_bytes())  # fmt: skip
        latin = client.post("/v1/uploads", params={"reference": "latin"}, headers=CSV,
                            content="accountId,caf\xe9\n".encode("latin-1"))  # fmt: skip
        assert [r.status_code for r in (strict, skipping, latin)] == [202, 202, 202]
        rejected = server.wait_final("strict")
        assert (rejected["status"], rejected["accepted"], rejected["errorCount"]) == ("Error", 0, 1)
        (error,) = rejected["errors"]
        assert (error["row"], error["column"], error["value"]) == (3, "quantity", "-3")
        report = client.get("/v1/uploads/strict/errors.csv")
        assert report.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(report.text)))
        assert [(r["row"], r["column"], r["value"], r["reason"]) for r in rows] == [
            ("3", "quantity", "'-3", error["reason"]),
        ]  # fmt: skip
        skipped = server.wait_final("skip")
        assert (skipped["status"], skipped["accepted"], skipped["rejected"]) == ("Done", 1, 1)
        unreadable = server.wait_final("latin")
        assert unreadable["status"] == "Error"
        assert unreadable["errors"][0]["reason"] == "not_utf8"
        assert client.get("/v1/uploads/missing").status_code == 404
        assert client.get("/v1/uploads/missing/errors.csv").status_code == 404
    error_dir = server.inbox / "error"
    # A raw body without a name is named after its reference.
    wait_for((error_dir / "strict.csv.errors.csv").exists, 30, "the inbox's report")
    status = json.loads((error_dir / "strict.csv.status.json").read_text(encoding="utf-8"))
    assert status["reference"] == "strict"


def test_requests_the_api_refuses(server: Server) -> None:
    with server.client() as client:
        for params in ({"reference": "a--b"}, {"reference": "x" * 65}, {"format": "excel"}):
            refused = client.post("/v1/uploads", params=params, headers=CSV, content=b"a\n")
            assert refused.status_code == 422, params
            assert refused.headers["content-type"] == "application/problem+json"
        wrong_type = client.post("/v1/uploads", headers={"Content-Type": "application/pdf"},
                                 content=b"%PDF")  # fmt: skip
        assert wrong_type.status_code == 415
        no_file = client.post("/v1/uploads", data={"name": "x"}, files={"other": ("a", b"b")})
        assert no_file.status_code == 422
        assert client.get("/v1/nothing").status_code == 404
    assert uploads(server.env) == []
    assert not list((server.data_dir / "incoming").iterdir())


def test_a_body_over_the_limit_is_413_and_nothing_is_kept(
    web_server: ServerFactory, tmp_path: Path
) -> None:
    server = web_server(METERPIPE_MAX_UPLOAD_BYTES="100000")
    source = _sample(tmp_path / "big.csv", 2_000, seed=6)
    assert source.stat().st_size > 100_000
    with server.client() as client:
        declared = client.post("/v1/uploads", headers=CSV, content=source.read_bytes())
        streamed = client.post("/v1/uploads", headers=CSV, content=_pieces(source, 8192))
        with source.open("rb") as handle:
            form = client.post("/v1/uploads", files={"file": ("big.csv", handle, "text/csv")})
        assert [r.status_code for r in (declared, streamed, form)] == [413, 413, 413]
        assert declared.headers["content-type"] == "application/problem+json"
        small = client.post("/v1/uploads", headers=CSV, content=b"accountId\n")
        assert small.status_code == 202
    assert [u["reference"] for u in uploads(server.env)] == [small.json()["reference"]]
    assert not list((server.data_dir / "incoming").iterdir())


def test_a_client_that_disconnects_mid_body_leaves_nothing(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        "POST /v1/uploads?reference=dropped HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nContent-Type: text/csv\r\nContent-Length: 1000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(head.encode() + b"accountId,developerId\n" * 5000)
        incoming = server.data_dir / "incoming"
        # The server has the file open while the body arrives.
        wait_for(lambda: incoming.is_dir() and any(incoming.iterdir()), 30, "the body on disk")
    wait_for(lambda: not any(incoming.iterdir()), 30, "the partial body deleted")
    with server.client() as client:
        assert client.get("/v1/uploads/dropped").status_code == 404
        after = client.post("/v1/uploads", params={"reference": "after"}, headers=CSV,
                            content=b"accountId\n")  # fmt: skip
        assert after.status_code == 202
    assert [u["reference"] for u in uploads(server.env)] == ["after"]
    assert not list((server.inbox / "processing").glob("dropped*"))


def test_a_received_file_left_claimed_is_published_again_with_its_options(
    web_server: ServerFactory, pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    """As a restart finds a file received and handed over but not yet published."""
    path = _rows_file(tmp_path / "left.csv", dict(VALID_CELLS),
                      {**VALID_CELLS, "eventId": "evt-2", "quantity": "-3"})  # fmt: skip
    body = path.read_bytes()
    store = open_store(StoreSettings(data_dir=Path(pipeline_env["METERPIPE_DATA_DIR"])))
    try:
        key = hashlib.sha256(body).hexdigest()
        store.create_upload(UploadRecord(reference="left", name="left.csv", upload_key=key))
        store.record_upload_options("left", True, None)
    finally:
        store.close()
    processing = Path(pipeline_env["METERPIPE_INBOX"]) / "processing"
    processing.mkdir(parents=True)
    (processing / "left--left.csv").write_bytes(body)
    server = web_server()
    upload = server.wait_final("left")  # strict would have refused the whole file
    assert (upload["status"], upload["accepted"], upload["rejected"]) == ("Done", 1, 1)
    wait_for((server.inbox / "done" / "left.csv").exists, 30, "left.csv in done/")
