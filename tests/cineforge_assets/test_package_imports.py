"""Importing domain code does not build the pipeline: the package ``__init__`` stays empty.

Each check runs in a fresh interpreter, since this test process has long since imported Dagster.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def modules_loaded_by(statement: str) -> set[str]:
    probe = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return set(proc.stdout.split())


def test_importing_the_fountain_parser_loads_neither_dagster_nor_the_definitions() -> None:
    loaded = modules_loaded_by("import cineforge_assets.screenplay.fountain")
    assert "dagster" not in loaded
    assert "cineforge_assets.definitions" not in loaded


def test_no_screenplay_module_imports_dagster() -> None:
    statement = (
        "import importlib, pkgutil, cineforge_assets.screenplay as pkg\n"
        "for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(info.name)"
    )
    loaded = modules_loaded_by(statement)
    assert "cineforge_assets.screenplay.fountain" in loaded
    assert "dagster" not in loaded


def test_writing_files_atomically_does_not_load_dagster() -> None:
    """B-roll's job store and gate write atomically; they once imported the IO manager (and Dagster) for it."""
    loaded = modules_loaded_by("import cineforge_assets.broll.jobs, cineforge_assets.broll.gate")
    assert "resources.atomic_files" in loaded
    assert "dagster" not in loaded
