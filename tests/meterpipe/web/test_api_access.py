"""API keys, scopes and the loopback rule, over real HTTP against a real `meterpipe up`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.meterpipe.web.conftest import Server, ServerFactory
from tests.processes import run_cli, start_cli

pytestmark = pytest.mark.slow
CSV = {"Content-Type": "text/csv"}
PROBLEM = "application/problem+json"


def _create_key(env: dict[str, str], name: str, *scopes: str) -> str:
    args = [arg for scope in scopes for arg in ("--scope", scope)]
    created = json.loads(run_cli(env, "keys", "create", "--name", name, *args, "--json").stdout)
    assert (created["name"], created["scopes"]) == (name, list(scopes))
    key: str = created["key"]
    return key


def test_keys_and_scopes_decide_every_route(server: Server) -> None:
    with server.client() as anyone:
        assert anyone.get("/v1/totals").status_code == 200  # no key exists yet: open locally
    uploader = _create_key(server.env, "uploader", "upload")
    reader = _create_key(server.env, "reader", "read")
    admin = _create_key(server.env, "admin", "admin")
    with server.client() as anyone, server.client("mpk_wrong") as wrong:
        missing, bad = anyone.get("/v1/totals"), wrong.get("/v1/totals")
        for refused in (missing, bad):
            assert refused.status_code == 401
            assert refused.headers["content-type"] == PROBLEM
            assert refused.headers["www-authenticate"].startswith("Bearer")
        # Neither says anything about key names.
        assert missing.json() == bad.json()
        assert anyone.get("/").status_code == 303  # the console asks to sign in
    with server.client(uploader) as client:
        sent = client.post("/v1/uploads", params={"reference": "k1"}, headers=CSV,
                           content=b"accountId\n")  # fmt: skip
        assert sent.status_code == 202
        forbidden = client.get("/v1/uploads/k1")
        assert (forbidden.status_code, forbidden.headers["content-type"]) == (403, PROBLEM)
    with server.client(reader) as client:
        assert client.get("/v1/uploads/k1").status_code == 200
        assert client.get("/v1/periods").status_code == 200
        assert client.post("/v1/uploads", headers=CSV, content=b"a\n").status_code == 403
        assert client.post("/v1/periods/2026-07/close").status_code == 403
    with server.client(admin) as client:
        closed = client.post("/v1/periods/2026-07/close")
        assert closed.status_code == 200
        assert closed.json()["state"] == "closed"
        assert client.get("/v1/uploads/k1").status_code == 200
    listed = json.loads(run_cli(server.env, "keys", "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["admin", "reader", "uploader"]
    stored = sqlite3.connect(server.data_dir / "meterpipe.sqlite3")
    dump = "\n".join(stored.iterdump())
    stored.close()
    assert all(key not in dump for key in (uploader, reader, admin))  # hashes only
    run_cli(server.env, "keys", "revoke", "reader")
    with server.client(reader) as client:
        assert client.get("/v1/periods").status_code == 401
    assert run_cli(server.env, "keys", "revoke", "reader", check=False).returncode == 2


def test_without_a_key_only_loopback_may_listen(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**pipeline_env, "METERPIPE_HTTP_HOST": "0.0.0.0", "METERPIPE_HTTP_PORT": "0"}
    process = start_cli(env, tmp_path / "up.log", "up")
    assert process.wait(timeout=120) == 2
    message = (tmp_path / "up.log").read_text(encoding="utf-8")
    assert "no API key exists" in message
    assert "meterpipe keys create" in message


def test_with_a_key_any_address_may_listen(
    web_server: ServerFactory, pipeline_env: dict[str, str]
) -> None:
    key = _create_key(pipeline_env, "ops", "read")
    server = web_server(METERPIPE_HTTP_HOST="0.0.0.0")
    with server.client() as anyone, server.client(key) as client:
        assert anyone.get("/v1/periods").status_code == 401
        assert client.get("/v1/periods").json() == {"items": []}


def test_keys_cli_refuses_bad_names_and_scopes(pipeline_env: dict[str, str]) -> None:
    _create_key(pipeline_env, "ci", "upload", "read")
    again = run_cli(pipeline_env, "keys", "create", "--name", "ci", "--scope", "read", check=False)
    assert again.returncode == 2
    assert "exists already" in again.stderr
    bad = run_cli(pipeline_env, "keys", "create", "--name", "a b", "--scope", "read", check=False)
    assert bad.returncode == 2
    scope = run_cli(pipeline_env, "keys", "create", "--name", "x", "--scope", "root", check=False)
    assert scope.returncode == 2
