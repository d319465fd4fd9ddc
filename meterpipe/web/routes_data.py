"""`/v1/templates`, `/v1/totals` and `/v1/periods`: what the CLI's reads and periods do."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from meterpipe.errors import ConfigError
from meterpipe.settings import Settings
from meterpipe.views import period_object, period_objects, total_objects
from meterpipe.web.access import Gate, StoreAccess
from meterpipe.web.models import Period, PeriodList, TotalList
from meterpipe.web.problems import ProblemError, problem_responses
from producers.formats import FormatName
from producers.templates import template_columns, write_template
from schemas.period_calendar import PERIOD_PATTERN, normalised_period

__all__ = ["TOTAL_COLUMNS", "checked_period", "data_router", "template_csv", "totals_csv"]

TOTAL_COLUMNS = ["accountId", "pricingUnit", "customUnit", "events", "quantity", "billableQuantity"]
# Years 1000-2999: the periods a billing system meets, and no datetime overflows at the ends.
STATES = {"close": "closed", "hold": "hold", "open": "open"}
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}
Action = Literal["close", "hold", "open"]


def checked_period(period: str | None) -> str | None:
    """A `YYYY-MM` period as given, or 422."""
    if period is not None and normalised_period(period) != period:
        raise ProblemError(422, f"period: {period!r} is not a YYYY-MM month (years 0001 to 9998)")
    return period


def template_csv(settings: Settings, file_format: FormatName) -> str:
    """The template of a format as CSV text; 404 if the format is not configured."""
    try:
        columns = template_columns(file_format, settings.upload)
    except ConfigError as exc:
        raise ProblemError(404, str(exc)) from exc
    out = io.StringIO(newline="")
    write_template(out, columns)
    return out.getvalue()


def totals_csv(rows: list[dict[str, Any]]) -> str:
    """Totals as CSV, with the JSON objects' keys as header."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, TOTAL_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def data_router(gate: Gate, stores: StoreAccess, settings: Settings) -> APIRouter:
    """Templates, totals and periods."""
    router = APIRouter(prefix="/v1")
    reader = Depends(gate.require("read"))

    @router.get(
        "/templates/{file_format}", tags=["templates"], response_class=Response,
        dependencies=[reader],
        responses={**CSV_RESPONSE, **problem_responses(401, 403, 404, 422)},
    )  # fmt: skip
    def template(file_format: FormatName) -> Response:
        """The CSV template (header row) of a format, ready to fill in."""
        disposition = f'attachment; filename="{file_format}-template.csv"'
        return Response(template_csv(settings, file_format), media_type="text/csv",
                        headers={"Content-Disposition": disposition})  # fmt: skip

    @router.get(
        "/totals", tags=["totals"], response_model=TotalList, dependencies=[reader],
        responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
    )  # fmt: skip
    def totals(
        request: Request,
        account: str | None = None,
        unit: str | None = None,
        period: Annotated[str | None, Query(pattern=PERIOD_PATTERN)] = None,
    ) -> Any:
        """Totals per account and unit, exact decimals; CSV with `Accept: text/csv`."""
        rows = total_objects(stores.get(), account, unit, checked_period(period))
        if "text/csv" in request.headers.get("accept", ""):
            return Response(totals_csv(rows), media_type="text/csv")
        return {"items": rows}

    @router.get(
        "/periods", tags=["periods"], response_model=PeriodList, dependencies=[reader],
        responses=problem_responses(401, 403),
    )  # fmt: skip
    def periods() -> dict[str, Any]:
        """Every billing period with usage or a state set, and its state now."""
        return {"items": period_objects(settings, stores.get())}

    @router.post(
        "/periods/{period}/{action}", tags=["periods"], response_model=Period,
        dependencies=[Depends(gate.require("admin"))],
        responses=problem_responses(401, 403, 422),
    )  # fmt: skip
    def change_period(
        period: Annotated[str, Path(pattern=PERIOD_PATTERN)],
        action: Action,
    ) -> dict[str, Any]:
        """Close, hold or reopen a billing period (scope `admin`)."""
        return set_period(settings, stores, checked_period(period) or period, action)

    return router


def set_period(
    settings: Settings, stores: StoreAccess, period: str, action: Action
) -> dict[str, Any]:
    """Record an operator's close, hold or reopen; the period as it now stands."""
    store = stores.get()
    store.set_period_state(period, STATES[action])
    return period_object(settings, store.period_states(), period)
