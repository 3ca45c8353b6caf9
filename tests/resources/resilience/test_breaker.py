"""The breaker's state machine, on every store, plus cross-process safety of the shared stores."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from resources.resilience.breaker import BreakerPolicy, CircuitBreaker, streak_to_open
from resources.resilience.breaker_state import BreakerRecord, Permit
from resources.resilience.breaker_store import (
    BreakerStore,
    MemoryBreakerStore,
    PostgresBreakerStore,
    SQLiteBreakerStore,
    default_store_url,
)
from resources.resilience.errors import BreakerOpenError, ProviderParkedError, ProviderWarmingError
from tests.postgres import PostgresUnavailable, scratch_database
from tests.resources.resilience.fakes import FakeClock, RecordingListener

POLICY = BreakerPolicy(
    failure_threshold=3,
    warm_up_calls=3,  # the closed-state tests start cold; the warm-up tests set their own budget
    window_seconds=60.0,
    failure_rate_threshold=0.5,
    min_calls_in_window=10,
    cooldown_seconds=30.0,
    first_cooldown_seconds=30.0,  # a fixed open period: the adaptive one has its own tests below
    half_open_max_probes=2,
    probe_lease_seconds=100.0,
    cache_ttl_seconds=1.0,
)

StoreFactory = Callable[[], BreakerStore]


# ---------------------------------------------------------------------------------------------- stores


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A private database ``cineforge_test_<uuid>`` on the local PostgreSQL, dropped afterwards."""
    pytest.importorskip("psycopg2")
    try:
        with scratch_database("cineforge_test") as dsn:
            yield dsn
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Makes store handles that share one backing state (as separate processes would)."""
    opened: list[BreakerStore] = []
    if request.param == "memory":
        shared = MemoryBreakerStore()

        def make() -> BreakerStore:
            return shared

    elif request.param == "sqlite":

        def make() -> BreakerStore:
            store = SQLiteBreakerStore(tmp_path / "breakers.sqlite")
            opened.append(store)
            return store

    else:
        dsn = request.getfixturevalue("pg_dsn")

        def make() -> BreakerStore:
            # The fake clock drives these state-machine tests: the database's clock would not move with it.
            store = PostgresBreakerStore(dsn, database_clock=False)
            opened.append(store)
            return store

    yield make
    for store in opened:
        store.close()


def make_breaker(
    store: BreakerStore,
    clock: FakeClock,
    policy: BreakerPolicy = POLICY,
    listener: RecordingListener | None = None,
) -> CircuitBreaker:
    return CircuitBreaker(store, policy, clock=clock, listeners=[listener] if listener else [])


def fail(breaker: CircuitBreaker, provider: str = "anthropic") -> None:
    breaker.record(breaker.acquire(provider), success=False)


def succeed(breaker: CircuitBreaker, provider: str = "anthropic") -> None:
    breaker.record(breaker.acquire(provider), success=True)


def open_breaker(breaker: CircuitBreaker, provider: str = "anthropic") -> None:
    for _ in range(breaker.policy.failure_threshold):
        fail(breaker, provider)
    assert breaker.state(provider) == "open"


# ------------------------------------------------------------------------------------- state machine


def test_opens_after_consecutive_failures_and_denies(store_factory: StoreFactory) -> None:
    clock, listener = FakeClock(), RecordingListener()
    breaker = make_breaker(store_factory(), clock, listener=listener)
    fail(breaker)
    fail(breaker)
    assert breaker.state("anthropic") == "closed"
    fail(breaker)
    assert breaker.state("anthropic") == "open"
    assert [(t.from_state, t.to_state, t.reason) for t in listener.transitions] == [
        ("closed", "open", "consecutive_failures")
    ]
    with pytest.raises(BreakerOpenError) as denied:
        breaker.acquire("anthropic")
    assert denied.value.reopens_at == clock.now + 30.0
    assert denied.value.provider == "anthropic"
    # other providers are independent
    succeed(breaker, "openai")
    assert breaker.state("openai") == "closed"


def test_a_success_resets_the_streak(store_factory: StoreFactory) -> None:
    breaker = make_breaker(
        store_factory(), FakeClock(), BreakerPolicy(failure_threshold=3, warm_up_calls=3, min_calls_in_window=1000)
    )
    for _ in range(5):
        fail(breaker)
        fail(breaker)
        succeed(breaker)
    assert breaker.state("anthropic") == "closed"
    assert breaker.snapshot()["anthropic"].consecutive_failures == 0


def test_failure_rate_opens_once_the_window_has_enough_calls() -> None:
    clock, listener = FakeClock(), RecordingListener()
    policy = BreakerPolicy(failure_threshold=100, min_calls_in_window=10, failure_rate_threshold=0.5)
    breaker = make_breaker(MemoryBreakerStore(), clock, policy, listener)
    for _ in range(4):  # 8 calls, 50 % failed: not enough calls yet
        fail(breaker)
        succeed(breaker)
        clock.advance(1.0)
    assert breaker.state("anthropic") == "closed"
    succeed(breaker)  # 9 calls, 4 failures
    fail(breaker)  # 10 calls, 5 failures -> 50 %
    assert breaker.state("anthropic") == "open"
    assert listener.transitions[-1].reason == "failure_rate"


def test_failures_older_than_the_window_are_forgotten() -> None:
    clock = FakeClock()
    policy = BreakerPolicy(
        failure_threshold=100, warm_up_calls=100, min_calls_in_window=4, failure_rate_threshold=0.5
    )
    breaker = make_breaker(MemoryBreakerStore(), clock, policy)
    fail(breaker)
    fail(breaker)
    succeed(breaker)
    clock.advance(61.0)  # those three calls left the 60 s window
    succeed(breaker)
    succeed(breaker)
    fail(breaker)
    snapshot = breaker.snapshot()["anthropic"]
    assert (snapshot.window_calls, snapshot.window_failures) == (3, 1)
    assert breaker.state("anthropic") == "closed"


def test_cooldown_then_bounded_probes_then_success_closes(store_factory: StoreFactory) -> None:
    clock, listener = FakeClock(), RecordingListener()
    breaker = make_breaker(store_factory(), clock, listener=listener)
    other_process = make_breaker(store_factory(), clock)
    open_breaker(breaker)
    clock.advance(29.9)
    with pytest.raises(BreakerOpenError):
        other_process.acquire("anthropic")
    clock.advance(0.2)
    probes = [breaker.acquire("anthropic"), other_process.acquire("anthropic")]
    assert all(p.is_probe and p.state == "half_open" for p in probes)
    for contender in (breaker, other_process, breaker):
        with pytest.raises(BreakerOpenError) as denied:
            contender.acquire("anthropic")
        assert denied.value.reopens_at <= clock.now + POLICY.cooldown_seconds
    breaker.record(probes[0], success=True)
    assert breaker.state("anthropic") == "closed"
    other_process.record(probes[1], success=False)  # stale: the breaker already closed
    assert breaker.state("anthropic") == "closed"
    assert [(t.from_state, t.to_state, t.reason) for t in listener.transitions] == [
        ("closed", "open", "consecutive_failures"),
        ("open", "half_open", "cooldown_elapsed"),
        ("half_open", "closed", "probe_succeeded"),
    ]
    succeed(other_process)


def test_failed_probe_reopens_for_a_full_cooldown(store_factory: StoreFactory) -> None:
    clock, listener = FakeClock(), RecordingListener()
    breaker = make_breaker(store_factory(), clock, listener=listener)
    open_breaker(breaker)
    clock.advance(30.0)
    probe = breaker.acquire("anthropic")
    clock.advance(5.0)
    breaker.record(probe, success=False)
    assert listener.transitions[-1].reason == "probe_failed"
    with pytest.raises(BreakerOpenError) as denied:
        breaker.acquire("anthropic")
    assert denied.value.reopens_at == clock.now + 30.0


ADAPTIVE = replace(POLICY, first_cooldown_seconds=5.0, cooldown_multiplier=2.0, half_open_max_probes=1)


def reopens_in(breaker: CircuitBreaker, clock: FakeClock) -> float:
    with pytest.raises(BreakerOpenError) as denied:
        breaker.acquire("anthropic")
    return denied.value.reopens_at - clock.now


def fail_the_probe(breaker: CircuitBreaker, clock: FakeClock, open_for: float) -> None:
    """Let an open period of ``open_for`` s pass (denied until its end), then fail its one probe."""
    clock.advance(open_for - 0.1)
    assert reopens_in(breaker, clock) == pytest.approx(0.1)
    clock.advance(0.1)
    breaker.record(breaker.acquire("anthropic"), success=False)


def test_each_failed_probe_lengthens_the_open_period_up_to_the_cooldown(store_factory: StoreFactory) -> None:
    """Resilience4j's exponential wait in open state: 5 s, then x2 per failed probe, capped at 30 s; one probe
    per open period, fleet-wide. Before: every open period lasted the full 30 s."""
    clock, listener = FakeClock(), RecordingListener()
    breaker = make_breaker(store_factory(), clock, ADAPTIVE, listener)
    other_process = make_breaker(store_factory(), clock, ADAPTIVE)
    open_breaker(breaker)
    assert reopens_in(breaker, clock) == pytest.approx(5.0)
    for open_for, next_open_for in ((5.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 30.0)):
        clock.advance(open_for)
        probe = breaker.acquire("anthropic")
        assert probe.is_probe
        with pytest.raises(BreakerOpenError):  # one probe per open period, whichever process asks
            other_process.acquire("anthropic")
        breaker.record(probe, success=False)
        assert reopens_in(other_process, clock) == pytest.approx(next_open_for)
    assert [t.reason for t in listener.transitions].count("probe_failed") == 4


def test_a_successful_probe_resets_the_open_period_to_its_first_length(store_factory: StoreFactory) -> None:
    clock = FakeClock()
    breaker = make_breaker(store_factory(), clock, ADAPTIVE)
    open_breaker(breaker)
    fail_the_probe(breaker, clock, 5.0)
    fail_the_probe(breaker, clock, 10.0)
    clock.advance(20.0)
    breaker.record(breaker.acquire("anthropic"), success=True)
    assert breaker.state("anthropic") == "closed"
    open_breaker(breaker)  # a new episode
    assert reopens_in(breaker, clock) == pytest.approx(5.0)


def test_a_fixed_open_period_when_the_first_equals_the_cooldown(store_factory: StoreFactory) -> None:
    clock = FakeClock()
    breaker = make_breaker(store_factory(), clock)  # POLICY: first_cooldown_seconds = cooldown_seconds
    open_breaker(breaker)
    assert reopens_in(breaker, clock) == pytest.approx(30.0)
    clock.advance(30.0)
    breaker.record(breaker.acquire("anthropic"), success=False)
    assert reopens_in(breaker, clock) == pytest.approx(30.0)


def test_the_open_period_length_survives_a_record_written_before_it_existed() -> None:
    old = json.loads(BreakerRecord(state="open", opened_at=1.0, reopens_at=31.0).to_json())
    del old["cooldown_s"]
    assert BreakerRecord.from_json(json.dumps(old)).cooldown_s is None


def test_a_lost_probe_frees_its_slot_when_its_lease_expires(store_factory: StoreFactory) -> None:
    clock = FakeClock()
    policy = BreakerPolicy(failure_threshold=1, half_open_max_probes=1, probe_lease_seconds=50.0)
    breaker = make_breaker(store_factory(), clock, policy)
    fail(breaker)
    clock.advance(30.0)
    breaker.acquire("anthropic")  # this probe's process "dies": never recorded
    with pytest.raises(BreakerOpenError) as denied:
        breaker.acquire("anthropic")
    assert denied.value.reopens_at == clock.now + 30.0  # sooner of lease expiry (50) and a cooldown (30)
    clock.advance(50.0)
    assert breaker.acquire("anthropic").is_probe


def test_release_frees_a_probe_slot_without_deciding(store_factory: StoreFactory) -> None:
    clock = FakeClock()
    breaker = make_breaker(store_factory(), clock, BreakerPolicy(failure_threshold=1))
    fail(breaker)
    clock.advance(30.0)
    probe = breaker.acquire("anthropic")
    breaker.release(probe)
    assert breaker.state("anthropic") == "half_open"
    second = breaker.acquire("anthropic")
    assert second.is_probe and second.probe_token != probe.probe_token


def test_late_outcomes_from_before_a_transition_are_ignored() -> None:
    clock = FakeClock()
    breaker = make_breaker(MemoryBreakerStore(), clock)
    succeed(breaker)  # proven: a warming provider would not lend a 4th call while 3 are out or failed
    early = breaker.acquire("anthropic")
    open_breaker(breaker)
    reopens_at = breaker.snapshot()["anthropic"].reopens_at
    clock.advance(10.0)
    breaker.record(early, success=False)  # must not extend the cooldown
    breaker.record(early, success=True)  # must not close an open breaker
    snapshot = breaker.snapshot()["anthropic"]
    assert (snapshot.state, snapshot.reopens_at) == ("open", reopens_at)


# ---------------------------------------------------------------------------- warm-up (cold start)


def test_a_cold_provider_lends_at_most_its_warm_up_budget_in_flight(store_factory: StoreFactory) -> None:
    clock = FakeClock()
    policy = replace(POLICY, warm_up_calls=3)
    here, there = make_breaker(store_factory(), clock, policy), make_breaker(store_factory(), clock, policy)
    lent = [here.acquire("anthropic"), there.acquire("anthropic"), here.acquire("anthropic")]
    assert all(p.state == "closed" and p.probe_token is not None and not p.is_probe for p in lent)
    for breaker in (here, there):
        with pytest.raises(ProviderWarmingError) as denied:
            breaker.acquire("anthropic")
        assert denied.value.error_code == "provider_warming"
    snapshot = here.snapshot()["anthropic"]
    assert (snapshot.state, snapshot.warming, snapshot.probes_in_flight) == ("closed", True, 3)


def test_the_warm_up_budget_is_capped_by_the_failure_threshold() -> None:
    assert BreakerPolicy(failure_threshold=5).warm_up_budget == 2
    assert BreakerPolicy(failure_threshold=1, warm_up_calls=2).warm_up_budget == 1
    with pytest.raises(ValueError, match="warm_up_calls"):
        BreakerPolicy(warm_up_calls=0)


def test_a_cold_provider_whose_warm_up_calls_all_fail_opens_before_the_failure_threshold(
    store_factory: StoreFactory,
) -> None:
    clock, listener = FakeClock(), RecordingListener()
    policy = replace(POLICY, warm_up_calls=2)
    breaker = make_breaker(store_factory(), clock, policy, listener)
    lent = [breaker.acquire("anthropic") for _ in range(policy.warm_up_budget)]
    breaker.record(lent[0], success=False)
    with pytest.raises(ProviderWarmingError):  # 1 in flight + 1 failed: a 3rd call could only add to it
        breaker.acquire("anthropic")
    breaker.record(lent[1], success=False)
    snapshot = breaker.snapshot()["anthropic"]
    assert (snapshot.state, snapshot.reopens_at) == ("open", clock() + policy.cooldown_seconds)
    assert policy.warm_up_budget == 2 < policy.failure_threshold
    assert [(t.from_state, t.to_state, t.reason) for t in listener.transitions] == [
        ("closed", "open", "warm_up_failed")
    ]


def test_one_failed_warm_up_call_does_not_open_when_the_other_succeeds(store_factory: StoreFactory) -> None:
    clock = FakeClock()
    breaker = make_breaker(store_factory(), clock, replace(POLICY, warm_up_calls=2))
    lent = [breaker.acquire("anthropic") for _ in range(2)]
    breaker.record(lent[0], success=False)  # one unlucky timeout
    breaker.record(lent[1], success=True)
    snapshot = breaker.snapshot()["anthropic"]
    assert (snapshot.state, snapshot.warming) == ("closed", False)
    # proven now: it takes the full failure threshold to open it
    for _ in range(POLICY.failure_threshold - 1):
        fail(breaker)
    assert breaker.state("anthropic") == "closed"
    fail(breaker)
    assert breaker.state("anthropic") == "open"


def test_the_first_success_proves_the_provider_and_brings_back_the_io_free_grant() -> None:
    clock, store = FakeClock(), CountingStore()
    breaker = make_breaker(store, clock)
    lent = [breaker.acquire("anthropic") for _ in range(POLICY.warm_up_budget)]
    breaker.record(lent[0], success=True)
    assert not breaker.snapshot()["anthropic"].warming
    reads, updates = store.reads, store.updates
    granted = [breaker.acquire("anthropic") for _ in range(3 * POLICY.failure_threshold)]
    assert all(p.probe_token is None for p in granted)
    assert (store.reads, store.updates) == (reads, updates)
    for permit in lent[1:]:  # the other warm-up calls come back fine: nothing changes
        breaker.record(permit, success=True)
    assert breaker.snapshot()["anthropic"].probes_in_flight == 0


def test_a_lost_warm_up_call_frees_its_slot_when_its_lease_expires(store_factory: StoreFactory) -> None:
    clock = FakeClock()
    breaker = make_breaker(store_factory(), clock)
    for _ in range(POLICY.warm_up_budget):
        breaker.acquire("anthropic")  # their process dies: never recorded, never released
    with pytest.raises(ProviderWarmingError) as denied:
        breaker.acquire("anthropic")
    assert denied.value.reopens_at == clock() + POLICY.probe_lease_seconds
    clock.advance(POLICY.probe_lease_seconds + 0.001)
    assert breaker.acquire("anthropic").probe_token is not None


def test_release_hands_back_a_warm_up_lease(store_factory: StoreFactory) -> None:
    clock = FakeClock()
    breaker = make_breaker(store_factory(), clock)
    lent = [breaker.acquire("anthropic") for _ in range(POLICY.warm_up_budget)]
    breaker.release(lent[0])  # e.g. a 401: says nothing about health
    assert breaker.acquire("anthropic").probe_token is not None
    assert breaker.snapshot()["anthropic"].warming


def test_last_resort_lets_a_call_through_over_the_warm_up_budget_but_not_past_an_open_breaker() -> None:
    clock = FakeClock()
    breaker = make_breaker(MemoryBreakerStore(), clock)
    lent = [breaker.acquire("anthropic") for _ in range(POLICY.warm_up_budget)]
    extra = breaker.acquire("anthropic", last_resort=True)
    assert extra.state == "closed" and extra.probe_token is None
    breaker.record(extra, success=True)  # its outcome counts like any other: proven
    assert not breaker.snapshot()["anthropic"].warming
    del lent
    open_breaker(breaker, "openai")
    with pytest.raises(BreakerOpenError) as denied:
        breaker.acquire("openai", last_resort=True)
    assert not isinstance(denied.value, ProviderWarmingError)


def test_a_provider_idle_for_a_whole_window_warms_up_again() -> None:
    clock = FakeClock()
    breaker = make_breaker(MemoryBreakerStore(), clock)
    succeed(breaker)
    assert not breaker.snapshot()["anthropic"].warming
    clock.advance(POLICY.window_seconds + 2 * POLICY.bucket_seconds)
    assert breaker.snapshot()["anthropic"].warming
    for _ in range(POLICY.warm_up_budget):
        assert breaker.acquire("anthropic").probe_token is not None
    with pytest.raises(ProviderWarmingError):
        breaker.acquire("anthropic")


def test_a_recovered_provider_is_proven_by_its_probe(store_factory: StoreFactory) -> None:
    clock = FakeClock()
    breaker = make_breaker(store_factory(), clock)
    open_breaker(breaker)
    clock.advance(POLICY.cooldown_seconds)
    breaker.record(breaker.acquire("anthropic"), success=True)
    snapshot = breaker.snapshot()["anthropic"]
    assert (snapshot.state, snapshot.warming) == ("closed", False)
    assert breaker.acquire("anthropic").probe_token is None


# ------------------------------------------------------------------------------ cache / write economy


class CountingStore(MemoryBreakerStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.updates = 0

    def read(self, provider: str) -> BreakerRecord:
        self.reads += 1
        return super().read(provider)

    def update(self, provider: str, change: Any) -> Any:
        self.updates += 1
        return super().update(provider, change)


def test_successes_in_a_healthy_closed_breaker_touch_the_store_once_per_ttl() -> None:
    clock, store = FakeClock(), CountingStore()
    breaker = make_breaker(store, clock)
    succeed(breaker)  # warm-up: the first call takes a lease and its success proves the provider
    assert (store.reads, store.updates) == (1, 2)
    store.reads = store.updates = 0
    for _ in range(100):
        succeed(breaker)
    assert (store.reads, store.updates) == (0, 0)
    clock.advance(1.5)  # cache expired: the next success writes the buffered ones with it
    succeed(breaker)
    assert store.updates == 1
    assert breaker.snapshot()["anthropic"].window_calls == 102
    for _ in range(10):
        succeed(breaker)
    fail(breaker)  # a failure is written at once, with the 10 buffered successes before it
    snapshot = breaker.snapshot()["anthropic"]
    assert (snapshot.window_calls, snapshot.window_failures, snapshot.consecutive_failures) == (113, 1, 1)
    updates = store.updates
    succeed(breaker)  # a failure is in the window: successes are written now (they reset the streak)
    assert store.updates == updates + 1
    assert breaker.snapshot()["anthropic"].consecutive_failures == 0


def test_another_process_opening_the_breaker_is_seen_within_the_ttl() -> None:
    clock, store = FakeClock(), MemoryBreakerStore()
    here, there = make_breaker(store, clock), make_breaker(store, clock)
    succeed(here)
    open_breaker(there)
    here.acquire("anthropic")  # the cached closed state is trusted for up to cache_ttl_seconds
    clock.advance(1.0)
    with pytest.raises(BreakerOpenError):
        here.acquire("anthropic")


def test_a_process_that_saw_the_provider_fail_rereads_the_store_before_calling_again() -> None:
    clock, store = FakeClock(), MemoryBreakerStore()
    here, there = make_breaker(store, clock), make_breaker(store, clock)
    fail(here)  # here's cached record is closed with a failure streak
    for _ in range(POLICY.failure_threshold - 1):
        fail(there)  # ... and there's failures complete it: open
    assert there.state("anthropic") == "open"
    with pytest.raises(BreakerOpenError):  # no TTL of grace: a failing provider is re-checked every time
        here.acquire("anthropic")


def test_a_streak_cleared_by_a_success_brings_back_the_io_free_grant() -> None:
    clock, store = FakeClock(), CountingStore()
    breaker = make_breaker(store, clock)
    fail(breaker)
    reads = store.reads
    breaker.acquire("anthropic")
    assert store.reads == reads + 1  # streak: read
    succeed(breaker)
    reads = store.reads
    for _ in range(10):
        breaker.acquire("anthropic")
    assert store.reads == reads


def test_outcomes_of_permits_older_than_the_cached_record_are_not_written() -> None:
    clock, store = FakeClock(), CountingStore()
    breaker = make_breaker(store, clock)
    succeed(breaker)  # proven (a warming provider would not lend more than threshold calls at once)
    store.updates = 0
    in_flight = [breaker.acquire("anthropic") for _ in range(POLICY.failure_threshold + 4)]
    for permit in in_flight:  # they all fail together; the threshold-th one opens the breaker
        breaker.record(permit, success=False)
    assert store.updates == POLICY.failure_threshold
    snapshot = breaker.snapshot()["anthropic"]
    assert (snapshot.state, snapshot.consecutive_failures) == ("open", 0)


class BrokenStore(MemoryBreakerStore):
    def read(self, provider: str) -> BreakerRecord:
        raise OSError("disk I/O error")

    def update(self, provider: str, change: Any) -> Any:
        raise OSError("disk I/O error")


def test_a_failing_store_fails_open() -> None:
    breaker = make_breaker(BrokenStore(), FakeClock())
    permit = breaker.acquire("anthropic")
    assert permit.state == "closed"
    breaker.record(permit, success=False)
    breaker.release(permit)


def test_snapshot_reports_every_provider() -> None:
    clock = FakeClock()
    breaker = make_breaker(MemoryBreakerStore(), clock)
    open_breaker(breaker, "anthropic")
    fail(breaker, "openai")
    clock.advance(10.0)
    snap = breaker.snapshot()
    assert snap["anthropic"].state == "open" and snap["anthropic"].reopens_in_seconds == pytest.approx(20.0)
    assert snap["openai"].state == "closed" and snap["openai"].window_failures == 1
    assert snap["openai"].reopens_in_seconds == 0.0


def test_breakers_with_different_identities_on_one_store_never_share_a_record() -> None:
    store, clock = MemoryBreakerStore(), FakeClock()
    drill = CircuitBreaker(store, POLICY, clock=clock, identities={"anthropic": "anthropic@simulated:http://sim"})
    live = CircuitBreaker(store, POLICY, clock=clock, identities={"anthropic": "anthropic@live:https://api"})
    open_breaker(drill, "anthropic")
    assert live.state("anthropic") == "closed"
    live.acquire("anthropic")
    assert set(drill.snapshot()) == set(live.snapshot()) == {"anthropic"}  # each sees only its own
    assert drill.snapshot()["anthropic"].state == "open"


def test_a_parked_provider_is_denied_until_its_time_without_opening_or_counting(
    store_factory: StoreFactory,
) -> None:
    clock = FakeClock()
    breaker = make_breaker(store_factory(), clock)
    permit = breaker.acquire("gemini")
    breaker.park(permit, 3600.0, "daily_quota_exhausted")
    other = make_breaker(store_factory(), clock)  # another process
    with pytest.raises(ProviderParkedError) as parked:
        other.acquire("gemini")
    assert parked.value.error_code == "daily_quota_exhausted"
    assert parked.value.reopens_at == pytest.approx(clock() + 3600.0)
    record = other.store.read("gemini")
    assert (record.state, record.consecutive_failures, record.probes) == ("closed", 0, ())  # lease freed
    clock.advance(3601.0)
    assert other.acquire("gemini").state == "closed"


# ------------------------------------------------------------------------------------- plumbing


def test_record_json_round_trip() -> None:
    record = BreakerRecord(
        state="half_open",
        generation=7,
        consecutive_failures=2,
        window=((10, 3, 1), (11, 2, 2)),
        opened_at=5.0,
        reopens_at=35.0,
        probes=((4, 135.0),),
        next_probe_token=5,
    )
    assert BreakerRecord.from_json(record.to_json()) == record


def test_store_from_url(tmp_path: Path) -> None:
    store = BreakerStore.from_url(f"sqlite:///{tmp_path}/b.sqlite")
    assert isinstance(store, SQLiteBreakerStore) and store.path == tmp_path / "b.sqlite"
    relative = BreakerStore.from_url("sqlite:///var/b.sqlite")
    assert isinstance(relative, SQLiteBreakerStore) and str(relative.path) == "var/b.sqlite"
    pg = BreakerStore.from_url("postgresql://postgres@127.0.0.1:5432/x")
    assert isinstance(pg, PostgresBreakerStore) and pg.table == "cineforge_breakers"
    assert isinstance(BreakerStore.from_url("memory://"), MemoryBreakerStore)
    for bad in ("sqlite:///:memory:", "redis://localhost", "sqlite://"):
        with pytest.raises(ValueError):
            BreakerStore.from_url(bad)
    with pytest.raises(ValueError):
        PostgresBreakerStore("postgresql://x", table="breakers; DROP TABLE users")
    assert default_store_url(tmp_path) == f"sqlite:///{tmp_path.resolve()}/cineforge_breakers.sqlite"


def test_policy_validation() -> None:
    for bad in (
        {"failure_threshold": 0},
        {"failure_rate_threshold": 0.0},
        {"failure_rate_threshold": 1.5},
        {"min_calls_in_window": 0},
        {"half_open_max_probes": 0},
        {"window_seconds": 0},
    ):
        with pytest.raises(ValueError):
            BreakerPolicy(**bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- concurrency across processes

HAMMER_POLICY = BreakerPolicy(
    failure_threshold=10**9,
    warm_up_calls=10**9,
    min_calls_in_window=10**9,
    window_seconds=3600.0,
    half_open_max_probes=2,
    probe_lease_seconds=3600.0,
    cache_ttl_seconds=0.0,
)


def _seed_half_open_due(store: BreakerStore) -> None:
    """Leave 'anthropic' open with its cooldown already over, so the next acquires race for probes."""
    now = time.time()
    store.update(
        "anthropic",
        lambda _: (BreakerRecord(state="open", generation=1, opened_at=now - 60, reopens_at=now - 1), None),
    )


def _hammer(store: BreakerStore, start: Any, calls: int) -> tuple[int, int]:
    """Race for probes on 'anthropic' and record failures on 'openai'; return (probes won, denials)."""
    breaker = CircuitBreaker(store, HAMMER_POLICY)  # real clock: no timing is asserted
    start.wait()
    won = denied = 0
    for _ in range(calls):
        try:
            permit: Permit = breaker.acquire("anthropic")
            assert permit.is_probe
            won += 1
        except BreakerOpenError:
            denied += 1
        breaker.record(breaker.acquire("openai"), success=False)
    return won, denied


def _race_in_processes(target: Callable[..., None], path: str, calls: int, *, processes: int) -> list[tuple[int, int]]:
    """Start ``processes`` spawned ``target(path, start, calls, results)``, release them together, and
    return what each put on ``results``; every process must exit cleanly."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=target, args=(path, start, calls, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return outcomes


