"""What the publisher needs from the store: somewhere to record uploads and their outcome."""

from __future__ import annotations

from typing import Protocol

from schemas.uploads import UploadRecord, UploadSummary

__all__ = ["UploadLedger"]


class UploadLedger(Protocol):
    """The upload-record side of a store, as the publisher uses it."""

    def period_states(self) -> dict[str, str]:
        """Billing-period states set by operators, by `YYYY-MM`."""

    def find_upload(self, reference: str) -> UploadRecord | None:
        """One upload by reference."""

    def create_upload(self, upload: UploadRecord) -> None:
        """Record a new upload in status Processing."""

    def record_upload_options(
        self, reference: str, skip_invalid: bool | None, file_format: str | None
    ) -> None:
        """Keep the options an upload was sent with (None: the settings decide)."""

    def upload_options(self, reference: str) -> tuple[bool | None, str | None]:
        """(skipInvalid, format) an upload was sent with; (None, None) if none were kept."""

    def find_ingested(self, upload_key: str, other_than: str) -> UploadRecord | None:
        """An earlier upload of the same bytes that was not rejected."""

    def mark_duplicate(self, reference: str, of: str, records: int) -> None:
        """End an upload as a duplicate of `of`, ingesting nothing."""

    def reject_upload(self, reference: str, summary: UploadSummary) -> None:
        """End an upload in Error with nothing ingested."""

    def mark_published(self, reference: str, summary: UploadSummary) -> bool:
        """Record that every event was acknowledged; True if that made it Done."""
