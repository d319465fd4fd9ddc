"""Dead letters: the consumed messages that cannot count, kept with the reason why.

A dead letter is the original message bytes, unchanged, with headers saying why it was
refused and where it came from, so a person can act on it and replay it later. The one
exception is a message over the size limit (`too_large`): it could not be produced again,
so the dead letter carries its first bytes, and headers with its full size and SHA-256;
the whole message stays in the source topic, at the recorded offset, until retention.
Header texts are capped, so that headers never push a dead letter over the size limit.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REPLAY_HEADER", "DeadLetter", "dead_letter_headers"]

HEADER_MAX_CHARS = 1024
REPLAY_HEADER = "meterpipe.replay-of"  # on a re-driven event: "<dlq partition>:<offset>"


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
    original_size: int | None = None
    original_sha256: str | None = None
    replayed: bool = False  # re-driven from the dead-letter topic, where it already is


def _capped(text: str) -> str:
    return text if len(text) <= HEADER_MAX_CHARS else text[: HEADER_MAX_CHARS - 1] + "…"


def dead_letter_headers(
    letter: DeadLetter, source_topic: str
) -> list[tuple[str, str | bytes | None]]:
    """Kafka headers describing a dead letter: reason, source position, upload and row."""
    optional = {
        "meterpipe.upload": letter.upload_ref,
        "meterpipe.row": letter.row_number,
        "meterpipe.original.size": letter.original_size,
        "meterpipe.original.sha256": letter.original_sha256,
    }
    headers: list[tuple[str, str | bytes | None]] = [
        ("meterpipe.reason", letter.reason),
        ("meterpipe.message", _capped(letter.message)),
        ("meterpipe.source.topic", source_topic),
        ("meterpipe.source.partition", str(letter.partition)),
        ("meterpipe.source.offset", str(letter.offset)),
    ]
    headers += [(key, _capped(str(value))) for key, value in optional.items() if value is not None]
    return headers
