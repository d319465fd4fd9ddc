"""Dead letters: the consumed messages that cannot count, kept with the reason why.

A dead letter is the original message bytes, unchanged, with headers saying why it was
refused and where it came from, so a person can act on it and replay it later.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeadLetter", "dead_letter_headers"]


@dataclass(frozen=True)
class DeadLetter:
    """One refused message and the first reason it was refused."""

    key: str | None
    value: bytes
    reason: str
    message: str
    partition: int
    offset: int
    upload_ref: str | None = None
    row_number: int | None = None


def dead_letter_headers(
    letter: DeadLetter, source_topic: str
) -> list[tuple[str, str | bytes | None]]:
    """Kafka headers describing a dead letter: reason, source position, upload and row."""
    headers: list[tuple[str, str | bytes | None]] = [
        ("meterpipe.reason", letter.reason),
        ("meterpipe.message", letter.message),
        ("meterpipe.source.topic", source_topic),
        ("meterpipe.source.partition", str(letter.partition)),
        ("meterpipe.source.offset", str(letter.offset)),
    ]
    if letter.upload_ref is not None:
        headers.append(("meterpipe.upload", letter.upload_ref))
    if letter.row_number is not None:
        headers.append(("meterpipe.row", str(letter.row_number)))
    return headers
