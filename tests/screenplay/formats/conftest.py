"""Fixtures for the format reader tests: the corpus and reference digests (the sample PDF renderer is
``bench.pdf_traits.render_pdf_module``, shared with the trait benchmark)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

from cineforge_assets.screenplay.fidelity import (
    FidelityReport,
    ScriptDigest,
    compare,
    digest_fountain,
    digest_screenplain,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ("Big-Fish", "The-Last-Birthday-Card")

# The floor every layout format must reach on the corpus (see BENCHMARKS.md, fidelity section).
HEADING_F1_FLOOR = 0.99
CHARACTER_F1_FLOOR = 0.97
ATTRIBUTION_FLOOR = 0.97


@pytest.fixture(scope="session")
def corpus() -> Path:
    """$CINEFORGE_CORPUS, default <repo>/../shared/corpus; skips cleanly when absent."""
    path = Path(os.environ.get("CINEFORGE_CORPUS", REPO_ROOT.parent / "shared" / "corpus")).resolve()
    if not all((path / f"{name}.{ext}").exists() for name in SCRIPTS for ext in ("fountain", "fdx", "pdf")):
        pytest.skip(f"screenplay corpus not found at {path} (set CINEFORGE_CORPUS)")
    return path


@cache
def reference_digest(fountain_path: Path) -> ScriptDigest:
    return digest_screenplain(fountain_path.read_text(encoding="utf-8"))


def fidelity(reference_fountain: Path, fountain_text: str) -> FidelityReport:
    candidate, _parser = digest_fountain(fountain_text)
    return compare(reference_digest(reference_fountain), candidate)


def assert_floor(report: FidelityReport) -> None:
    assert report.headings.f1 >= HEADING_F1_FLOOR, report
    assert report.characters.f1 >= CHARACTER_F1_FLOOR, report
    assert report.attribution >= ATTRIBUTION_FLOOR, report
