"""Hedged calls: the pure rules (delay, quota), then races over real loopback HTTP against the simulator, where
the primary hangs (a ``timeout`` fault holding the answer for 30 s) and the loser's connection must be shut."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from resources.adapters.anthropic import AnthropicAdapter
from resources.adapters.gemini import GeminiAdapter
from resources.adapters.openai import OpenAIAdapter
from resources.providers.base import CompletionRequest, ProviderAdapter
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import MemoryBreakerStore
from resources.resilience.budget import BudgetCaps, MemorySpendStore, SpendLedger
from resources.resilience.chain import ModelRef, StagePolicy
from resources.resilience.errors import ProviderError
from resources.resilience.executor import CallOutcome, ResilientCaller
from resources.resilience.hedge import (
    CancellableClients,
    Entrant,
    HedgePolicy,
    HedgeQuota,
    Hedger,
    LatencyTracker,
    hedge_delay,
)
from resources.simulator import ProviderSimulator
from tests.resources.resilience.fakes import FakeClock

KEY = "sim-key-not-a-secret"
REQUEST = CompletionRequest(system="s", prompt="INT. LAB - NIGHT", stage="normalize", task="normalize")
CHAIN = ["claude-sonnet-4-6", "gpt-4.1", "gemini-2.5-pro"]


# ------------------------------------------------------------------------------------------ pure rules


def test_learned_delay_is_the_quantile_clamped() -> None:
    tracker = LatencyTracker()
    key = ("anthropic", "claude-sonnet-4-6", "normalize")
    policy = HedgePolicy(quantile=0.9, min_samples=10, min_after_seconds=0.1, max_after_seconds=2.0)
    for ms in range(1, 11):
        tracker.observe(key, ms / 10)  # 0.1 .. 1.0 s
    assert hedge_delay(policy, tracker, key) == pytest.approx(0.9)
    for _ in range(20):
        tracker.observe(key, 9.0)
    assert hedge_delay(policy, tracker, key) == 2.0  # bounded above
    assert hedge_delay(HedgePolicy(after_seconds=0.3), tracker, key) == 0.3


def test_before_the_latency_is_learned_a_call_is_hedged_at_half_its_timeout() -> None:
    tracker = LatencyTracker()
    key = ("anthropic", "claude-sonnet-4-6", "normalize")
    policy = HedgePolicy()
    assert hedge_delay(policy, tracker, key, timeout=1.0) == pytest.approx(0.5)
    # No timeout of its own: the longest delay the policy allows.
    assert hedge_delay(policy, tracker, key) == policy.max_after_seconds
    for _ in range(19):
        tracker.observe(key, 0.2)
    # 19 samples: their p95 would be their maximum, not yet a quantile worth trusting.
    assert hedge_delay(policy, tracker, key, timeout=1.0) == pytest.approx(0.5)
    tracker.observe(key, 0.2)
    # Learned: the p95 (0.2), and at least 1.1 x the median (0.2) so that a typical call is not hedged.
    assert hedge_delay(policy, tracker, key, timeout=1.0) == pytest.approx(0.22)


def test_narrow_latencies_are_hedged_only_once_a_call_is_a_tenth_slower_than_the_median() -> None:
    """p95 of calls that all take 0.200-0.210 s is a few ms above a typical one: hedging there spends the
    quota on calls about to answer, and the hung call after them waits out its timeout."""
    key = ("anthropic", "claude-sonnet-4-6", "normalize")
    narrow, wide = LatencyTracker(), LatencyTracker()
    for i in range(100):
        narrow.observe(key, 0.200 + (i % 11) / 1000)  # 0.200 .. 0.210
        wide.observe(key, 0.1 + i / 100)  # 0.1 .. 1.09: its p95 is well past 1.1 x its median
    policy = HedgePolicy()
    assert narrow.quantile(key, 0.95, 20) == pytest.approx(0.210)
    assert hedge_delay(policy, narrow, key, timeout=10.0) == pytest.approx(1.1 * 0.205)
    assert hedge_delay(policy, wide, key, timeout=10.0) == pytest.approx(wide.quantile(key, 0.95, 20))
    assert hedge_delay(HedgePolicy(over_median=1.0), narrow, key, timeout=10.0) == pytest.approx(0.210)
    with pytest.raises(ValueError):
        HedgePolicy(over_median=0.9)


def test_a_model_without_history_of_its_own_is_hedged_at_its_stage_learned_delay() -> None:
    tracker = LatencyTracker()
    sonnet = ("anthropic", "claude-sonnet-4-6", "normalize")
    for _ in range(20):
        tracker.observe(sonnet, 0.2)
    policy = HedgePolicy()
    # A fallback model (or a hedge's model) with no calls of its own yet: the stage's latencies stand in.
    assert hedge_delay(policy, tracker, ("openai", "gpt-4.1", "normalize"), timeout=1.0) == pytest.approx(0.22)
    # Another stage learned nothing: half the timeout.
    assert hedge_delay(policy, tracker, ("openai", "gpt-4.1", "scenes"), timeout=1.0) == pytest.approx(0.5)
    for _ in range(20):
        tracker.observe(("openai", "gpt-4.1", "normalize"), 0.4)
    # Its own latencies now: 1.1 x its median of 0.4 s.
    assert hedge_delay(policy, tracker, ("openai", "gpt-4.1", "normalize"), timeout=2.0) == pytest.approx(0.44)


def test_a_learned_delay_never_passes_half_the_call_timeout() -> None:
    # A process's first calls were slow (connection set-up, first imports): their latencies alone must not
    # push the delay past the timeout, where no hung call would ever be hedged.
    tracker = LatencyTracker()
    key = ("anthropic", "claude-sonnet-4-6", "normalize")
    for seconds in [1.2] * 3 + [0.2] * 20:
        tracker.observe(key, seconds)
    policy = HedgePolicy()
    assert hedge_delay(policy, tracker, key) == pytest.approx(1.2)
    assert hedge_delay(policy, tracker, key, timeout=1.0) == pytest.approx(0.5)


def test_quota_caps_hedges_to_a_share_of_calls() -> None:
    quota = HedgeQuota(0.1, burst=10)
    assert sum(quota.try_take() for _ in range(100)) == 10  # a fresh process may hedge one burst at once
    taken = 0
    for _ in range(100):
        quota.note_call()
        taken += quota.try_take()
    assert taken == 10  # then one per ten calls
    assert not quota.try_take()
    for _ in range(1000):  # a quiet spell saves up at most the burst
        quota.note_call()
    assert sum(quota.try_take() for _ in range(100)) == 10


# ------------------------------------------------------------------------------------------ races


class RecordingHedger(Hedger):
    """The real hedger; keeps the entrants it cancelled so the test can see their calls really ended."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.cancelled: list[Entrant[object]] = []

    def cancel(self, entrant: Entrant[object]) -> None:  # type: ignore[override]
        self.cancelled.append(entrant)
        super().cancel(entrant)  # type: ignore[arg-type]


