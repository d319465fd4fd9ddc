"""The layers only point down (ARCHITECTURE.md): read from the source, not from a diagram.

From the bottom: the base runtime (`meterpipe.*` modules other than the application's), the
contract (`schemas`), then `producers` and `consumers`, which never import each other, and
the application on top. No two modules import each other, even through imports inside functions:
a cycle is fixed by moving code to the floor it belongs on, not hidden by a late import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("meterpipe", "schemas", "producers", "consumers")
# The application: what a user runs and the wiring of its processes.
APPLICATION_PREFIXES = (
    "meterpipe.cli",
    "meterpipe.first_arrivals",
    "meterpipe.views",
    "meterpipe.api_keys",
    "meterpipe.web",
    "meterpipe.pipeline",
    "meterpipe.bench",
    "meterpipe.sample_data",
    "meterpipe.__main__",
)
LEVELS = {"runtime": 0, "schemas": 1, "producers": 2, "consumers": 2, "application": 3}


def _layer(module: str) -> str:
    package = module.split(".", maxsplit=1)[0]
    if package != "meterpipe":
        return package
    return "application" if module.startswith(APPLICATION_PREFIXES) else "runtime"


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, ast.parse(path.read_text(encoding="utf-8"))


def _ours(node: ast.AST) -> list[str]:
    """The modules of ours an import statement names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module]
    else:
        return []
    return [name for name in names if name.split(".")[0] in PACKAGES]


def _imports(tree: ast.Module) -> Iterator[tuple[str, bool]]:
    """(module imported, whether inside a function) for every import of ours in `tree`."""
    functions = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    late = {id(inner) for function in functions for inner in ast.walk(function)}
    for node in ast.walk(tree):
        for name in _ours(node):
            yield name, id(node) in late


def test_every_import_points_down_or_sideways_within_its_own_package() -> None:
    wrong = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, tree in _modules()
        for target, _ in _imports(tree)
        if LEVELS[_layer(target)] > LEVELS[_layer(module)]
        or ({_layer(module), _layer(target)} == {"producers", "consumers"})
    ]
    assert wrong == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `edges`: strongly connected groups of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while (member := stack.pop()) != module:
                group.append(member)
            if group:
                found.append(sorted([*group, module]))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_even_counting_imports_inside_functions() -> None:
    """An import inside a function (a command's heavy dependency, an optional driver) is
    fine; one that hides a cycle is not: counted as if it ran at import time, no cycle."""
    modules = dict(_modules())
    edges = {
        module: {target for target, _ in _imports(tree) if target in modules and target != module}
        for module, tree in modules.items()
    }
    assert _cycles(edges) == []


def test_the_layer_rules_catch_a_wrong_import() -> None:
    """The checks above read real import statements: an upward one is found."""
    tree = ast.parse("from consumers.store import open_store\ndef f():\n    import schemas.codec\n")
    found = list(_imports(tree))
    assert found == [("consumers.store", False), ("schemas.codec", True)]
    assert LEVELS[_layer("consumers.store")] > LEVELS[_layer("schemas.model")]
    assert _layer("meterpipe.cli_queries") == "application"
    assert _layer("meterpipe.settings") == "runtime"
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