def _hammer_sqlite_process(path: str, start: Any, calls: int, results: Any) -> None:
    store = SQLiteBreakerStore(path)
    results.put(_hammer(store, start, calls))
    store.close()


@pytest.mark.slow
def test_sqlite_store_is_safe_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "breakers.sqlite")
    seed = SQLiteBreakerStore(path)
    _seed_half_open_due(seed)
    calls = 150
    outcomes = _race_in_processes(_hammer_sqlite_process, path, calls, processes=2)
    assert sum(won for won, _ in outcomes) == HAMMER_POLICY.half_open_max_probes
    assert sum(won + denied for won, denied in outcomes) == 2 * calls
    openai = seed.read("openai")
    assert openai.consecutive_failures == 2 * calls  # no lost update
    assert sum(f for _, _, f in openai.window) == 2 * calls
    assert seed.read("anthropic").state == "half_open"
    seed.close()


WARM_UP_POLICY = BreakerPolicy(
    failure_threshold=5, warm_up_calls=4, probe_lease_seconds=3600.0, cache_ttl_seconds=0.0
)


def _race_for_warm_up_sqlite_process(path: str, start: Any, calls: int, results: Any) -> None:
    """Take warm-up leases on a cold 'anthropic' and never hand them back; report (won, denied)."""
    store = SQLiteBreakerStore(path)
    breaker = CircuitBreaker(store, WARM_UP_POLICY)  # real clock: no timing is asserted
    start.wait()
    won = denied = 0
    for _ in range(calls):
        try:
            assert breaker.acquire("anthropic").probe_token is not None
            won += 1
        except ProviderWarmingError:
            denied += 1
    results.put((won, denied))
    store.close()