def _adapter_for(sim: ProviderSimulator) -> object:
    def make(provider: str, client: httpx.Client) -> ProviderAdapter:
        if provider == "anthropic":
            return AnthropicAdapter(KEY, sim.anthropic_url, client)
        if provider == "openai":
            return OpenAIAdapter(KEY, sim.openai_url, client)
        return GeminiAdapter(KEY, sim.gemini_url, client)

    return make


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.HTTPTransport(retries=0)) as client:
        yield client


def _world(
    sim: ProviderSimulator,
    client: httpx.Client,
    *,
    policy: HedgePolicy,
    stage_policy: StagePolicy | None = None,
    breaker: CircuitBreaker | None = None,
    ledger: SpendLedger | None = None,
) -> tuple[ResilientCaller, RecordingHedger]:
    make = _adapter_for(sim)
    clients = CancellableClients(make)  # type: ignore[arg-type]
    hedger = RecordingHedger(
        policy, clients, stages=frozenset({"normalize"}), quota=HedgeQuota(1.0), tracker=LatencyTracker()
    )
    adapters = {p: make(p, client) for p in ("anthropic", "openai", "gemini")}  # type: ignore[operator]
    caller = ResilientCaller(
        adapters,  # type: ignore[arg-type]
        breaker or CircuitBreaker(MemoryBreakerStore(), BreakerPolicy(warm_up_calls=5)),
        policy=stage_policy or StagePolicy(request_timeout_seconds=20.0),
        chains={"normalize": CHAIN},
        rng=random.Random(3),
        hedger=hedger,
        ledger=ledger,
    )
    return caller, hedger


