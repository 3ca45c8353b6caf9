"""The memory benchmark's measuring harness on one case: a real ``cineforge ingest`` process on a
sparse 50 MB file is refused, and both memory measures see that process. Behaviour only, no figures."""

from __future__ import annotations

from pathlib import Path

from bench.memory import MIB, render, run_ingest


def test_run_ingest_measures_a_refused_file(tmp_path: Path) -> None:
    big = tmp_path / "big.fountain"
    with big.open("wb") as out:
        out.truncate(50 * MIB)
    measured = run_ingest("50 MB text file", big)
    assert measured.exit_status == 3 and measured.outcome == "refused: CINEFORGE_MAX_SOURCE_MB"
    assert measured.peak_process_mb > 10 and measured.peak_tree_mb > 10  # an interpreter was seen
    assert "| 50 MB text file | 50.0 MB | 3 | refused: CINEFORGE_MAX_SOURCE_MB |" in render([measured], runs=1)
