"""`/v1/uploads`: send a file (streamed to disk), list uploads, one upload, its errors."""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from consumers.store import UploadRecord, UploadStatus
from meterpipe.web.access import Gate, StoreAccess
from meterpipe.web.intake import UploadForm, UploadIntake, checked_reference
from meterpipe.web.models import Upload, UploadPage
from meterpipe.web.problems import ProblemError, problem_responses
from meterpipe.web.receive import Received, receive_form, receive_raw
from producers.formats import FormatName
from producers.reports import write_errors_csv

__all__ = ["uploads_router"]

FORM_TYPE = "multipart/form-data"
CSV_TYPE = "text/csv"
UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        CSV_TYPE: {"schema": {"type": "string", "format": "binary"}},
        FORM_TYPE: {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "reference": {"type": "string"},
                    "format": {"type": "string", "enum": ["appdirect", "solvimon"]},
                    "skipInvalid": {"type": "boolean"},
                },
            }
        },
    },
}


def encode_cursor(upload: UploadRecord) -> str:
    """An opaque cursor: the position after `upload` in the newest-first order."""
    raw = json.dumps([upload.uploaded_at, upload.reference]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The position a cursor stands for; 422 for one this API did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        uploaded_at, reference = json.loads(raw)
        if isinstance(uploaded_at, str) and isinstance(reference, str):
            return uploaded_at, reference
    except (binascii.Error, ValueError, TypeError):
        pass
    raise ProblemError(422, "cursor: not a cursor of this list")


def _form(received: Received, query: UploadForm) -> UploadForm:
    """The query's options, overridden by the form's fields."""
    fields = received.fields
    skip = fields.get("skipInvalid")
    file_format = fields.get("format") or query.file_format
    if file_format not in (None, "appdirect", "solvimon"):
        raise ProblemError(422, "format: must be appdirect or solvimon")
    if skip is not None and skip.lower() not in ("true", "false", "on", "1", "0"):
        raise ProblemError(422, "skipInvalid: must be true or false")
    return UploadForm(
        name=fields.get("name") or query.name,
        description=fields.get("description") or query.description,
        reference=checked_reference(fields.get("reference") or query.reference),
        file_format=file_format,  # type: ignore[arg-type]
        skip_invalid=query.skip_invalid if skip is None else skip.lower() in ("true", "on", "1"),
    )


def uploads_router(gate: Gate, stores: StoreAccess, intake: UploadIntake, limit: int) -> APIRouter:
    """The upload routes over one intake; bodies over `limit` bytes are refused."""
    router = APIRouter(prefix="/v1/uploads", tags=["uploads"])
    reader = Depends(gate.require("read"))

    @router.post(
        "", status_code=202, response_model=Upload, dependencies=[Depends(gate.require("upload"))],
        responses={200: {"model": Upload, "description": "The reference names these bytes already"},
                   **problem_responses(400, 401, 403, 409, 413, 415, 422)},
        openapi_extra={"requestBody": UPLOAD_BODY},
    )  # fmt: skip
    async def send_upload(
        request: Request,
        *,
        name: str | None = None,
        description: str | None = None,
        reference: str | None = None,
        file_format: Annotated[FormatName | None, Query(alias="format")] = None,
        skip_invalid: Annotated[bool | None, Query(alias="skipInvalid")] = None,
    ) -> Response:
        """Send a file: a raw text/csv body, or a form with a `file` part and fields."""
        query = UploadForm(name, description, checked_reference(reference), file_format,
                           skip_invalid)  # fmt: skip
        content_type = request.headers.get("content-type", "")
        if int(request.headers.get("content-length") or 0) > limit:
            raise ProblemError(413, f"the body is larger than the limit of {limit} bytes")
        try:
            if content_type.lower().startswith(FORM_TYPE):
                received = await receive_form(
                    request.stream(), content_type, intake.incoming_dir, limit
                )
            elif content_type.lower().split(";")[0].strip() in (CSV_TYPE, "text/plain"):
                received = await receive_raw(request.stream(), intake.incoming_dir, limit)
            else:
                raise ProblemError(415, "send text/csv, or multipart/form-data with a file part")
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        try:
            form = _form(received, query)
        except ProblemError:
            received.path.unlink(missing_ok=True)
            raise
        upload, created = await run_in_threadpool(
            lambda: intake.accept(stores.get(), received, form)
        )
        return JSONResponse(
            upload.to_json(), status_code=202 if created else 200,
            headers={"Location": f"/v1/uploads/{upload.reference}"},
        )  # fmt: skip

    @router.get(
        "", response_model=UploadPage, dependencies=[reader],
        responses=problem_responses(401, 403, 422),
    )  # fmt: skip
    def list_uploads(
        status: UploadStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Uploads, newest first, a page at a time (`next` is the following page's cursor)."""
        after = decode_cursor(cursor) if cursor else None
        found = stores.get().list_uploads_page(status, limit + 1, after)
        page = found[:limit]
        following = encode_cursor(page[-1]) if len(found) > limit else None
        return {"items": [upload.to_json() for upload in page], "next": following}

    def _one(reference: str) -> UploadRecord:
        upload = stores.get().find_upload(reference)
        if upload is None:
            raise ProblemError(404, f"no upload with reference {reference!r}")
        return upload

    @router.get(
        "/{reference}", response_model=Upload, dependencies=[reader],
        responses=problem_responses(401, 403, 404),
    )  # fmt: skip
    def show_upload(reference: str) -> dict[str, Any]:
        """One upload with its errors."""
        return _one(reference).to_json()

    @router.get(
        "/{reference}/errors.csv", response_class=Response, dependencies=[reader],
        responses={200: {"content": {CSV_TYPE: {"schema": {"type": "string"}}}},
                   **problem_responses(401, 403, 404)},
    )  # fmt: skip
    def upload_errors(reference: str) -> Response:
        """The upload's error report: row, column, value, reason, message."""
        upload = _one(reference)
        out = io.StringIO(newline="")
        write_errors_csv(out, upload)
        disposition = f'attachment; filename="{upload.reference}.errors.csv"'
        return Response(out.getvalue(), media_type=CSV_TYPE,
                        headers={"Content-Disposition": disposition})  # fmt: skip

    return router