def _race(
    sim: ProviderSimulator, client: httpx.Client, profile: str, *, after: float = 0.05, timeout: float = 3.0
) -> tuple[CallOutcome, RecordingHedger]:
    """One normalize call under ``profile``, hedged after ``after`` s, each call timing out after ``timeout`` s."""
    sim.set_profile(profile)
    caller, hedger = _world(
        sim, client, policy=HedgePolicy(after_seconds=after), stage_policy=StagePolicy(request_timeout_seconds=timeout)
    )
    return caller.call("normalize", REQUEST, lambda text: text), hedger


def test_a_hung_primary_is_hedged_the_hedge_wins_and_the_primary_connection_is_shut(
    simulator: ProviderSimulator, http_client: httpx.Client
) -> None:
    simulator.set_profile("fault:kind=timeout,provider=anthropic,hold=30")
    caller, hedger = _world(simulator, http_client, policy=HedgePolicy(after_seconds=0.05))
    outcome = caller.call("normalize", REQUEST, lambda text: text)

    assert (outcome.provider, outcome.model) == ("openai", "gpt-4.1")
    assert [(a.provider, a.decision) for a in outcome.attempts] == [
        ("anthropic", "hedge_sent"),
        ("openai", "hedge_won"),
    ]
    # The hung call was cancelled, and its thread came back long before the 30 s hold: the socket was shut.
    assert len(hedger.cancelled) == 1
    error = hedger.cancelled[0].future.exception(timeout=5)
    assert isinstance(error, ProviderError) and error.provider == "anthropic"
    # The lost race says nothing about anthropic's health.
    assert caller.breakers.snapshot()["anthropic"].consecutive_failures == 0
    hedger.clients.close()


def test_a_hung_primary_is_hedged_at_half_its_timeout_before_any_latency_is_known(
    simulator: ProviderSimulator, http_client: httpx.Client
) -> None:
    simulator.set_profile("fault:kind=timeout,provider=anthropic,hold=30")
    caller, hedger = _world(
        simulator, http_client, policy=HedgePolicy(), stage_policy=StagePolicy(request_timeout_seconds=0.4)
    )
    outcome = caller.call("normalize", REQUEST, lambda text: text)
    assert outcome.provider == "openai"
    sent, won = outcome.attempts
    assert (sent.provider, sent.decision, won.decision) == ("anthropic", "hedge_sent", "hedge_won")
    assert sent.latency_s == pytest.approx(0.2)  # the delay it waited: half the 0.4 s timeout
    assert simulator.stats()["by_provider"]["anthropic"]["total"] == 1  # never waited out and retried
    hedger.clients.close()


def test_a_hedge_that_fails_while_the_primary_hangs_is_followed_by_the_next_hedge_at_once(
    simulator: ProviderSimulator, http_client: httpx.Client
) -> None:
    outcome, hedger = _race(
        simulator,
        http_client,
        "fault:kind=timeout,provider=anthropic,hold=30+fault:kind=reset,provider=openai,rate=1",
        after=0.05,
        timeout=3.0,
    )
    assert outcome.provider == "gemini"
    assert [(a.provider, a.decision, a.error_code) for a in outcome.attempts] == [
        ("anthropic", "hedge_sent", "slow_call"),
        ("openai", "skip_provider", "connection_reset"),
        ("anthropic", "hedge_sent", "slow_call"),
        ("gemini", "hedge_won", None),
    ]
    # The hung primary was not waited out (3 s) and retried: it was cancelled when gemini answered.
    assert outcome.attempts[2].latency_s is not None and outcome.attempts[2].latency_s < 1.0
    assert simulator.stats()["by_provider"]["anthropic"]["total"] == 1
    assert [e.lease.provider for e in hedger.cancelled] == ["anthropic"]
    hedger.clients.close()


def test_a_hedge_that_hangs_too_is_followed_by_the_next_hedge_after_its_own_delay(
    simulator: ProviderSimulator, http_client: httpx.Client
) -> None:
    outcome, hedger = _race(
        simulator,
        http_client,
        "fault:kind=timeout,provider=anthropic,hold=30+fault:kind=timeout,provider=openai,hold=30",
        after=0.05,
        timeout=3.0,
    )
    assert outcome.provider == "gemini"
    assert [(a.provider, a.decision, a.error_code) for a in outcome.attempts] == [
        ("anthropic", "hedge_sent", "slow_call"),
        ("anthropic", "hedge_sent", "slow_call"),  # the first hedge (openai) was late by its own 0.05 s
        ("openai", "skip_provider", "hedge_cancelled"),
        ("gemini", "hedge_won", None),
    ]
    # Both hung calls were cancelled (their connections shut) once gemini answered.
    assert sorted(e.lease.provider for e in hedger.cancelled) == ["anthropic", "openai"]
    assert {p: c["total"] for p, c in simulator.stats()["by_provider"].items()} == {
        "anthropic": 1,
        "openai": 1,
        "gemini": 1,
    }
    hedger.clients.close()


