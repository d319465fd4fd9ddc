"""Inbox file names are data from strangers, never trusted as paths.

Only regular files directly in the inbox are taken: a symbolic link is never followed
(it could point anywhere the watcher may read) and is left where it is, with a warning;
directories, FIFOs and devices are skipped. A name is only ever used as the last
component of a path inside a lifecycle folder, and names too long to carry the claim
prefix and report suffixes are refused. Files are moved into done/ and error/ without
ever replacing an existing file: a taken name gets a numeric suffix.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_REFERENCE_CHARS",
    "REFERENCE",
    "SEPARATOR",
    "display_name",
    "move_no_replace",
    "refusal",
    "split_claimed",
]

# NAME_MAX is 255 bytes: room for "u-<16 hex>--" and ".N.status.json" after the name.
MAX_NAME_BYTES = 200
SEPARATOR = "--"  # between the upload reference and the original name of a claimed file
# A reference given with an upload (HTTP, or `u-<16 hex>` made by the watcher): letters and
# digits in runs joined by single `.`, `_` or `-`, so it never holds the separator.
REFERENCE = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
MAX_REFERENCE_CHARS = 64
CLAIMED = re.compile(rf"({REFERENCE.pattern}){SEPARATOR}(.+)", re.DOTALL)
NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK)


def refusal(path: Path, info: os.stat_result) -> str | None:
    """Why a candidate (as `lstat` saw it) must never be taken, or None."""
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link, which is never followed"
    if len(os.fsencode(path.name)) > MAX_NAME_BYTES:
        return f"its name is longer than {MAX_NAME_BYTES} bytes"
    return None


def split_claimed(name: str) -> tuple[str, str] | None:
    """(reference, original name) of a claimed file, or None for a name we did not make."""
    match = CLAIMED.fullmatch(name)
    return (match.group(1), match.group(2)) if match else None


def display_name(name: str) -> str:
    """A file name as text for records and logs (undecodable bytes become U+FFFD)."""
    return os.fsencode(name).decode("utf-8", "replace")


def _numbered(name: str, counter: int) -> str:
    path = Path(name)
    return f"{path.stem}.{counter}{path.suffix}"


def move_no_replace(source: Path, folder: Path, name: str) -> Path:
    """Move `source` into `folder` as `name` (or `stem.N.suffix`), never replacing a file.

    A hard link fails if the target exists, which makes the check and the move one step;
    on filesystems without hard links, a check then a rename.
    """
    candidate, counter = folder / name, 1
    while True:
        try:
            os.link(source, candidate, follow_symlinks=False)
            source.unlink()
            return candidate
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            if not os.path.lexists(candidate):
                source.rename(candidate)
                return candidate
        candidate = folder / _numbered(name, counter)
        counter += 1
