"""Issue 18 item 3: after an outage, traffic returns to the primary within one cooldown of its recovery, and while
it is down the fleet sends it at most one probe per cooldown (two "processes": two breakers on one SQLite file)."""

from __future__ import annotations

import random
from pathlib import Path

from resources.providers.base import CompletionRequest
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import SQLiteBreakerStore
from resources.resilience.chain import StagePolicy
from resources.resilience.executor import ResilientCaller
from resources.resilience.retry_budget import MemoryBudgetStore, RetryBudget
from tests.resources.resilience.fakes import EPOCH, FakeAdapter, FakeClock, anthropic_error

GOOD = '{"ok": true}'
REQUEST = CompletionRequest(system="s", prompt="p", stage="normalize")
OUTAGE_S = 20.0
COOLDOWN_S = 30.0
THRESHOLD = 5


def test_back_on_the_primary_within_one_cooldown_and_one_probe_per_cooldown(tmp_path: Path) -> None:
    clock = FakeClock()

    def primary(model: str, request: CompletionRequest) -> str:
        if clock() - EPOCH < OUTAGE_S:
            raise anthropic_error(529, "overloaded_error", "Overloaded")
        return GOOD

    anthropic = FakeAdapter("anthropic", primary, clock, latency=0.2)
    openai = FakeAdapter("openai", lambda model, request: GOOD, clock, latency=0.2)
    policy = BreakerPolicy(failure_threshold=THRESHOLD, cooldown_seconds=COOLDOWN_S)
    budget = RetryBudget(MemoryBudgetStore(), clock=clock)
    callers = [
        ResilientCaller(
            {"anthropic": anthropic, "openai": openai},
            CircuitBreaker(SQLiteBreakerStore(tmp_path / "breakers.sqlite"), policy, clock=clock),
            policy=StagePolicy(attempts_per_model=1),
            chains={"normalize": ["claude-sonnet-4-6", "gpt-4.1"]},
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(5),
            retry_budget=budget,
        )
        for _process in range(2)
    ]
    served: list[tuple[float, str]] = []
    calls_to_primary_in_outage = 0
    n = 0
    while clock() - EPOCH < 90.0:
        before = len(anthropic.calls)
        started = clock() - EPOCH
        outcome = callers[n % 2].call("normalize", REQUEST, lambda text: text)
        if started < OUTAGE_S:
            calls_to_primary_in_outage += len(anthropic.calls) - before
        served.append((started, outcome.provider))
        clock.advance(0.05)
        n += 1

    # While down: the warm-up calls (the breaker's cold start) and no probe, as the cooldown outlasts the outage.
    assert calls_to_primary_in_outage <= THRESHOLD + 1
    back_at = next(t for t, provider in served if t >= OUTAGE_S and provider == "anthropic")
    assert back_at - OUTAGE_S <= COOLDOWN_S
    # Once back, everything after is served by the primary: no flapping, no request left on the fallback.
    assert {provider for t, provider in served if t > back_at} == {"anthropic"}
    for caller in callers:
        caller.breakers.store.close()


def test_a_long_outage_sees_one_probe_per_open_period_each_longer_up_to_the_cooldown(tmp_path: Path) -> None:
    """Primary down for 100 s: after it opens, the two processes together probe it once per open period, and
    each period is longer than the last (x1.5 from 5 s) up to the cooldown."""
    clock = FakeClock()
    anthropic = FakeAdapter(
        "anthropic", lambda model, request: (_ for _ in ()).throw(anthropic_error(529, "overloaded_error", "x")), clock
    )
    openai = FakeAdapter("openai", lambda model, request: GOOD, clock, latency=0.2)
    policy = BreakerPolicy(failure_threshold=THRESHOLD, cooldown_seconds=COOLDOWN_S)
    callers = [
        ResilientCaller(
            {"anthropic": anthropic, "openai": openai},
            CircuitBreaker(SQLiteBreakerStore(tmp_path / "breakers.sqlite"), policy, clock=clock),
            chains={"normalize": ["claude-sonnet-4-6", "gpt-4.1"]},
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(5),
        )
        for _process in range(2)
    ]
    arrivals: list[float] = []
    n = 0
    while clock() - EPOCH < 100.0:
        before = len(anthropic.calls)
        at = clock() - EPOCH
        callers[n % 2].call("normalize", REQUEST, lambda text: text)
        arrivals += [at] * (len(anthropic.calls) - before)
        clock.advance(0.1)
        n += 1
    opened_at = arrivals[: policy.warm_up_budget][-1]
    probes = [t for t in arrivals if t > opened_at]
    assert probes, "the breaker never probed the primary again"
    # One probe per open period: 5, 7.5, 11.25, ... s apart (the warm-up opens it after 2 calls), never
    # more than the cooldown apart (plus the probe's own 0.5 s call, the fallback's 0.2 s and the 0.1 s
    # between requests).
    periods = [policy.open_period(None)]
    while len(periods) < len(probes):
        periods.append(policy.open_period(periods[-1]))
    gaps = [b - a for a, b in zip([opened_at, *probes], probes, strict=False)]
    assert all(period <= gap <= period + 1.0 for gap, period in zip(gaps, periods, strict=True)), (gaps, periods)
    assert len(probes) >= 4 and max(periods) <= COOLDOWN_S
    for caller in callers:
        caller.breakers.store.close()
