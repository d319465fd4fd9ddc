"""Java programs for the test suite, fetched or built from Maven Central once into a cache.

Each lives in `~/.cache/meterpipe/<name>` (`$XDG_CACHE_HOME` is honoured). `mvn` runs a
generated pom in a temporary directory beside it, and what the build leaves is moved into
place and marked complete: all or nothing, reused by every later run. Test processes started
at once take a file lock, so the first builds and the others wait for it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["JavaToolsUnavailableError", "cached_build", "java_command", "run_maven"]

JAVA_MIN = 17
INSTALL_HINT = (
    "need Java 17+ and Maven: run `sudo bash deploy/install-tools.sh`"
    " (or apt-get install openjdk-17-jre-headless maven); Maven Central must be reachable"
    " once, to fetch their jars"
)


class JavaToolsUnavailableError(RuntimeError):
    """Java or Maven is missing, or what a test needs could not be fetched or built."""


def cache_dir(name: str) -> Path:
    """Where the program `name` lives once built."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "meterpipe" / name


def java_command(who: str) -> str:
    """The `java` to run with; JavaToolsUnavailableError naming `who` needs it if there is
    none of 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise JavaToolsUnavailableError(f"no java found: {who} {INSTALL_HINT}")
    done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)', done.stderr)
    if not found or int(found.group(1)) < JAVA_MIN:
        raise JavaToolsUnavailableError(f"{java} is not Java {JAVA_MIN}+: {who} {INSTALL_HINT}")
    return java


def cached_build(name: str, build: Callable[[Path, Path], None]) -> Path:
    """The directory of `name`, made first by `build(work, target)` if it is not complete.

    `build` gets an empty temporary directory `work` and moves what it made into `target`.
    """
    target = cache_dir(name)
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "complete").exists():
            with tempfile.TemporaryDirectory(dir=target, prefix="build-") as work:
                build(Path(work), target)
            (target / "complete").write_text(name, encoding="utf-8")
    return target


def run_maven(pom: Path, args: list[str], what: str, who: str, timeout_s: float) -> None:
    """Run `mvn` on `pom`; JavaToolsUnavailableError with the end of its output if it fails."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JavaToolsUnavailableError(f"no mvn found: {who} {INSTALL_HINT}")
    command = [mvn, "-q", "-B", "-f", str(pom), *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise JavaToolsUnavailableError(f"{what} timed out after {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise JavaToolsUnavailableError(f"mvn failed at {what}:\n{tail}")
