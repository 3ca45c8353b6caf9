"""Imports point down: ``resources/`` never imports ``cineforge_assets``, and no two parts import each other.

Read from the source with ``ast`` (nothing is imported), so an import made inside a function counts as
much as one at the top of a module: a lazy import that reaches up is still a layer crossed. import-linter
(``layers`` / ``forbidden`` / ``independence`` contracts) would state the same rules as configuration;
it is not a dependency of the project, and these rules need ~60 lines of the standard library.
"""

from __future__ import annotations

import ast
import graphlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("cineforge_assets", "resources")

Edge = tuple[str, str]


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` under ``root``."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name an import statement anywhere in the file names (``from a import b`` gives
    ``a`` and ``a.b``, since ``b`` may be a module); relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_edges(modules: dict[str, Path]) -> set[Edge]:
    """(importer, imported) between the given modules; a name is mapped to the longest module it starts with."""
    edges: set[Edge] = set()
    for module, path in modules.items():
        for name in imported_names(module, path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add((module, name))
    return edges


def part(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth])


def first_cycle(edges: Iterable[Edge]) -> list[str] | None:
    graph: dict[str, set[str]] = {}
    for importer, imported in edges:
        graph.setdefault(importer, set()).add(imported)
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        return list(cycle.args[1])
    return None


def cycle_between_parts(edges: Iterable[Edge], package: str | None) -> list[str] | None:
    """A cycle between the top-level packages (``package`` None) or between the direct children
    (subpackages and modules) of ``package``, ignoring imports inside one part."""
    depth = 1 if package is None else 2
    parts = {
        (part(a, depth), part(b, depth))
        for a, b in edges
        if part(a, depth) != part(b, depth) and (package is None or part(a, 1) == part(b, 1) == package)
    }
    return first_cycle(parts)


@pytest.fixture(scope="module")
def repo_edges() -> set[Edge]:
    return import_edges(module_files(REPO, PACKAGES))


def test_no_module_under_resources_imports_cineforge_assets(repo_edges: set[Edge]) -> None:
    upward = sorted((a, b) for a, b in repo_edges if part(a, 1) == "resources" and part(b, 1) == "cineforge_assets")
    assert upward == []


def test_no_import_cycle_between_the_top_level_packages(repo_edges: set[Edge]) -> None:
    assert cycle_between_parts(repo_edges, None) is None


def test_no_import_cycle_between_the_subpackages_and_modules_of_cineforge_assets(repo_edges: set[Edge]) -> None:
    assert cycle_between_parts(repo_edges, "cineforge_assets") is None


def test_no_import_cycle_between_the_subpackages_and_modules_of_resources(repo_edges: set[Edge]) -> None:
    assert cycle_between_parts(repo_edges, "resources") is None


def test_no_module_of_ours_imports_a_module_that_imports_it_back(repo_edges: set[Edge]) -> None:
    """Module level, every import counted (inside functions and under ``TYPE_CHECKING`` too): a loop only
    type checkers follow still means neither module can be read, moved or tested without the other."""
    assert ("resources.resilience.breaker", "resources.resilience.breaker_state") in repo_edges
    assert first_cycle(repo_edges) is None


@pytest.mark.parametrize(
    "module", ["resources.atomic_files", "resources.data_root", "resources.providers.screenplay_grammar"]
)
def test_leaf_modules_import_only_the_standard_library(module: str) -> None:
    """The modules every layer shares stay cheap to import: no Dagster, pydantic or project code."""
    path = module_files(REPO, PACKAGES)[module]
    roots = {name.split(".")[0] for name in imported_names(module, path)}
    assert roots - set(sys.stdlib_module_names) == set()


# ---------------------------------------------------------------- the scan itself


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_an_import_inside_a_function_and_a_relative_import_are_edges(tmp_path: Path) -> None:
    write_package(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/leaf.py": "def f():\n    from high.top import thing\n",
            "low/sibling.py": "from .leaf import f\n",
            "high/__init__.py": "",
            "high/top.py": "thing = 1\n",
        },
    )
    edges = import_edges(module_files(tmp_path, ("low", "high")))
    assert ("low.leaf", "high.top") in edges
    assert ("low.sibling", "low.leaf") in edges


def test_a_cycle_between_two_parts_is_reported_and_one_inside_a_part_is_not(tmp_path: Path) -> None:
    write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a/__init__.py": "",
            "pkg/a/one.py": "from pkg.a import two\n",
            "pkg/a/two.py": "from pkg.a import one\nfrom pkg.b import x\n",
            "pkg/b.py": "x = 1\n",
        },
    )
    edges = import_edges(module_files(tmp_path, ("pkg",)))
    assert cycle_between_parts(edges, "pkg") is None
    write_package(tmp_path, {"pkg/b.py": "from pkg.a.one import y\nx = 1\n"})
    edges = import_edges(module_files(tmp_path, ("pkg",)))
    assert set(cycle_between_parts(edges, "pkg") or ()) == {"pkg.a", "pkg.b"}


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path: Path) -> None:
    write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import B\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",
        },
    )
    edges = import_edges(module_files(tmp_path, ("pkg",)))
    assert set(first_cycle(edges) or ()) == {"pkg.a", "pkg.b"}
