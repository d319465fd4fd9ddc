"""polars reaches numpy for real before any thread of the pipeline can make its first call.

polars imported before numpy keeps a proxy of numpy that its first use replaces, and that
replacement fails when two threads make it at once. Each process that runs polars on
threads loads meterpipe.polars_threads, which makes that first use at import time.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

RESOLVED = """
import sys
import polars  # before numpy, as the commands import them
import polars._dependencies as dependencies
proxied = type(dependencies.numpy).__name__ == "_LazyModule"
import importlib
importlib.import_module(sys.argv[1])
import numpy
print(proxied, dependencies.numpy is numpy)
"""


@pytest.mark.parametrize("entry", ["meterpipe.cli_run", "meterpipe.cli_serve"])
def test_the_commands_running_threads_resolve_polars_numpy_at_import(entry: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RESOLVED, entry], capture_output=True, text=True, check=True
    )
    # A proxy at first (else this test would prove nothing), the real numpy once imported.
    assert done.stdout.split() == ["True", "True"]