def test_a_late_hedge_is_followed_by_the_next_one_even_after_the_primary_timed_out(
    simulator: ProviderSimulator, http_client: httpx.Client
) -> None:
    # The primary times out (0.5 s) while the hedge sent at 0.3 s is out and not yet late (0.6 s).
    outcome, hedger = _race(
        simulator,
        http_client,
        "fault:kind=timeout,provider=anthropic,hold=30+fault:kind=timeout,provider=openai,hold=30",
        after=0.3,
        timeout=0.5,
    )
    assert outcome.provider == "gemini"
    assert [(a.provider, a.decision) for a in outcome.attempts] == [
        ("anthropic", "hedge_sent"),
        ("anthropic", "hedge_sent"),
        ("openai", "skip_provider"),
        ("gemini", "hedge_won"),
    ]
    # Neither hung call was waited out and retried.
    assert {p: c["total"] for p, c in simulator.stats()["by_provider"].items()} == {
        "anthropic": 1,
        "openai": 1,
        "gemini": 1,
    }
    hedger.clients.close()


def test_a_provider_whose_hedge_was_reset_may_race_again_when_nothing_else_is_left(
    simulator: ProviderSimulator, http_client: httpx.Client
) -> None:
    outcome, hedger = _race(
        simulator,
        http_client,
        "fault:kind=timeout,provider=anthropic,hold=30"
        "+fault:kind=reset,provider=openai,rate=1,hits=1"
        "+fault:kind=timeout,provider=gemini,hold=30",
        after=0.05,
        timeout=3.0,
    )
    assert outcome.provider == "openai"
    assert [(a.provider, a.decision, a.error_code) for a in outcome.attempts] == [
        ("anthropic", "hedge_sent", "slow_call"),
        ("openai", "skip_provider", "connection_reset"),
        ("anthropic", "hedge_sent", "slow_call"),  # gemini: hangs too
        ("anthropic", "hedge_sent", "slow_call"),  # openai again, on a fresh connection
        ("gemini", "skip_provider", "hedge_cancelled"),
        ("openai", "hedge_won", None),
    ]
    hedger.clients.close()


def test_a_fast_primary_is_not_hedged(simulator: ProviderSimulator, http_client: httpx.Client) -> None:
    caller, hedger = _world(simulator, http_client, policy=HedgePolicy(after_seconds=10.0))
    outcome = caller.call("normalize", REQUEST, lambda text: text)
    assert outcome.provider == "anthropic"
    assert [a.decision for a in outcome.attempts] == ["success"]
    assert simulator.stats()["by_provider"].get("openai") is None
    # Its latency was learned for the quantile rule.
    assert hedger.tracker.quantile(("anthropic", "claude-sonnet-4-6", "normalize"), 0.5, 1) is not None
    hedger.clients.close()


def test_the_latency_a_raced_call_teaches_leaves_out_its_client_set_up(
    simulator: ProviderSimulator, http_client: httpx.Client
) -> None:
    clock = FakeClock()
    make = _adapter_for(simulator)

    def slow_to_set_up(provider: str, client: httpx.Client) -> ProviderAdapter:
        clock.advance(5.0)  # a process's first client: CA bundle, imports, a contended GIL
        return make(provider, client)  # type: ignore[operator,no-any-return]

    tracker = LatencyTracker()
    hedger = Hedger(
        HedgePolicy(after_seconds=10.0),
        CancellableClients(slow_to_set_up),
        stages=frozenset({"normalize"}),
        tracker=tracker,
        quota=HedgeQuota(1.0),
        clock=clock,
    )
    caller = ResilientCaller(
        {p: make(p, http_client) for p in ("anthropic", "openai")},  # type: ignore[operator]
        CircuitBreaker(MemoryBreakerStore(), BreakerPolicy(warm_up_calls=5), clock=clock),
        policy=StagePolicy(request_timeout_seconds=20.0),
        chains={"normalize": CHAIN},
        clock=clock,
        hedger=hedger,
    )
    outcome = caller.call("normalize", REQUEST, lambda text: text)
    assert outcome.provider == "anthropic"
    learned = tracker.quantile(("anthropic", "claude-sonnet-4-6", "normalize"), 0.5, 1)
    assert learned is not None and learned < 5.0  # the call's own time (the fake clock did not move in it)
    hedger.clients.close()


