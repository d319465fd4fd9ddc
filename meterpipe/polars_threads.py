"""polars made safe to call from several threads from its very first call.

When polars is imported before numpy, it reaches numpy through a proxy module that its
first use replaces with the real one. That replacement is not thread-safe: it copies
numpy's attributes over the proxy's own, numpy's `_globals` submodule over the proxy's
`_globals`, and a second thread inside the same first use then fails with "'module'
object does not support item assignment" (a consumer died of it, preparing its first
batch on one thread while its main thread also used polars). Importing this module makes
that first use here, at import time, which Python's import lock keeps to one thread: the
modules that run polars on threads of their own import it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__: list[str] = []

pl.Series(np.zeros(0, dtype=np.int64))  # the proxy's first use, before any thread exists