@pytest.mark.slow
def test_the_warm_up_budget_holds_across_processes_with_the_sqlite_store(tmp_path: Path) -> None:
    path = str(tmp_path / "breakers.sqlite")
    calls = 40
    outcomes = _race_in_processes(_race_for_warm_up_sqlite_process, path, calls, processes=3)
    assert sum(won for won, _ in outcomes) == WARM_UP_POLICY.warm_up_budget
    assert sum(won + denied for won, denied in outcomes) == 3 * calls
    seed = SQLiteBreakerStore(path)
    record = seed.read("anthropic")
    assert (record.state, len(record.probes)) == ("closed", WARM_UP_POLICY.warm_up_budget)
    seed.close()


@pytest.mark.services
def test_postgres_store_is_safe_across_connections(pg_dsn: str) -> None:
    seed = PostgresBreakerStore(pg_dsn)
    _seed_half_open_due(seed)
    start = threading.Event()
    outcomes: list[tuple[int, int]] = []
    calls = 60

    def worker() -> None:
        store = PostgresBreakerStore(pg_dsn)  # own connection, as another process would have
        outcomes.append(_hammer(store, start, calls))
        store.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == 3
    assert sum(won for won, _ in outcomes) == HAMMER_POLICY.half_open_max_probes
    assert seed.read("openai").consecutive_failures == 3 * calls
    seed.close()


