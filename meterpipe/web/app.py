"""The FastAPI application: API routes under /v1, the console at /, OpenAPI at /openapi.json."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from meterpipe.settings import Settings
from meterpipe.web.access import Gate, StoreAccess, is_loopback
from meterpipe.web.console import console_router
from meterpipe.web.intake import UploadIntake
from meterpipe.web.problems import PROBLEM_TYPE, Problem, install_problem_handlers
from meterpipe.web.routes_data import data_router
from meterpipe.web.routes_uploads import uploads_router
from producers.handover import HandOver

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BEARER = {"ApiKey": {"type": "http", "scheme": "bearer", "description": "An API key"}}


def create_app(settings: Settings, hand_over: HandOver) -> FastAPI:
    """The API and console over the settings' store; received files go to `hand_over`."""
    stores = StoreAccess(settings.store)
    gate = Gate(stores, is_loopback(settings.http.http_host))
    intake = UploadIntake(settings, hand_over)
    app = FastAPI(
        title="meterpipe",
        version=version("meterpipe"),
        summary="Usage files in, exact totals out.",
        docs_url="/docs",
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.include_router(uploads_router(gate, stores, intake, settings.http.max_upload_bytes))
    app.include_router(data_router(gate, stores, settings))
    app.include_router(console_router(gate, stores, settings))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every error (422 included) as a problem and Bearer keys."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema()
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        components["securitySchemes"] = BEARER
        schema["security"] = [{"ApiKey": []}]
        for operations in schema["paths"].values():
            for operation in operations.values():
                if "422" in operation.get("responses", {}):
                    operation["responses"]["422"] = {
                        "description": "Unprocessable Content",
                        "content": {PROBLEM_TYPE: {"schema": PROBLEM_REF}},
                    }
        app.openapi_schema = schema
    return app.openapi_schema
