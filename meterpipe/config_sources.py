"""Where every setting comes from, and a quick reader of one setting's configured value.

A setting is taken from an explicit value (a CLI option), else the env var
`METERPIPE_<FIELD>` (in any letter case), else key `<field>` of the TOML file that
`METERPIPE_CONFIG` names, else its default. `meterpipe.settings` resolves every setting
from these sources through pydantic-settings. `configured_value` reads one of them the same
way without it: commands that must answer at once (`meterpipe uploads`, `totals`) only need
to know where the store is, and importing pydantic costs more than the rest of such a
command together.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from meterpipe.errors import ConfigError

__all__ = ["CONFIG_ENV_VAR", "ENV_PREFIX", "configured_value"]

ENV_PREFIX = "METERPIPE_"
CONFIG_ENV_VAR = "METERPIPE_CONFIG"


def configured_value(field: str) -> Any | None:
    """The value the env var or the TOML file gives setting `field`; None if neither does.

    Env vars are text, as set; TOML values are as the file types them.
    """
    wanted = f"{ENV_PREFIX}{field}".lower()
    for name, value in os.environ.items():
        if name.lower() == wanted:
            return value
    toml_path = os.environ.get(CONFIG_ENV_VAR)
    if not toml_path or not Path(toml_path).is_file():
        return None
    try:
        with Path(toml_path).open("rb") as toml_file:
            return tomllib.load(toml_file).get(field)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {CONFIG_ENV_VAR} file {toml_path}: {exc}") from exc