# ------------------------------------------------------------------- one clock for a fleet: the database's

SKEW_POLICY = BreakerPolicy(
    failure_threshold=2, warm_up_calls=2, cooldown_seconds=30.0, half_open_max_probes=1, probe_lease_seconds=120.0
)
# Three hosts' clocks: 45 s fast, 10 minutes slow, more than a probe lease (120 s) fast.
HOST_SKEWS = {"fast": 45.0, "slow": -600.0, "very_fast": 150.0}


def skewed_hosts(dsn: str) -> dict[str, CircuitBreaker]:
    """One breaker per host (fresh, as each Dagster step is a fresh process), each on its own skewed clock."""
    return {
        name: CircuitBreaker(
            PostgresBreakerStore(dsn), SKEW_POLICY, clock=lambda skew=skew: time.time() + skew  # type: ignore[misc]
        )
        for name, skew in HOST_SKEWS.items()
    }


def close_all(hosts: dict[str, CircuitBreaker]) -> None:
    for breaker in hosts.values():
        breaker.store.close()


def let_the_cooldown_elapse(dsn: str, provider: str) -> None:
    """Move the stored record's times back past its cooldown, instead of sleeping through it."""
    store = PostgresBreakerStore(dsn, database_clock=False)
    shift = SKEW_POLICY.cooldown_seconds + 1
    store.update(
        provider,
        lambda r: (
            replace(r, opened_at=(r.opened_at or 0) - shift, reopens_at=(r.reopens_at or 0) - shift),
            None,
        ),
    )
    store.close()


