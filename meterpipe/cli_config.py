"""`meterpipe config show`: the effective settings, with every secret masked.

Operators need to see what a process will use (env vars, the TOML file and defaults
merged) without leaking credentials into terminals, tickets or CI logs: SecretStr fields,
passwords inside URLs (user info or a `password` query parameter) and secret-looking
raw librdkafka overrides are all printed as `********`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click
from pydantic import SecretStr

from meterpipe.cli_options import friendly_errors
from meterpipe.settings import Settings, load_settings

__all__ = ["config", "effective_settings", "mask_url"]

MASK = "********"
URL_FIELDS = frozenset({"store_url", "registry_url"})
SECRET_KEY_PARTS = ("password", "secret", "oauthbearer.config")


def mask_url(url: str) -> str:
    """`url` with the password of its user info and any `password=` parameter masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.partition(':')[0]}:{MASK}@{host}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any("password" in key.lower() for key, _ in query):
        masked = [(key, MASK if "password" in key.lower() else value) for key, value in query]
        parts = parts._replace(query=urlencode(masked, safe=":/*"))
    return urlunsplit(parts._replace(netloc=netloc))


def _masked(name: str, value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if name in URL_FIELDS and isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):  # raw librdkafka overrides
        return {
            key: MASK if any(part in key.lower() for part in SECRET_KEY_PARTS) else item
            for key, item in value.items()
        }
    return value


def effective_settings(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every component's settings as JSON-ready values, secrets masked."""
    return {
        component: {
            name: _masked(name, getattr(section, name)) for name in type(section).model_fields
        }
        for component, section in settings
    }


def _as_json_value(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | dict) else str(value)


@click.group()
def config() -> None:
    """Inspect the configuration.

    Example: meterpipe config show --json
    """


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per component.")
@friendly_errors
def show(as_json: bool) -> None:
    """Print the effective settings (env vars, METERPIPE_CONFIG file, defaults), secrets masked.

    Example: meterpipe config show
    """
    effective = {
        component: {name: _as_json_value(value) for name, value in fields.items()}
        for component, fields in effective_settings(load_settings()).items()
    }
    if as_json:
        click.echo(json.dumps(effective, indent=2))
        return
    for component, fields in effective.items():
        click.echo(f"# {component}")
        for name, value in fields.items():
            click.echo(f"{name} = {json.dumps(value)}")
