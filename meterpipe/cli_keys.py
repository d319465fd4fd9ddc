"""`meterpipe keys`: API keys of the HTTP API (create, list, revoke)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from consumers.store import open_store
from meterpipe.api_keys import SCOPES, create_key
from meterpipe.cli_options import friendly_errors, print_table, store_options
from meterpipe.errors import MeterpipeError
from meterpipe.settings import load_settings

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """API keys for the HTTP API and console: create, list, revoke.

    Example: meterpipe keys create --name ci --scope upload --scope read
    """


@keys.command()
@click.option("--name", required=True, help="A name for the key (letters, digits, . _ -).")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="What the key may do; repeat for several.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print {name, key, scopes} as JSON.")
@store_options
@friendly_errors
def create(name: str, scopes: tuple[str, ...], as_json: bool, data_dir: Path | None) -> None:
    """Create a key and print it, once: only its hash is stored.

    Example: meterpipe keys create --name uploader --scope upload --json
    """
    store = open_store(load_settings(data_dir=data_dir).store)
    try:
        key = create_key(store, name, scopes)
        (created,) = [k for k in store.list_keys() if k.name == name]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"name": name, "key": key, "scopes": list(created.scopes)}))
    else:
        click.echo(key)
        click.echo(f"key {name!r} ({' '.join(created.scopes)}): shown only now", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@store_options
@friendly_errors
def list_keys(as_json: bool, data_dir: Path | None) -> None:
    """Every key's name, scopes and creation time (never the key).

    Example: meterpipe keys list --json
    """
    store = open_store(load_settings(data_dir=data_dir).store)
    try:
        rows = [key.to_json() for key in store.list_keys()]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_table(["name", "scopes", "createdAt"],
                    [[r["name"], " ".join(r["scopes"]), r["createdAt"]] for r in rows])  # fmt: skip


@keys.command()
@click.argument("name")
@store_options
@friendly_errors
def revoke(name: str, data_dir: Path | None) -> None:
    """Revoke a key: requests sending it are refused from now on.

    Example: meterpipe keys revoke uploader
    """
    store = open_store(load_settings(data_dir=data_dir).store)
    try:
        revoked = store.revoke_key(name)
    finally:
        store.close()
    if not revoked:
        raise MeterpipeError(f"no key named {name!r}")
    click.echo(f"revoked {name}")