def probes_granted(hosts: dict[str, CircuitBreaker], order: list[str]) -> list[tuple[str, Permit]]:
    granted = []
    for name in order:
        for _ in range(2):
            with contextlib.suppress(BreakerOpenError):
                granted.append((name, hosts[name].acquire("anthropic")))
    return granted


@pytest.mark.services
def test_the_adaptive_open_period_runs_on_the_database_clock(pg_dsn: str) -> None:
    """PostgreSQL's ``clock_timestamp()`` times the open periods: 5 s after the warm-up failed, x2 after a
    failed probe, whatever the hosts' clocks say."""
    policy = replace(SKEW_POLICY, first_cooldown_seconds=5.0, cooldown_multiplier=2.0)
    hosts = {
        name: CircuitBreaker(PostgresBreakerStore(pg_dsn), policy, clock=lambda skew=skew: time.time() + skew)  # type: ignore[misc]
        for name, skew in HOST_SKEWS.items()
    }
    reader = PostgresBreakerStore(pg_dsn, database_clock=False)

    def open_period() -> float:
        record = reader.read("anthropic")
        assert record.state == "open" and record.reopens_at is not None and record.opened_at is not None
        return record.reopens_at - record.opened_at

    for _ in range(policy.warm_up_budget):
        hosts["slow"].record(hosts["slow"].acquire("anthropic"), success=False)
    assert open_period() == pytest.approx(5.0)
    reader.update(  # the open period elapses (moved back in time, not slept through)
        "anthropic", lambda r: (replace(r, opened_at=(r.opened_at or 0) - 6, reopens_at=(r.reopens_at or 0) - 6), None)
    )
    probe = hosts["very_fast"].acquire("anthropic")
    assert probe.is_probe
    assert probes_granted(hosts, ["slow", "fast"]) == []  # one probe fleet-wide
    hosts["very_fast"].record(probe, success=False)
    assert open_period() == pytest.approx(10.0)
    reader.close()
    close_all(hosts)


