"""The fleet-wide retry budget: pure window arithmetic, its stores (SQLite, real PostgreSQL), and the executor
falling through to the next provider instead of retrying a provider whose budget the fleet spent."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from resources.providers.base import CompletionRequest
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import MemoryBreakerStore
from resources.resilience.chain import StagePolicy
from resources.resilience.errors import ProviderError
from resources.resilience.executor import ResilientCaller
from resources.resilience.retry_budget import (
    RETRY_BUDGET_EXHAUSTED,
    BudgetRecord,
    BudgetStore,
    MemoryBudgetStore,
    PostgresBudgetStore,
    RetryBudget,
    RetryBudgetPolicy,
    SQLiteBudgetStore,
    allowance,
    budget_store_from_url,
    spend_extra_call,
)
from tests.resources.resilience.fakes import FakeAdapter, FakeClock, always, answers, anthropic_error, sequence
from tests.resources.resilience.test_breaker import pg_dsn  # noqa: F401  (fixture)

POLICY = RetryBudgetPolicy(ratio=0.2, min_per_window=3, window_seconds=10.0, flush_seconds=1.0)
GOOD = '{"ok": true}'
REQUEST = CompletionRequest(system="s", prompt="p", stage="normalize")


def server_error() -> ProviderError:
    return anthropic_error(500, "api_error", "Internal server error")


def parse_ok(text: str) -> dict[str, bool]:
    return dict(json.loads(text))


# ------------------------------------------------------------------------------------------ pure rules


def test_allowance_is_a_share_of_first_attempts_with_a_floor() -> None:
    assert allowance(0, POLICY) == 3
    assert allowance(14, POLICY) == 3  # 2.8 -> the floor
    assert allowance(100, POLICY) == 20


def test_spend_counts_pending_first_attempts_and_denies_over_the_share() -> None:
    now = 1_000.0
    record, spend = spend_extra_call(BudgetRecord(), "anthropic", {1000: 50}, now, POLICY)
    assert spend.allowed and spend.allowance == 10
    for _ in range(9):
        record, spend = spend_extra_call(record, "anthropic", {}, now, POLICY)
        assert spend.allowed
    record, spend = spend_extra_call(record, "anthropic", {}, now, POLICY)
    assert not spend.allowed and spend.extra_calls == 10
    # Another provider's budget is its own.
    _, other = spend_extra_call(record, "openai", {}, now, POLICY)
    assert other.allowed


def test_the_window_slides_old_extra_calls_out() -> None:
    record = BudgetRecord()
    for _ in range(3):
        record, spend = spend_extra_call(record, "anthropic", {}, 1_000.0, POLICY)
    _, spend = spend_extra_call(record, "anthropic", {}, 1_005.0, POLICY)
    assert not spend.allowed
    _, spend = spend_extra_call(record, "anthropic", {}, 1_010.5, POLICY)
    assert spend.allowed  # the first three are out of the 10 s window


def test_record_round_trips_through_json() -> None:
    record, _ = spend_extra_call(BudgetRecord(), "openai", {1000: 7}, 1_000.0, POLICY)
    assert BudgetRecord.from_json(record.to_json()) == record


# ------------------------------------------------------------------------------------------ the budget


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def two_handles(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[BudgetStore, BudgetStore]]:
    """Two store handles on one backing state, as two processes (or hosts) would hold them."""
    if request.param == "memory":
        shared = MemoryBudgetStore()
        yield shared, shared
        return
    if request.param == "sqlite":
        stores: tuple[BudgetStore, BudgetStore] = (
            SQLiteBudgetStore(tmp_path / "b.sqlite"),
            SQLiteBudgetStore(tmp_path / "b.sqlite"),
        )
    else:
        dsn = request.getfixturevalue("pg_dsn")
        stores = (PostgresBudgetStore(dsn), PostgresBudgetStore(dsn))
    try:
        yield stores
    finally:
        for store in stores:
            store.close()


def test_two_processes_share_one_budget(two_handles: tuple[BudgetStore, BudgetStore]) -> None:
    clock = FakeClock()
    first, second = (RetryBudget(store, POLICY, scope="sim", clock=clock) for store in two_handles)
    for _ in range(20):
        first.note_first_attempt()
    for _ in range(20):
        second.note_first_attempt()
    clock.advance(0.1)
    # 40 first attempts fleet-wide -> 8 extra calls for anthropic, taken by both processes together.
    granted = [handle.try_extra_call("anthropic") for handle in (first, second) * 5]
    assert granted == [True] * 8 + [False] * 2
    assert first.try_extra_call("openai")


def test_first_attempts_are_written_at_most_once_per_flush_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteBudgetStore(tmp_path / "b.sqlite")
    budget = RetryBudget(store, POLICY, scope="sim", clock=clock)
    budget.note_first_attempt()
    budget.note_first_attempt()
    assert store.read("sim").first == ()  # counted in process only
    clock.advance(1.0)
    budget.note_first_attempt()
    assert sum(n for _, n in store.read("sim").first) == 3
    store.close()


def test_store_url_builds_the_table_beside_the_breakers(tmp_path: Path) -> None:
    store = budget_store_from_url(f"sqlite:///{tmp_path / 'breakers.sqlite'}")
    assert isinstance(store, SQLiteBudgetStore)
    store.update("x", lambda record: (record, None))
    store.close()
    assert (tmp_path / "breakers.sqlite").exists()


class BrokenStore(MemoryBudgetStore):
    def update(self, scope: str, change: object) -> object:  # type: ignore[override]
        raise OSError("database is locked")


def test_a_failing_store_lets_the_call_through() -> None:
    budget = RetryBudget(BrokenStore(), POLICY, clock=FakeClock())
    assert budget.try_extra_call("anthropic")


# ------------------------------------------------------------------------------------------ the executor


def _caller(clock: FakeClock, budget: RetryBudget | None, **responders: object) -> tuple[
    ResilientCaller, dict[str, FakeAdapter]
]:
    adapters = {name: FakeAdapter(name, responder, clock) for name, responder in responders.items()}  # type: ignore[arg-type]
    breaker = CircuitBreaker(
        MemoryBreakerStore(), BreakerPolicy(failure_threshold=1000, warm_up_calls=1000), clock=clock
    )
    caller = ResilientCaller(
        dict(adapters),
        breaker,
        policy=StagePolicy(attempts_per_model=3, max_attempts=10),
        chains={"normalize": ["claude-sonnet-4-6", "gpt-4.1"]},
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        retry_budget=budget,
    )
    return caller, adapters


def test_over_budget_a_transient_failure_falls_through_without_retrying() -> None:
    clock = FakeClock()
    budget = RetryBudget(MemoryBudgetStore(), RetryBudgetPolicy(ratio=0.0, min_per_window=0), clock=clock)
    caller, adapters = _caller(clock, budget, anthropic=always(server_error), openai=answers(GOOD))
    with pytest.raises(ProviderError) as raised:
        caller.call("normalize", REQUEST, parse_ok)
    # Not one retry of the struggling provider, and (budget zero) no fallback call either.
    assert adapters["anthropic"].models_called() == ["claude-sonnet-4-6"]
    assert adapters["openai"].models_called() == []
    decisions = [(a.provider, a.decision, a.error_code) for a in raised.value.attempts]
    assert ("anthropic", "retry_budget_exhausted", RETRY_BUDGET_EXHAUSTED) in decisions
    # The budget never comes back (ratio and floor 0): the request waits for it until the stage deadline.
    assert raised.value.reason == "deadline"  # type: ignore[attr-defined]
    assert sum(clock.sleeps) < StagePolicy().deadline_seconds


def test_every_budget_spent_the_request_waits_for_the_first_providers_budget_instead_of_failing() -> None:
    """A brownout: anthropic overloaded once, openai failing; the fleet spent anthropic's extra calls. The
    request waits (jittered, telemetry ``retry_budget_exhausted`` with the wait) until the window frees
    anthropic's budget, then is served there. Before: ``chain_exhausted`` after two calls."""
    clock = FakeClock()
    policy = RetryBudgetPolicy(ratio=0.0, min_per_window=1, window_seconds=10.0)
    budget = RetryBudget(MemoryBudgetStore(), policy, clock=clock)
    assert budget.try_extra_call("anthropic")  # another worker's retry, this window
    overloaded = partial(anthropic_error, 529, "overloaded_error", "Overloaded")
    caller, adapters = _caller(clock, budget, anthropic=sequence(overloaded, GOOD), openai=always(server_error))
    started = clock()
    outcome = caller.call("normalize", REQUEST, parse_ok)
    assert outcome.provider == "anthropic"
    assert adapters["anthropic"].models_called() == ["claude-sonnet-4-6", "claude-sonnet-4-6"]
    waits = [a for a in outcome.attempts if a.decision == "retry_budget_exhausted" and a.delay_s > 0]
    assert waits and all(a.provider == "anthropic" for a in waits)
    # served once the other worker's extra call left the 10 s window, never past the deadline
    assert policy.window_seconds <= clock() - started < StagePolicy().deadline_seconds


def test_anthropic_budget_spent_its_failure_goes_to_openai_at_once() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    budget = RetryBudget(store, RetryBudgetPolicy(ratio=0.0, min_per_window=1), clock=clock)
    # Another worker of the fleet already spent anthropic's one extra call in this window.
    assert budget.try_extra_call("anthropic")
    caller, adapters = _caller(clock, budget, anthropic=always(server_error), openai=answers(GOOD))
    outcome = caller.call("normalize", REQUEST, parse_ok)
    assert outcome.provider == "openai"
    assert adapters["anthropic"].models_called() == ["claude-sonnet-4-6"]
    assert [a.decision for a in outcome.attempts] == ["retry_same_model", "retry_budget_exhausted", "success"]


def test_within_budget_retries_as_before() -> None:
    clock = FakeClock()
    budget = RetryBudget(MemoryBudgetStore(), POLICY, clock=clock)
    caller, adapters = _caller(clock, budget, anthropic=always(server_error), openai=answers(GOOD))
    outcome = caller.call("normalize", REQUEST, parse_ok)
    assert outcome.provider == "openai"
    assert len(adapters["anthropic"].models_called()) == 3  # min_per_window 3: two retries + the fallback