def test_never_hedges_onto_an_open_breaker(simulator: ProviderSimulator, http_client: httpx.Client) -> None:
    simulator.set_profile("fault:kind=timeout,provider=anthropic,hold=30")
    breaker = CircuitBreaker(MemoryBreakerStore(), BreakerPolicy(failure_threshold=1, warm_up_calls=1))
    for provider in ("openai", "gemini"):
        breaker.record(breaker.acquire(provider), success=False)  # open
    caller, hedger = _world(
        simulator,
        http_client,
        policy=HedgePolicy(after_seconds=0.05),
        stage_policy=StagePolicy(request_timeout_seconds=0.5, attempts_per_model=1, max_attempts=1),
        breaker=breaker,
    )
    with pytest.raises(ProviderError) as raised:
        caller.call("normalize", REQUEST, lambda text: text)
    assert "hedge_sent" not in [a.decision for a in raised.value.attempts]
    assert set(simulator.stats()["by_provider"]) == {"anthropic"}
    hedger.clients.close()


def test_a_hedge_counts_against_the_attempt_budget(simulator: ProviderSimulator, http_client: httpx.Client) -> None:
    simulator.set_profile("fault:kind=timeout,provider=anthropic,hold=30")
    caller, hedger = _world(
        simulator,
        http_client,
        policy=HedgePolicy(after_seconds=0.05),
        stage_policy=StagePolicy(request_timeout_seconds=0.5, max_attempts=1),
    )
    with pytest.raises(ProviderError) as raised:
        caller.call("normalize", REQUEST, lambda text: text)
    assert "hedge_sent" not in [a.decision for a in raised.value.attempts]
    assert set(simulator.stats()["by_provider"]) == {"anthropic"}
    hedger.clients.close()


def test_a_hedge_the_cost_cap_cannot_fit_is_not_sent(simulator: ProviderSimulator, http_client: httpx.Client) -> None:
    simulator.set_profile("fault:kind=timeout,provider=anthropic,hold=30")
    probe, _ = _world(simulator, http_client, policy=HedgePolicy(after_seconds=0.05))
    one_call = probe.estimated_cost(ModelRef.of("claude-sonnet-4-6"), REQUEST)
    assert one_call is not None
    # Room for the primary's reservation, not for a second call beside it.
    ledger = SpendLedger(MemorySpendStore(), BudgetCaps(run_usd=one_call * 1.5), run_id="r1")
    caller, hedger = _world(
        simulator,
        http_client,
        policy=HedgePolicy(after_seconds=0.05),
        # Two calls allowed, so only the cost cap can stop the hedge.
        stage_policy=StagePolicy(request_timeout_seconds=0.5, max_attempts=2, attempts_per_model=1),
        ledger=ledger,
    )
    outcome = caller.call("normalize", REQUEST, lambda text: text)
    # No hedge: openai is only called as the fallback, after the primary's whole timeout.
    assert [(a.provider, a.decision) for a in outcome.attempts] == [
        ("anthropic", "fallback_next_model"),
        ("openai", "success"),
    ]
    hedger.clients.close()
    probe.hedger.clients.close()  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ the resource


def test_resource_hedges_only_the_stages_that_opt_in(tmp_path: Path, simulator: ProviderSimulator) -> None:
    from resources.ai import AIProviderResource

    payload = {"title": "Big Fish", "characters": ["EDWARD", "WILL"], "excerpt": "a witch", "scene_count": 1}
    simulator.set_profile("fault:kind=timeout,provider=anthropic,hold=30")
    resource = AIProviderResource(
        mode="simulated",
        simulator_url=simulator.base_url,
        breaker_store_url=f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        breaker_warm_up_calls=5,
        telemetry_path=str(tmp_path / "events.jsonl"),
        hedge_stages=["project_config"],
        hedge_after_seconds=0.05,
        hedge_max_share=1.0,
    )
    served = resource.run_task(stage="project_config", task="project_insights", payload=payload)
    assert served.provider != "anthropic"
    assert [a.decision for a in served.attempts] == ["hedge_sent", "hedge_won"]
    events = (tmp_path / "events.jsonl").read_text()
    assert '"hedge_won"' in events and KEY not in events


