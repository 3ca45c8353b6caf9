"""Latencies learned fleet-wide: a process that made too few calls hedges on what the fleet measured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from resources.resilience.hedge import HedgePolicy, LatencyTracker, hedge_delay, stage_key
from resources.resilience.latency_store import LATENCY_TABLE, FleetLatencies, merged_record
from resources.resilience.record_table import (
    Change,
    MemoryRecordStore,
    PostgresRecordStore,
    RecordStore,
    SQLiteRecordStore,
)
from tests.resources.resilience.fakes import FakeClock
from tests.resources.resilience.test_breaker import pg_dsn  # noqa: F401  (fixture)

R = TypeVar("R")
KEY = ("anthropic", "claude-sonnet-4-6", "enrich_scenes")
POLICY = HedgePolicy(min_samples=20)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RecordStore, RecordStore]]:
    """Two handles on one table, as two processes (or hosts) hold them."""
    if request.param == "memory":
        shared = MemoryRecordStore()
        yield shared, shared
        return
    stores: tuple[RecordStore, RecordStore]
    if request.param == "sqlite":
        path = tmp_path / "b.sqlite"
        stores = (SQLiteRecordStore(path, LATENCY_TABLE), SQLiteRecordStore(path, LATENCY_TABLE))
    else:
        dsn = request.getfixturevalue("pg_dsn")
        stores = (PostgresRecordStore(dsn, LATENCY_TABLE), PostgresRecordStore(dsn, LATENCY_TABLE))
    try:
        yield stores
    finally:
        for store in stores:
            store.close()


def test_a_new_process_hedges_on_the_fleets_latencies_not_half_its_timeout(
    two_stores: tuple[RecordStore, RecordStore],
) -> None:
    clock = FakeClock()
    first = LatencyTracker(fleet=FleetLatencies(two_stores[0], "live:x", clock=clock))
    for i in range(20):
        first.observe(KEY, 0.2 + i / 1000)
    first.flush()
    # A step starting in its own process: it has measured nothing yet.
    fresh = LatencyTracker(fleet=FleetLatencies(two_stores[1], "live:x", clock=clock))
    assert hedge_delay(POLICY, fresh, KEY, timeout=60.0) == pytest.approx(1.1 * 0.209)  # 1.1 x the median
    # Without the fleet, the same process would wait half the timeout.
    assert hedge_delay(POLICY, LatencyTracker(), KEY, timeout=60.0) == 30.0
    # The stage's pool is shared too (a fallback model without latencies of its own).
    assert fresh.quantile(stage_key(("openai", "gpt-4.1", "enrich_scenes")), 0.95, 20) == pytest.approx(0.218)


def test_other_scopes_do_not_see_each_others_latencies(two_stores: tuple[RecordStore, RecordStore]) -> None:
    clock = FakeClock()
    drill = LatencyTracker(fleet=FleetLatencies(two_stores[0], "simulated:y", clock=clock))
    for _ in range(20):
        drill.observe(KEY, 0.01)
    drill.flush()
    live = LatencyTracker(fleet=FleetLatencies(two_stores[1], "live:x", clock=clock))
    assert live.quantile(KEY, 0.95, 20) is None


def test_latencies_are_written_every_twenty_or_after_five_seconds_not_per_call() -> None:
    clock = FakeClock()
    store = MemoryRecordStore()
    fleet = FleetLatencies(store, "s", clock=clock, flush_every=20, flush_seconds=5.0)
    for _ in range(19):
        fleet.note(KEY, 0.2)
    assert store.read("s") is None
    fleet.note(KEY, 0.2)
    assert store.read("s") is not None
    fleet.note(("openai", "gpt-4.1", "normalize"), 0.3)
    clock.advance(4.9)
    fleet.note(("openai", "gpt-4.1", "normalize"), 0.3)
    assert "gpt-4.1" not in (store.read("s") or "")
    clock.advance(0.2)
    fleet.note(("openai", "gpt-4.1", "normalize"), 0.3)
    assert "gpt-4.1" in (store.read("s") or "")


def test_old_latencies_are_left_out_and_each_key_keeps_only_the_newest() -> None:
    now = 10_000.0
    text = merged_record(None, {KEY: [(now - 7200, 99.0)] + [(now, 0.1 * i) for i in range(200)]}, now, 128, 3600)
    fleet = FleetLatencies(MemoryRecordStore(), "s", clock=lambda: now)
    fleet.store.update("s", lambda _stored: (text, None))
    samples = fleet.samples(KEY)
    assert len(samples) == 128 and 99.0 not in samples
    assert samples[-1] == pytest.approx(19.9)
    # An hour later everything written now is too old to hedge on.
    later = FleetLatencies(fleet.store, "s", clock=lambda: now + 3601)
    assert later.samples(KEY) == []


class BrokenStore(MemoryRecordStore):
    def read(self, scope: str) -> str | None:
        raise OSError("database is locked")

    def update(self, scope: str, change: Change[R]) -> R:
        raise OSError("database is locked")


def test_a_failing_store_leaves_the_process_with_its_own_latencies() -> None:
    tracker = LatencyTracker(fleet=FleetLatencies(BrokenStore(), "s", clock=FakeClock()))
    for _ in range(25):
        tracker.observe(KEY, 0.2)  # flushes fail and are logged, the calls go on
    tracker.flush()
    assert tracker.quantile(KEY, 0.95, 20) == pytest.approx(0.2)
    assert LatencyTracker(fleet=FleetLatencies(BrokenStore(), "s")).quantile(KEY, 0.95, 20) is None
