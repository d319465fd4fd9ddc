"""The HTTP API and web console of `meterpipe up` and `meterpipe serve`."""

from __future__ import annotations

from meterpipe.web.access import check_open_access
from meterpipe.web.app import create_app
from meterpipe.web.server import WebServer

__all__ = ["WebServer", "check_open_access", "create_app"]