@pytest.mark.services
def test_skewed_host_clocks_get_one_probe_per_cooldown_fleet_wide_on_postgres(pg_dsn: str) -> None:
    hosts = skewed_hosts(pg_dsn)
    for _ in range(SKEW_POLICY.warm_up_budget):  # the slow host sees the warm-up calls fail: open
        hosts["slow"].record(hosts["slow"].acquire("anthropic"), success=False)
    assert hosts["slow"].state("anthropic") == "open"

    # Within the cooldown nobody gets a permit, and each host is told a wait within the cooldown, on its clock.
    for name, breaker in hosts.items():
        with pytest.raises(BreakerOpenError) as denied:
            breaker.acquire("anthropic")
        wait = denied.value.reopens_at - breaker._clock()
        assert 0 < wait <= SKEW_POLICY.cooldown_seconds + 1, (name, wait)
    close_all(hosts)

    for _ in range(2):  # two cooldowns: each lets exactly one probe through, fleet-wide
        let_the_cooldown_elapse(pg_dsn, "anthropic")
        hosts = skewed_hosts(pg_dsn)
        granted = probes_granted(hosts, ["slow", "fast", "very_fast"])
        assert [(name, permit.is_probe) for name, permit in granted] == [("slow", True)]
        name, probe = granted[0]
        hosts[name].record(probe, success=False)  # still down: a new open period
        assert hosts["very_fast"].state("anthropic") == "open"
        assert probes_granted(hosts, ["very_fast", "fast"]) == []
        close_all(hosts)


