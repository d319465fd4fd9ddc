"""Files claimed by someone else (the HTTP API) for the watcher to publish.

The HTTP API receives a file, records its upload and claims it into `processing/` itself,
then hands the request over: from there on it takes the inbox's path (publish, then
`done/` or `error/` with reports). The request carries what the file name cannot: the
per-upload options (also kept in the store, for publishing the file again after a restart).
"""

from __future__ import annotations

import queue

from producers.upload import UploadRequest

__all__ = ["HandOver"]


class HandOver:
    """A thread-safe queue of upload requests for claimed files."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[UploadRequest] = queue.SimpleQueue()

    def put(self, request: UploadRequest) -> None:
        """Give the watcher one claimed file to publish."""
        self._requests.put(request)

    def take_all(self) -> list[UploadRequest]:
        """Every request handed over since the last call, oldest first."""
        taken = []
        while True:
            try:
                taken.append(self._requests.get_nowait())
            except queue.Empty:
                return taken
