"""From a received body to an upload on the inbox's path.

The upload is recorded first (so its reference answers at once, in Processing), then the
file is claimed into `processing/` under its reference and handed to the watcher, which
publishes it exactly as a file dropped into the inbox: the same validation, statuses,
dedupe by SHA-256, and `done/` or `error/` with reports. A reference names one file: the
same bytes again return the upload there is; other bytes are a conflict (409).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from consumers.store import TotalsStore, UploadRecord
from meterpipe.settings import Settings
from meterpipe.web.problems import ProblemError
from meterpipe.web.receive import Received
from producers.formats import FormatName
from producers.handover import HandOver
from producers.inbox_paths import MAX_REFERENCE_CHARS, REFERENCE, SEPARATOR
from producers.upload import UploadRequest

__all__ = ["UploadForm", "UploadIntake", "checked_reference", "file_name"]

MAX_FILE_NAME_BYTES = 150  # with the reference and report suffixes, within NAME_MAX
UNSAFE_IN_NAMES = re.compile(r"[\x00-\x1f\x7f/\\]")
DEFAULT_NAME = "upload.csv"


@dataclass(frozen=True)
class UploadForm:
    """What a client says about its file, besides the bytes."""

    name: str | None = None
    description: str | None = None
    reference: str | None = None
    file_format: FormatName | None = None
    skip_invalid: bool | None = None


def checked_reference(reference: str | None) -> str | None:
    """The reference as given, or 422 if it cannot name an upload."""
    if reference is None:
        return None
    if len(reference) > MAX_REFERENCE_CHARS or not REFERENCE.fullmatch(reference):
        raise ProblemError(
            422,
            f"a reference is 1 to {MAX_REFERENCE_CHARS} letters and digits, in runs joined"
            " by single '.', '_' or '-'",
        )
    return reference


def file_name(given: str | None) -> str:
    """A name safe to use as the last part of a path: no folders, no control characters."""
    name = UNSAFE_IN_NAMES.sub("_", (given or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = name.lstrip(".").strip() or DEFAULT_NAME
    encoded = name.encode("utf-8")[:MAX_FILE_NAME_BYTES]
    return encoded.decode("utf-8", "ignore")


class UploadIntake:
    """Records received files as uploads and hands them to the watcher."""

    def __init__(self, settings: Settings, hand_over: HandOver) -> None:
        watch = settings.watch
        self.incoming_dir = settings.store.data_dir / "incoming"
        self._processing = watch.lifecycle_dir(watch.processing_dir)
        self._hand_over = hand_over
        self._lock = threading.Lock()  # one reference check-and-record at a time

    def accept(
        self, store: TotalsStore, received: Received, form: UploadForm
    ) -> tuple[UploadRecord, bool]:
        """The upload of `received` and whether it is new; 409 if its reference is taken.

        The received file is moved into `processing/`, or deleted if the upload exists.
        """
        try:
            upload, created = self._record(store, received, form)
        except BaseException:
            received.path.unlink(missing_ok=True)
            raise
        if not created:
            received.path.unlink(missing_ok=True)
            return upload, False
        claimed = self._claim(received.path, upload.reference, upload.name)
        self._hand_over.put(
            UploadRequest(
                path=claimed, name=upload.name, reference=upload.reference,
                description=upload.description, upload_key=received.sha256,
                skip_invalid=form.skip_invalid, file_format=form.file_format,
            )
        )  # fmt: skip
        return upload, True

    def _record(
        self, store: TotalsStore, received: Received, form: UploadForm
    ) -> tuple[UploadRecord, bool]:
        reference = form.reference or f"u-{uuid.uuid4().hex[:16]}"
        name = file_name(form.name or received.filename or f"{reference}.csv")
        with self._lock:
            existing = store.find_upload(reference)
            if existing is not None:
                if existing.upload_key != received.sha256:
                    raise ProblemError(
                        409, f"reference {reference!r} already names an upload of other bytes"
                    )
                return existing, False
            upload = UploadRecord(
                reference=reference, name=name, description=form.description,
                upload_key=received.sha256,
            )  # fmt: skip
            store.create_upload(upload)
            if form.skip_invalid is not None or form.file_format is not None:
                store.record_upload_options(reference, form.skip_invalid, form.file_format)
        return upload, True

    def _claim(self, path: Path, reference: str, name: str) -> Path:
        """Move the file into `processing/` as the watcher would have claimed it."""
        self._processing.mkdir(parents=True, exist_ok=True)
        claimed = self._processing / f"{reference}{SEPARATOR}{name}"
        try:
            os.replace(path, claimed)
        except OSError:  # another filesystem: copy, then delete
            shutil.move(path, claimed)
        return claimed
