"""deploy/Dockerfile: pinned slim base, the whole project copied in, non-root, health-checked."""

from __future__ import annotations

import fnmatch
import re
import tomllib

import pytest

from tests.deploy.deployfiles import DEPLOY, REPO

DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


def _args(instruction: str) -> list[str]:
    return [rest for word, rest in _instructions() if word == instruction]


def _copied_sources() -> set[str]:
    sources: set[str] = set()
    for rest in _args("COPY"):
        *paths, _destination = rest.split()
        sources.update(p.rstrip("/") for p in paths if not p.startswith("--"))
    return sources


def test_base_image_is_a_pinned_slim_python_3_11() -> None:
    (base,) = _args("FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base


def test_every_package_and_the_build_metadata_are_copied() -> None:
    """A package added to pyproject but not copied would be missing from the image."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)
    packages = {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]}
    needed = packages | {"pyproject.toml", project["project"]["readme"]}
    assert needed <= _copied_sources()
    assert all((REPO / source).exists() for source in _copied_sources())


def test_dockerignore_keeps_what_is_copied() -> None:
    patterns = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in _copied_sources():
        assert not any(fnmatch.fnmatch(source, p) for p in patterns), source
    assert {".venv", ".git"} <= set(patterns)


def test_installs_the_project_and_runs_up_as_non_root() -> None:
    (install,) = [rest for rest in _args("RUN") if re.search(r"\bpip install \.(\s|$|&)", rest)]
    # The C extension is compiled at install: the slim image has no compiler of its own.
    assert install.index("apt-get install") < install.index("pip install .")
    assert "gcc" in install
    (user,) = _args("USER")
    assert user.split(":")[0] not in {"0", "root"}
    assert _args("CMD") == ['["meterpipe", "up"]']
    assert "9108" in _args("EXPOSE")


@pytest.mark.parametrize("needle", ["/healthz", "METERPIPE_METRICS_PORT", "9108"])
def test_healthcheck_requests_the_metrics_endpoint(needle: str) -> None:
    (healthcheck,) = _args("HEALTHCHECK")
    assert needle in healthcheck
