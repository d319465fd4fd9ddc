"""The upload formats meterpipe reads: the one list every layer takes them from."""

from __future__ import annotations

from typing import Literal

__all__ = ["FormatName"]

FormatName = Literal["appdirect", "solvimon"]
