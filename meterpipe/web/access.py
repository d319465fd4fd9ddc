"""Who is calling: API keys (Bearer or the console's sign-in cookie), scopes, and CSRF.

While no key exists and the server listens on loopback only, every request is let in (a
warning is logged once); `check_open_access` refuses to start on any other address then.
A missing or wrong key is 401 and a key without the route's scope 403, and neither says
whether a key name exists (keys are found by their hash alone). Requests that change
something are refused when a browser says they come from another site, and when they are
authenticated by the cookie they must carry the sign-in's CSRF token as well.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from consumers.store import TotalsStore, open_store
from meterpipe.api_keys import Scope, grants, hash_key
from meterpipe.errors import ConfigError
from meterpipe.settings import Settings, StoreSettings
from meterpipe.web.problems import ProblemError

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SIGN_IN_COOKIE",
    "Caller",
    "Gate",
    "StoreAccess",
    "check_open_access",
    "is_loopback",
]

log = logging.getLogger(__name__)
SIGN_IN_COOKIE = "meterpipe_sign_in"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="meterpipe"'}


class StoreAccess:
    """Each worker thread's own store connection (SQLite connections stay in their thread)."""

    def __init__(self, settings: StoreSettings) -> None:
        self._settings = settings
        self._local = threading.local()

    def get(self) -> TotalsStore:
        """This thread's store, opened on first use."""
        store: TotalsStore | None = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self._settings)
            self._local.store = store
        return store


def is_loopback(host: str) -> bool:
    """True if `host` is a loopback address or `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_open_access(settings: Settings) -> None:
    """ConfigError if no key exists and the server would listen beyond loopback."""
    host = settings.http.http_host
    if is_loopback(host):
        return
    store = open_store(settings.store)
    try:
        count = store.key_count()
    finally:
        store.close()
    if count == 0:
        raise ConfigError(
            f"no API key exists and the HTTP API would listen on {host}: create one first"
            " (meterpipe keys create --name NAME --scope admin), or set METERPIPE_HTTP_HOST"
            " to 127.0.0.1"
        )


def csrf_token(key: str) -> str:
    """The CSRF token of a sign-in: derived from its key, which pages cannot read."""
    return hashlib.sha256(f"meterpipe-csrf:{key}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Caller:
    """A request's identity: a key's name and scopes, or open access (`name` None)."""

    name: str | None
    scopes: tuple[str, ...]
    sign_in_key: str | None = None  # set when the sign-in cookie authenticated it

    @property
    def csrf(self) -> str:
        """The token forms of this sign-in carry ("" when not signed in)."""
        return csrf_token(self.sign_in_key) if self.sign_in_key else ""

    def may(self, scope: Scope) -> bool:
        """True if this caller holds `scope` (open access holds every scope)."""
        return self.name is None or grants(self.scopes, scope)


class Gate:
    """Authenticates requests against the store's keys."""

    def __init__(self, stores: StoreAccess, loopback: bool) -> None:
        self._stores = stores
        self._loopback = loopback
        self._warned = False

    def identify(self, request: Request) -> Caller | None:
        """The caller, or None if keys exist and the request has no valid one."""
        store = self._stores.get()
        bearer = _bearer(request)
        cookie = request.cookies.get(SIGN_IN_COOKIE)
        for key, from_cookie in ((bearer, False), (cookie, True)):
            if key:
                found = store.find_key(hash_key(key))
                if found is not None:
                    return Caller(found.name, found.scopes, key if from_cookie else None)
        if bearer is None and self._loopback and store.key_count() == 0:
            self._warn_open()
            return Caller(None, ())
        return None

    def _warn_open(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "no API key exists: the HTTP API lets every local request in;"
                " create one with `meterpipe keys create`"
            )

    def require(self, scope: Scope) -> Callable[[Request], Caller]:
        """A route dependency: the caller, who must hold `scope`."""

        def dependency(request: Request) -> Caller:
            caller = self.identify(request)
            if caller is None:
                raise ProblemError(401, "a valid API key is required", UNAUTHORIZED)
            if not caller.may(scope):
                raise ProblemError(403, f"this key does not have the {scope!r} scope")
            check_same_site(request)
            if request.method not in SAFE_METHODS and caller.sign_in_key:
                sent = request.headers.get(CSRF_HEADER, "")
                if not hmac.compare_digest(sent, caller.csrf):
                    raise ProblemError(403, "the request lacks this sign-in's CSRF token")
            return caller

        return dependency


def check_same_site(request: Request) -> None:
    """403 for a request that changes something and a browser says came from another site."""
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise ProblemError(403, "cross-site requests are refused")
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise ProblemError(403, "cross-site requests are refused")


def _bearer(request: Request) -> str | None:
    """The key of an `Authorization: Bearer KEY` header ("" for another scheme), or None."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""