def test_the_resource_leaves_its_latencies_in_the_breakers_store_for_the_next_steps_process(
    tmp_path: Path, simulator: ProviderSimulator
) -> None:
    from resources.ai import AIProviderResource
    from resources.resilience.latency_store import LATENCY_TABLE, FleetLatencies
    from resources.resilience.record_table import SQLiteRecordStore

    payload = {"title": "Big Fish", "characters": ["EDWARD", "WILL"], "excerpt": "a witch", "scene_count": 1}
    resource = AIProviderResource(
        mode="simulated",
        simulator_url=simulator.base_url,
        breaker_store_url=f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        breaker_warm_up_calls=5,
        telemetry_path=str(tmp_path / "events.jsonl"),
        hedge_stages=["project_config"],
    )
    served = resource.run_task(stage="project_config", task="project_insights", payload=payload)
    # Another process (a later step) reads the fleet's record: the call's latency is there, written when
    # the stage's call closed, not held until twenty calls were made.
    store = SQLiteRecordStore(tmp_path / "breakers.sqlite", LATENCY_TABLE)
    fleet = FleetLatencies(store, resource.fleet_scope())
    assert len(fleet.samples((served.provider, served.model, "project_config"))) == 1
    assert FleetLatencies(store, "live:other").samples((served.provider, served.model, "project_config")) == []
    store.close()


def test_a_hedged_stages_call_that_answers_in_time_runs_on_the_callers_own_thread(
    simulator: ProviderSimulator,
) -> None:
    """No thread switch for the nine calls in ten that are never hedged: only a late call starts a race."""
    import threading

    threads: list[int] = []
    make = _adapter_for(simulator)

    class ThreadRecording:
        def __init__(self, inner: ProviderAdapter) -> None:
            self.inner, self.name = inner, inner.name

        def complete(self, model: str, request: CompletionRequest, *, timeout: float) -> object:
            threads.append(threading.get_ident())
            return self.inner.complete(model, request, timeout=timeout)

    clients = CancellableClients(lambda p, c: ThreadRecording(make(p, c)))  # type: ignore[operator, arg-type, return-value]
    hedger = Hedger(
        HedgePolicy(after_seconds=5.0), clients, stages=frozenset({"normalize"}), quota=HedgeQuota(1.0),
        tracker=LatencyTracker(),
    )
    with httpx.Client(transport=httpx.HTTPTransport(retries=0)) as client:
        caller = ResilientCaller(
            {p: make(p, client) for p in ("anthropic", "openai")},  # type: ignore[operator, misc]
            CircuitBreaker(MemoryBreakerStore(), BreakerPolicy(warm_up_calls=5)),
            policy=StagePolicy(request_timeout_seconds=20.0),
            chains={"normalize": CHAIN},
            rng=random.Random(3),
            hedger=hedger,
        )
        outcome = caller.call("normalize", REQUEST, lambda text: text)
    assert [a.decision for a in outcome.attempts] == ["success"]
    assert threads == [threading.get_ident()]
    hedger.close()


def test_an_alarm_fires_once_on_a_pool_thread_and_a_disarmed_one_never() -> None:
    import threading
    from concurrent.futures import Future

    from resources.resilience.hedge import CancellableClients, HedgeTimer

    timer = HedgeTimer()
    lease = CancellableClients(lambda p, c: None).lease("anthropic")  # type: ignore[arg-type, return-value]
    fired_on: list[int] = []
    fired = threading.Event()

    def on_late(entrant: Entrant[object]) -> str:
        fired_on.append(threading.get_ident())
        fired.set()
        return "raced"

    late = timer.arm(0.0, Entrant(lease, Future(), 0.0), on_late)
    assert fired.wait(timeout=10)  # due at once
    assert late.result() == "raced"
    assert not late.disarm()  # too late to disarm
    assert fired_on and fired_on[0] != threading.get_ident()
    on_time = timer.arm(3600.0, Entrant(lease, Future(), 0.0), on_late)
    assert on_time.disarm() and not on_time.disarm()
    assert not on_time.try_fire()  # the timer, reaching it, finds it disarmed
    assert len(fired_on) == 1
    lease.close()
