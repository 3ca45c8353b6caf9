"""The telemetry file rotates by size and by UTC day, across processes, without losing a line; the
reliability report reads only the segments of its window. Time comes from injected clocks and ``os.utime``."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from dagster import materialize

from resources.resilience.telemetry import JsonlTelemetrySink, segment_path, segments, window_files
from tests.resources.resilience.test_telemetry import RECORD

DAY = 86_400.0
NOON = 1_900_000_800.0 - (1_900_000_800.0 % DAY) + DAY / 2  # an arbitrary UTC noon


def lines_in(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


def test_the_file_rotates_when_it_reaches_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonlTelemetrySink(path, max_bytes=4_000, check_interval_s=0)
    for attempt in range(1, 101):
        sink.on_attempt(RECORD.model_copy(update={"attempt": attempt}))
    sink.close()
    closed = segments(path)
    assert len(closed) >= 8  # 100 lines of ~420 bytes in files of 4,000
    assert all(p.stat().st_size <= 4_000 + 500 for _, p in closed)  # at most one line past the limit
    assert path.stat().st_size < 4_000
    assert sorted(r["attempt"] for r in lines_in(tmp_path)) == list(range(1, 101))  # nothing lost


def test_the_file_rotates_on_a_new_utc_day(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    now = [NOON]
    sink = JsonlTelemetrySink(path, clock=lambda: now[0], check_interval_s=0)
    sink.on_attempt(RECORD)
    os.utime(path, (NOON, NOON))  # the file was last written at yesterday's noon ...
    now[0] = NOON + DAY  # ... and today has come
    sink.on_attempt(RECORD.model_copy(update={"attempt": 2}))
    sink.close()
    ((stamp, segment),) = segments(path)
    assert segment == segment_path(path, NOON) and stamp == NOON
    assert [json.loads(x)["attempt"] for x in segment.read_text().splitlines()] == [1]
    assert [json.loads(x)["attempt"] for x in path.read_text().splitlines()] == [2]


def test_segments_past_retention_are_deleted_on_rotation(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    now = time.time()  # the clock of the file system's mtimes, which name the segments
    ancient = segment_path(path, now - 40 * DAY)
    recent = segment_path(path, now - 3 * DAY)
    ancient.write_text("{}\n")
    recent.write_text("{}\n")
    sink = JsonlTelemetrySink(path, max_bytes=10, retention_days=30, check_interval_s=0)
    sink.on_attempt(RECORD)
    sink.on_attempt(RECORD)  # the first line passed max_bytes: this write rotates
    sink.close()
    assert not ancient.exists() and recent.exists() and len(segments(path)) == 2


def _append(path: str, worker: int, count: int) -> None:
    sink = JsonlTelemetrySink(path, max_bytes=8_000, check_interval_s=0)
    for attempt in range(count):
        sink.on_attempt(RECORD.model_copy(update={"attempt": attempt, "run_id": f"w{worker}"}))
    sink.close()


def test_processes_rotating_one_file_lose_no_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append, args=(str(path), w, 300)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    records = lines_in(tmp_path)
    assert len(records) == 900
    for w in range(3):
        assert sorted(r["attempt"] for r in records if r["run_id"] == f"w{w}") == list(range(300))
    assert len(segments(path)) >= 20


def test_a_window_opens_only_the_segments_that_can_hold_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    old, fresh = segment_path(path, NOON - 3 * DAY), segment_path(path, NOON - 3_600)
    old.write_text("{}\n")
    fresh.write_text("{}\n")
    path.write_text("{}\n")
    assert window_files(path, NOON - DAY) == [fresh, path]
    assert window_files(path, None) == [old, fresh, path]


def test_the_reliability_report_reads_only_its_window(
    tmp_path: Path, data_root: Path, instance: Any
) -> None:
    """The daily report counts lines of its 24 hours in rotated segments and the live file, and never
    opens an older segment: here an old segment is a dangling link, which would fail the run if opened."""
    from cineforge_assets.assets.reliability import reliability_report
    from cineforge_assets.paths import telemetry_path

    path = telemetry_path()
    path.parent.mkdir(parents=True)
    now = time.time()
    segment_path(path, now - 5 * DAY).symlink_to(tmp_path / "gone.jsonl")
    in_window = JsonlTelemetrySink(path, max_bytes=1, check_interval_s=0)
    for attempt in (1, 2, 3):  # each line passes max_bytes: two rotated segments and the live file
        in_window.on_attempt(RECORD.model_copy(update={"ts": now - 60, "attempt": attempt}))
    in_window.close()
    assert len(segments(path)) == 3

    result = materialize([reliability_report], instance=instance, resources={})
    assert result.success
    frame = result.output_for_node("reliability_report")
    assert int(frame["calls"].sum()) == 3