# ----------------------------------------------------------------- brownout: degraded is not down


def run_traffic(
    breaker: CircuitBreaker, clock: FakeClock, failure_ratio: float, seconds: float, rng: random.Random
) -> int:
    """Calls at 100 per second, each failing with ``failure_ratio`` (drawn from ``rng``) until the breaker
    denies one; how many calls were made."""
    calls = 0
    for _ in range(int(seconds * 100)):
        try:
            permit = breaker.acquire("anthropic")
        except BreakerOpenError:
            return calls
        breaker.record(permit, success=rng.random() >= failure_ratio)
        calls += 1
        clock.advance(0.01)
    return calls


def test_a_30_percent_brownout_never_opens_the_breaker_once_the_window_shows_it() -> None:
    # Issue 18: at 100 calls/s, 30 % random failures give 5 in a row every few seconds; the provider
    # still serves 70 % of calls, so shutting it off fails requests nobody had to fail. Only in the
    # brownout's first second can a streak not be told from an outage (the window holds no failure
    # yet), so across 100 seeded runs it may open there, rarely, and never later.
    opened_after: list[int] = []
    for seed in range(100):
        clock, rng = FakeClock(), random.Random(seed)
        breaker = make_breaker(MemoryBreakerStore(), clock, BreakerPolicy())
        run_traffic(breaker, clock, 0.0, 10.0, rng)
        calls = run_traffic(breaker, clock, 0.3, 30.0, rng)
        if calls < 3000:
            opened_after.append(calls)
    assert all(calls < 100 for calls in opened_after), opened_after
    assert len(opened_after) <= 10, opened_after


