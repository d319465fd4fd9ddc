"""Templates, totals and periods over real HTTP, and `meterpipe serve` on its own."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from meterpipe.sample_data import SampleSpec, write_sample_file
from tests.groundtruth import as_comparable, expected_totals
from tests.meterpipe.web.conftest import Server, ServerFactory
from tests.processes import start_cli, stop, totals, wait_for
from tests.rows import VALID_CELLS

pytestmark = pytest.mark.slow
CSV = {"Content-Type": "text/csv"}


def _one_row(event_id: str) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, list(VALID_CELLS))
    writer.writeheader()
    writer.writerow({**VALID_CELLS, "eventId": event_id})
    return out.getvalue().encode()


def test_templates_and_totals_as_json_and_csv(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "usage.csv"
    write_sample_file(source, SampleSpec(rows=4_000, seed=11, accounts=20))
    with server.client() as client:
        template = client.get("/v1/templates/appdirect")
        assert template.status_code == 200
        header = template.text.strip().split(",")
        assert header == list(VALID_CELLS)
        assert client.get("/v1/templates/solvimon").status_code == 404  # no meters configured
        assert client.get("/v1/templates/excel").status_code == 422
        sent = client.post("/v1/uploads", headers=CSV, content=source.read_bytes())
        server.wait_final(sent.json()["reference"])
        as_json = client.get("/v1/totals").json()["items"]
        assert as_comparable(as_json) == expected_totals(source)
        assert as_json == totals(server.env)  # the CLI's objects
        as_csv = client.get("/v1/totals", headers={"Accept": "text/csv"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert [r["quantity"] for r in rows] == [r["quantity"] for r in as_json]
        account = as_json[0]["accountId"]
        one = client.get("/v1/totals", params={"account": account.upper()}).json()["items"]
        assert {r["accountId"] for r in one} == {account}
        assert client.get("/v1/totals", params={"period": "2026-13"}).status_code == 422


def test_periods_close_hold_and_open(server: Server) -> None:
    with server.client() as client:
        assert client.get("/v1/periods").json() == {"items": []}
        closed = client.post("/v1/periods/2026-07/close").json()
        assert closed == {
            "period": "2026-07",
            "state": "closed",
            "end": "2026-08-01T00:00:00+00:00",
        }
        late = client.post("/v1/uploads", params={"reference": "late"}, headers=CSV,
                           content=_one_row("evt-late"))  # fmt: skip
        refused = server.wait_final(late.json()["reference"])
        assert refused["status"] == "Error"
        assert refused["errors"][0]["reason"] == "period_closed"
        assert client.post("/v1/periods/2026-07/hold").json()["state"] == "hold"
        assert client.post("/v1/periods/2026-07/open").json()["state"] == "open"
        assert client.get("/v1/periods").json()["items"][0]["state"] == "open"
        assert client.post("/v1/periods/2026-7/close").status_code == 422
        assert client.post("/v1/periods/0000-01/close").status_code == 422
        assert client.get("/v1/periods").json()["items"][0]["period"] == "2026-07"
        assert client.post("/v1/periods/2026-07/delete").status_code == 422


def test_serve_publishes_and_consumers_elsewhere_count(
    web_server: ServerFactory, pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "usage.csv"
    write_sample_file(source, SampleSpec(rows=3_000, seed=12, accounts=20))
    server = web_server("serve")
    consumer = start_cli(pipeline_env, tmp_path / "consume.log", "consume")
    try:
        with server.client() as client:
            sent = client.post("/v1/uploads", params={"reference": "served"}, headers=CSV,
                               content=source.read_bytes())  # fmt: skip
            assert sent.status_code == 202
            assert server.wait_final("served")["status"] == "Done"
            assert as_comparable(client.get("/v1/totals").json()["items"]) == expected_totals(
                source
            )
    finally:
        stop(consumer)
    # Received files take the inbox's path: done/ once final.
    wait_for((server.inbox / "done" / "served.csv").exists, 30, "served.csv in done/")
