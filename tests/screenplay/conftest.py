"""Fixtures for the screenplay domain tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.screenplay.reference import CORPUS_SCRIPTS

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpus ($CINEFORGE_CORPUS, default <repo>/../shared/corpus); skips when absent."""
    path = Path(os.environ.get("CINEFORGE_CORPUS", REPO_ROOT.parent / "shared" / "corpus")).resolve()
    if not all((path / f"{name}.fountain").exists() for name in CORPUS_SCRIPTS):
        pytest.skip(f"screenplay corpus not found at {path} (set CINEFORGE_CORPUS)")
    return path
