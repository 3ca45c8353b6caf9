"""No module of ours imports, directly or through others, a module that imports it back.

Every import counts, at module level, inside functions or under ``TYPE_CHECKING``: a loop only type
checkers follow still means neither module can be read, moved or tested without the other.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("resources", "cineforge_assets")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports (``from package import module`` included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} & known
            found |= {f"{node.module}.{alias.name}" for alias in node.names} & known
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names} & known
    return found


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    paths = {module_name(p, root): p for package in packages for p in (root / package).rglob("*.py")}
    known = set(paths)
    return {name: imported_modules(path, known) - {name} for name, path in paths.items()}


def test_the_import_graph_of_our_packages_has_no_cycle() -> None:
    graph = import_graph(REPO_ROOT)
    assert "resources.resilience.breaker" in graph  # the walk found the modules it is meant to check
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "resources"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from resources.b import B\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from resources import a\n")
    graph = import_graph(tmp_path, ("resources",))
    assert graph["resources.a"] == {"resources.b"}
    assert "resources.a" in graph["resources.b"]
    with pytest.raises(CycleError):
        TopologicalSorter(graph).prepare()
