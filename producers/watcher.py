"""The watched inbox: every complete file dropped there becomes an upload.

A file is taken only once it is complete: hidden and partial names (`.x`, `*.part`,
`*.tmp`, `*.crdownload`) are ignored, and its size and mtime must have stayed the same
for `min_file_age_s`. It is claimed by an atomic rename into `processing/` under its
upload reference (two watchers on one inbox never both take a file), so a restart knows
which upload each claimed file belongs to and publishes it again until it is final; then
it moves to `done/` or `error/`, the latter with an error report beside it. Folder names
are settings. Names are never trusted as paths (see producers/inbox_paths.py): symbolic
links and overlong names are left in the inbox with a warning. A shutdown stops it
between files and in the middle of one: that file stays claimed, and the next start
publishes it again. Files the HTTP API received and claimed arrive through a `HandOver`;
`meterpipe serve` runs a watcher that takes only those (`scan_inbox=False`).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Literal

from meterpipe.errors import MeterpipeError
from meterpipe.publisher import BrokerReplaced, PublishCancelled
from meterpipe.settings import WatchSettings
from producers.handover import HandOver
from producers.inbox_paths import (
    SEPARATOR,
    display_name,
    move_no_replace,
    refusal,
    split_claimed,
)
from producers.ledger import UploadLedger
from producers.reports import write_error_reports
from producers.upload import UploadPublisher, UploadRequest

__all__ = ["InboxWatcher", "is_candidate_name"]

log = logging.getLogger(__name__)
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload")
RETRY_AFTER_S = 10.0


def is_candidate_name(name: str) -> bool:
    """False for hidden files and names of files still being written."""
    return not name.startswith(".") and not name.endswith(IGNORED_SUFFIXES)


class InboxWatcher:
    """Polls the inbox, claims complete files, publishes them and files them when final."""

    def __init__(
        self,
        settings: WatchSettings,
        uploads: UploadPublisher,
        ledger: UploadLedger,
        hand_over: HandOver | None = None,
        *,
        scan_inbox: bool = True,
    ) -> None:
        self._settings = settings
        self._hand_over = hand_over
        self._scan_inbox = scan_inbox
        self._uploads = uploads
        self._ledger = ledger
        self._inbox = settings.inbox
        self._seen: dict[Path, tuple[int, int, float]] = {}
        self._retry_at: float | None = None
        self._stop = threading.Event()
        self._warned: set[str] = set()

    def folder(self, which: Literal["processing", "done", "error"]) -> Path:
        """One of the lifecycle folders, created on demand."""
        settings = self._settings
        configured = {
            "processing": settings.processing_dir,
            "done": settings.done_dir,
            "error": settings.error_dir,
        }[which]
        path = settings.lifecycle_dir(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run(self, stop: threading.Event, resume: threading.Event | None = None) -> None:
        """Watch until `stop` is set; `resume` asks to re-publish every unfinished upload.

        A failure on one file never stops the watcher.
        """
        self._stop = stop
        pending = self._handed_over()
        self.resume_claimed(skip=pending)
        while not stop.is_set():
            if resume is not None and resume.is_set():
                resume.clear()
                self._uploads.restart_producer()
                pending += self._handed_over()
                self.resume_claimed(skip=pending)
            elif self._retry_at is not None and time.monotonic() >= self._retry_at:
                pending += self._handed_over()
                self.resume_claimed(skip=pending)
            for request in pending:
                self._publish(request.path, request)
            for path in self.complete_files() if self._scan_inbox else []:
                if stop.is_set():
                    break
                claimed = self._claim(path)
                if claimed is not None:
                    self._publish(claimed)
            self.file_finished()
            stop.wait(self._settings.poll_interval_s)
            pending = self._handed_over()

    def _handed_over(self) -> list[UploadRequest]:
        """Claimed files handed over since the last call, with their options."""
        return self._hand_over.take_all() if self._hand_over else []

    def complete_files(self) -> list[Path]:
        """Files in the inbox whose size and mtime have been stable for the minimum age."""
        now = time.monotonic()
        ready, current = [], {}
        for path in sorted(self._inbox.iterdir()) if self._inbox.is_dir() else []:
            info = self._takeable(path)
            if info is None:
                continue
            first_seen = self._seen.get(path)
            same = first_seen is not None and first_seen[:2] == (info.st_size, info.st_mtime_ns)
            since = first_seen[2] if same and first_seen else now
            current[path] = (info.st_size, info.st_mtime_ns, since)
            if now - since >= self._settings.min_file_age_s:
                ready.append(path)
        self._seen = current
        return ready

    def _takeable(self, path: Path) -> os.stat_result | None:
        """`lstat` of a regular file the watcher may take; None for anything else."""
        if not is_candidate_name(path.name):
            return None
        try:
            info = path.lstat()
        except FileNotFoundError:
            return None
        reason = refusal(path, info)
        if reason is not None:
            self._warn_once(f"not taking {display_name(path.name)!r} from the inbox: {reason}")
            return None
        return info if stat.S_ISREG(info.st_mode) else None

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    def _claim(self, path: Path) -> Path | None:
        """Take the file by an atomic rename; None if another watcher was faster."""
        reference = f"u-{uuid.uuid4().hex[:16]}"
        claimed = self.folder("processing") / f"{reference}{SEPARATOR}{path.name}"
        self._seen.pop(path, None)
        try:
            path.rename(claimed)
        except FileNotFoundError:
            return None
        if claimed.is_symlink():  # swapped for a link since it was checked: never follow it
            moved = move_no_replace(claimed, self.folder("error"), path.name)
            self._warn_once(f"{display_name(path.name)!r} became a symbolic link; moved to {moved}")
            return None
        return claimed

    def _claimed_files(self) -> list[tuple[Path, str, str]]:
        """(path, reference, original name) of each file this watcher claimed."""
        claimed = []
        for path in sorted(self.folder("processing").iterdir()):
            parts = split_claimed(path.name)
            if parts is None:
                self._warn_once(f"ignoring {display_name(path.name)!r}: not a claimed upload")
            else:
                claimed.append((path, *parts))
        return claimed

    def _publish(self, claimed: Path, handed_over: UploadRequest | None = None) -> None:
        reference, claimed_name = split_claimed(claimed.name) or ("", "")
        # The shown name is valid UTF-8 (logs, reports): file names need not be.
        name = display_name(claimed_name)
        request = handed_over or UploadRequest(path=claimed, name=name, reference=reference)
        if self._stop.is_set():
            return
        try:
            self._uploads.publish(request)
            log.info("published %s as upload %s", name, reference)
        except BrokerReplaced:
            log.info(
                "upload %s (%s) interrupted: the broker was replaced; published again",
                reference, name, extra={"upload": reference},
            )  # fmt: skip
        except PublishCancelled:
            log.info(
                "upload %s (%s) interrupted by shutdown; published again on the next start",
                reference, name, extra={"upload": reference},
            )  # fmt: skip
        except MeterpipeError as exc:
            log.error("upload %s (%s) not published yet, will retry: %s", reference, name, exc)
            self._retry_at = time.monotonic() + RETRY_AFTER_S
        except Exception:
            # A bug or an OS error on one file must not stop the watcher for all the others.
            log.exception("upload %s (%s) failed unexpectedly, will retry", reference, name)
            self._retry_at = time.monotonic() + RETRY_AFTER_S

    def resume_claimed(self, skip: list[UploadRequest] | None = None) -> None:
        """Publish again every claimed file whose upload is not final (idempotent).

        Files in `skip` were handed over and not published yet: they go with their options.
        """
        self._retry_at = None
        handed_over = {request.path for request in skip or []}
        for claimed, reference, name in self._claimed_files():
            if claimed in handed_over:
                continue
            upload = self._ledger.find_upload(reference)
            if upload is None:
                self._publish(claimed)
            elif upload.status == "Processing":
                # Recorded before publishing began (the HTTP API does): the record's key
                # lets even an unreadable file end as that upload, in Error, and the
                # options it was sent with still apply.
                skip_invalid, file_format = self._ledger.upload_options(reference)
                request = UploadRequest(
                    path=claimed, name=display_name(name), reference=reference,
                    description=upload.description, upload_key=upload.upload_key,
                    skip_invalid=skip_invalid,
                    file_format=file_format,  # type: ignore[arg-type]
                )  # fmt: skip
                self._publish(claimed, request)

    def file_finished(self) -> None:
        """Move claimed files whose upload is final to done/ or error/."""
        for claimed, reference, name in self._claimed_files():
            upload = self._ledger.find_upload(reference)
            if upload is None or upload.status == "Processing":
                continue
            target = self.folder("done" if upload.status == "Done" else "error")
            moved = move_no_replace(claimed, target, name)
            if upload.status == "Error":
                write_error_reports(target, moved.name, upload)
