"""Shared fixtures: a private data root and Dagster instance per test, the corpus location."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Dagster step-retry delays are read at import time: keep them short under test (behaviour, not timing).
os.environ.setdefault("CINEFORGE_STEP_RETRY_DELAY_SECONDS", "0.2")

REPO_ROOT = Path(__file__).resolve().parent.parent


def corpus_path() -> Path:
    return Path(os.environ.get("CINEFORGE_CORPUS", REPO_ROOT.parent / "shared" / "corpus")).resolve()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = corpus_path()
    if not (path / "Big-Fish.fountain").exists():
        pytest.skip(f"screenplay corpus not found at {path} (set CINEFORGE_CORPUS)")
    return path


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``CINEFORGE_DATA`` so tests never touch ./data or each other."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("CINEFORGE_DATA", str(root))
    return root


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[object]:
    from dagster import DagsterInstance

    with DagsterInstance.get() as inst:
        yield inst
