"""The web console: server-rendered pages over the same functions as the API.

Pages need a sign-in (an API key in an HttpOnly, SameSite=Strict cookie) unless
the server is open (no key exists, loopback only). Forms that change something carry the
sign-in's CSRF token and are refused from other sites.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from consumers.store import UploadStatus
from meterpipe.api_keys import Scope, hash_key
from meterpipe.settings import Settings
from meterpipe.views import period_objects, total_objects
from meterpipe.web.access import (
    CSRF_FIELD,
    SIGN_IN_COOKIE,
    Caller,
    Gate,
    StoreAccess,
    check_same_site,
)
from meterpipe.web.problems import ProblemError
from meterpipe.web.routes_data import checked_period, set_period, template_csv, totals_csv
from producers.formats import FormatName

__all__ = ["console_router"]

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
PAGE_SIZE = 200
STATUSES: tuple[UploadStatus, ...] = ("Processing", "Error", "Done")


class _SignIn(ProblemError):
    """The page needs a sign-in: pages answer with the sign-in page, downloads with 401."""

    def __init__(self) -> None:
        super().__init__(401, "sign in with an API key")


class _Console:
    """What every page needs: who calls, and rendering."""

    def __init__(self, gate: Gate, settings: Settings) -> None:
        self._gate = gate
        self._formats: list[FormatName] = (
            ["appdirect", "solvimon"] if settings.upload.meters else ["appdirect"]
        )

    def caller(self, request: Request, scope: Scope) -> Caller:
        """The caller, holding `scope`: _SignIn when not signed in, 403 without the scope."""
        found = self._gate.identify(request)
        if found is None:
            raise _SignIn
        if not found.may(scope):
            raise ProblemError(403, f"this key does not have the {scope!r} scope")
        return found

    def page(self, request: Request, template: str, who: Caller | None, **values: Any) -> Response:
        """A rendered page."""
        context = {"caller": who, "formats": self._formats, **values}
        return TEMPLATES.TemplateResponse(request, template, context)

    def guarded(
        self, request: Request, template: str, scope: Scope, values: Callable[[], dict[str, Any]]
    ) -> Response:
        """The page for a caller holding `scope`; the sign-in page for anyone else."""
        try:
            who = self.caller(request, scope)
        except _SignIn:
            return RedirectResponse(f"/sign-in?next={request.url.path}", status_code=303)
        return self.page(request, template, who, **values())

    async def checked_form(self, request: Request, scope: Scope) -> dict[str, Any]:
        """The fields of a form that changes something, sent from this site by `scope`."""
        check_same_site(request)
        form = dict(await request.form())
        who = self.caller(request, scope)
        if who.sign_in_key and not hmac.compare_digest(str(form.get(CSRF_FIELD, "")), who.csrf):
            raise ProblemError(403, "the form lacks this sign-in's CSRF token")
        return form


def console_router(gate: Gate, stores: StoreAccess, settings: Settings) -> APIRouter:
    """Every console page."""
    router = APIRouter(include_in_schema=False)
    console = _Console(gate, settings)
    _upload_pages(router, console, stores, settings)
    _report_pages(router, console, stores, settings)
    _sign_in_pages(router, console, stores)
    return router


def _upload_pages(
    router: APIRouter, console: _Console, stores: StoreAccess, settings: Settings
) -> None:
    guarded, caller = console.guarded, console.caller

    @router.get("/")
    def files(request: Request, status: UploadStatus | None = None) -> Response:
        shown = status if status in STATUSES else None

        def values() -> dict[str, Any]:
            uploads = stores.get().list_uploads_page(shown, PAGE_SIZE)
            return {
                "status": shown,
                "statuses": STATUSES,
                "uploads": [u.to_json() for u in uploads],
            }

        return guarded(request, "files.html", "read", values)

    @router.get("/upload")
    def upload_form(request: Request) -> Response:
        return guarded(request, "upload.html", "upload", dict)

    @router.get("/uploads/{reference}")
    def upload_page(request: Request, reference: str) -> Response:
        def values() -> dict[str, Any]:
            upload = stores.get().find_upload(reference)
            if upload is None:
                raise ProblemError(404, f"no upload with reference {reference!r}")
            return {"upload": upload.to_json()}

        return guarded(request, "upload_page.html", "read", values)

    @router.get("/templates/{file_format}.csv")
    def template_file(request: Request, file_format: FormatName) -> Response:
        caller(request, "read")
        disposition = f'attachment; filename="{file_format}-template.csv"'
        return Response(template_csv(settings, file_format), media_type="text/csv",
                        headers={"Content-Disposition": disposition})  # fmt: skip


def _report_pages(
    router: APIRouter, console: _Console, stores: StoreAccess, settings: Settings
) -> None:
    guarded, caller = console.guarded, console.caller

    @router.get("/totals")
    def totals(request: Request, account: str = "", unit: str = "", period: str = "") -> Response:
        def values() -> dict[str, Any]:
            rows = total_objects(stores.get(), account or None, unit or None,
                                 checked_period(period or None))  # fmt: skip
            return {"rows": rows, "filters": {"account": account, "unit": unit, "period": period}}

        return guarded(request, "totals.html", "read", values)

    @router.get("/totals.csv")
    def totals_file(
        request: Request, account: str = "", unit: str = "", period: str = ""
    ) -> Response:
        caller(request, "read")
        rows = total_objects(stores.get(), account or None, unit or None,
                             checked_period(period or None))  # fmt: skip
        disposition = 'attachment; filename="totals.csv"'
        return Response(totals_csv(rows), media_type="text/csv",
                        headers={"Content-Disposition": disposition})  # fmt: skip

    @router.get("/periods")
    def periods(request: Request) -> Response:
        return guarded(request, "periods.html", "read",
                       lambda: {"periods": period_objects(settings, stores.get())})  # fmt: skip

    @router.post("/periods/{period}/{action}")
    async def change_period(request: Request, period: str, action: str) -> Response:
        await console.checked_form(request, "admin")
        if action not in ("close", "hold", "open"):
            raise ProblemError(404, f"no action {action!r}")
        set_period(settings, stores, checked_period(period) or period, action)  # type: ignore[arg-type]
        return RedirectResponse("/periods", status_code=303)


def _sign_in_pages(router: APIRouter, console: _Console, stores: StoreAccess) -> None:
    page = console.page

    @router.get("/sign-in")
    def sign_in_page(request: Request, next: str = "/") -> Response:
        return page(request, "sign_in.html", None, next=_local(next), failed=False)

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        check_same_site(request)
        form = await request.form()
        key, target = str(form.get("key", "")).strip(), _local(str(form.get("next", "/")))
        if not key or stores.get().find_key(hash_key(key)) is None:
            refused = page(request, "sign_in.html", None, next=target, failed=True)
            refused.status_code = 401
            return refused
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SIGN_IN_COOKIE, key, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")  # fmt: skip
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        await console.checked_form(request, "read")
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(SIGN_IN_COOKIE, httponly=True, samesite="strict")
        return response


def _local(target: str) -> str:
    """A redirect target on this site only (never `//host` or a full URL)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