@pytest.mark.parametrize("earlier_failure", [False, True])
def test_a_full_outage_still_opens_after_failure_threshold_calls(earlier_failure: bool) -> None:
    clock, listener = FakeClock(), RecordingListener()
    breaker = make_breaker(MemoryBreakerStore(), clock, BreakerPolicy(), listener)
    if earlier_failure:  # one stray failure among healthy calls is no brownout
        fail(breaker)
    run_traffic(breaker, clock, 0.0, 1.0, random.Random(0))
    for _ in range(4):
        fail(breaker)
    assert breaker.state("anthropic") == "closed"
    fail(breaker)
    assert breaker.state("anthropic") == "open"
    assert [t.reason for t in listener.transitions] == ["consecutive_failures"]


def test_a_60_percent_failure_ratio_over_the_minimum_calls_opens_the_breaker() -> None:
    clock, listener = FakeClock(), RecordingListener()
    breaker = make_breaker(MemoryBreakerStore(), clock, BreakerPolicy(), listener)  # 10 calls minimum, 50 %
    outcomes = "SFFSFSFFS"  # 9 calls, 5 failures, never 5 in a row
    for outcome in outcomes:
        (succeed if outcome == "S" else fail)(breaker)
        clock.advance(0.01)
    assert breaker.state("anthropic") == "closed"
    fail(breaker)  # 10 calls, 6 failures: 60 %
    assert breaker.state("anthropic") == "open"
    assert [t.reason for t in listener.transitions] == ["failure_rate"]


def test_a_degraded_provider_that_goes_down_opens_after_a_streak_chance_would_not_explain() -> None:
    clock, listener = FakeClock(), RecordingListener()
    breaker = make_breaker(MemoryBreakerStore(), clock, BreakerPolicy(), listener)
    for _ in range(50):  # 100 calls, 30 % failed, no streak
        for outcome in "SSFSSFSSFS":
            (succeed if outcome == "S" else fail)(breaker)
        clock.advance(0.1)
    streak = 0
    while breaker.state("anthropic") == "closed" and streak < 30:
        fail(breaker)
        streak += 1
    # 30 % of ~100 calls: upper bound ~0.39, and 0.39 ** 14 ~ 2e-6, 0.39 ** 15 < 1e-6; never the 5 of an
    # outage after healthy calls, which a 30 % brownout produces every few hundred calls.
    assert 10 < streak <= 15
    assert [t.reason for t in listener.transitions] == ["consecutive_failures"]


@pytest.mark.parametrize(
    ("window", "streak", "needed"),
    [
        (((0, 95, 0), (1, 5, 5)), 5, 5),  # healthy until the streak: the outage fast path
        (((0, 12, 7),), 5, 5),  # too few calls besides the streak to call it degraded
        (((0, 100, 30), (1, 105, 35)), 5, 15),  # 30 % of 100 before: bound ~0.39; 0.39 ** 15 <= 1e-6
        (((0, 100, 1), (1, 105, 5)), 5, 5),  # no earlier failure in the newest 100 calls
        (((0, 1000, 0), (1, 105, 35)), 5, 15),  # a brownout that just began is not diluted by a healthy past
        (((0, 1000, 300), (1, 16, 5)), 5, 13),  # a young bucket is too small a sample: the one before counts
    ],
)
def test_streak_to_open_grows_with_the_recent_failure_ratio(
    window: tuple[tuple[int, int, int], ...], streak: int, needed: int
) -> None:
    assert streak_to_open(window, streak, BreakerPolicy()) == needed


def test_a_zero_streak_chance_limit_leaves_a_degraded_provider_to_the_failure_rate() -> None:
    assert streak_to_open(((0, 1005, 305),), 5, BreakerPolicy(streak_chance_limit=0.0)) is None
