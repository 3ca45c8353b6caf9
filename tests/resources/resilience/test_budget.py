"""Spending caps and billing holds: the pure decision, the three stores, and the executor obeying them."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from resources.providers.base import Completion, CompletionRequest, ProviderAdapter
from resources.providers.limits import estimate_tokens, limits_for
from resources.providers.prices import TokenUsage, cost_of
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import MemoryBreakerStore
from resources.resilience.budget import (
    DAILY_BUDGET_ENV,
    RUN_BUDGET_ENV,
    BudgetCaps,
    BudgetExceededError,
    MemorySpendStore,
    Refusal,
    Reservation,
    Scope,
    SpendLedger,
    SpendStore,
    SQLiteSpendStore,
    decide_reservation,
    run_spend,
    spend_store_from_url,
)
from resources.resilience.chain import StagePolicy
from resources.resilience.cost import attempts_cost, fallback_premium
from resources.resilience.errors import BillingError, ProviderError
from resources.resilience.executor import ResilientCaller
from tests.postgres import PostgresUnavailable, scratch_database
from tests.resources.resilience.fakes import (
    FakeAdapter,
    FakeClock,
    RecordingListener,
    Responder,
    always,
    answers,
    anthropic_error,
    http_error,
    openai_error,
)

GOOD = '{"ok": true}'
REQUEST = CompletionRequest(system="You normalize screenplays.", prompt="INT. LAB - NIGHT. " * 200, max_tokens=4000)


def parse_ok(text: str) -> dict[str, bool]:
    import json

    return dict(json.loads(text))


# ------------------------------------------------------------------------------------------ the decision


def test_reservation_fits_up_to_the_cap_inclusive_and_unpriced_fits_no_cap() -> None:
    scopes = [Scope("run:r", "per-run", 1.0), Scope("day:d", "daily", 5.0)]
    assert decide_reservation({"run:r": 0.6, "day:d": 4.0}, scopes, 0.4) is None
    refusal = decide_reservation({"run:r": 0.6, "day:d": 4.0}, scopes, 0.41)
    assert refusal == Refusal(scopes[0], 0.6, 0.41)
    refusal = decide_reservation({"run:r": 0.0, "day:d": 4.9}, scopes, 0.2)
    assert refusal is not None and refusal.scope.label == "daily"
    refusal = decide_reservation({}, scopes, None)
    assert refusal is not None and refusal.requested_usd is None
    assert "unpriced" in refusal.describe("normalize call to x/y")


def test_caps_come_from_config_else_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUN_BUDGET_ENV, "2.5")
    monkeypatch.setenv(DAILY_BUDGET_ENV, "40")
    assert BudgetCaps.resolve() == BudgetCaps(2.5, 40.0)
    assert BudgetCaps.resolve(run_usd=1.0) == BudgetCaps(1.0, 40.0)
    monkeypatch.setenv(RUN_BUDGET_ENV, "lots")
    with pytest.raises(ValueError, match=RUN_BUDGET_ENV):
        BudgetCaps.resolve()


# ------------------------------------------------------------------------------------------ the ledger


def test_reserve_then_settle_keeps_the_real_cost_per_run_stage_and_day() -> None:
    clock = FakeClock()
    store = MemorySpendStore()
    ledger = SpendLedger(store, BudgetCaps(run_usd=1.0, daily_usd=10.0), run_id="r1", clock=clock)
    first = ledger.reserve(0.7, stage="normalize")
    assert isinstance(first, Reservation)
    # In flight, the reservation counts: a second 0.4 would pass the run cap.
    refused = ledger.reserve(0.4, stage="normalize")
    assert isinstance(refused, Refusal) and refused.spent_usd == pytest.approx(0.7)
    ledger.settle(first, 0.25, premium_usd=0.05)
    assert ledger.spent() == {"run": pytest.approx(0.25), "day": pytest.approx(0.25)}
    second = ledger.reserve(0.4, stage="extract_scenes")
    assert isinstance(second, Reservation)
    ledger.settle(second, 0.0)  # a failed call bills nothing
    spend = run_spend(store, "r1")
    assert spend.total_usd == pytest.approx(0.25)
    assert spend.by_stage == {"normalize": pytest.approx(0.25), "extract_scenes": 0.0}
    assert spend.fallback_premium_usd == pytest.approx(0.05)


def test_without_caps_spend_is_still_recorded_and_nothing_is_refused() -> None:
    store = MemorySpendStore()
    ledger = SpendLedger(store, BudgetCaps(), run_id="r1", clock=FakeClock())
    reservation = ledger.reserve(None, stage="normalize")  # unpriced, but no cap to keep
    assert isinstance(reservation, Reservation)
    ledger.settle(reservation, 0.3)
    assert run_spend(store, "r1").total_usd == pytest.approx(0.3)


def test_daily_cap_rolls_over_at_utc_midnight() -> None:
    clock = FakeClock(start=1_764_547_199.0)  # 2025-11-30 23:59:59 UTC
    ledger = SpendLedger(MemorySpendStore(), BudgetCaps(daily_usd=1.0), clock=clock)
    assert isinstance(ledger.reserve(1.0), Reservation)
    assert isinstance(ledger.reserve(0.01), Refusal)
    clock.advance(1.0)
    assert isinstance(ledger.reserve(0.01), Reservation)


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A private database ``cineforge_budget_<uuid>`` on the local PostgreSQL, dropped afterwards."""
    pytest.importorskip("psycopg2")
    try:
        with scratch_database("cineforge_budget") as dsn:
            yield dsn
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cineforge_breakers.sqlite'}"
    return str(request.getfixturevalue("pg_dsn"))


def test_concurrent_workers_never_reserve_past_the_daily_cap(store_url: str) -> None:
    """Eight workers, each with its own connection (as separate processes have), race for a $1.00 day."""
    clock = FakeClock()
    stores: list[SpendStore] = [spend_store_from_url(store_url) for _ in range(8)]
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(stores))

    def worker(store: SpendStore) -> None:
        ledger = SpendLedger(store, BudgetCaps(daily_usd=1.0), clock=clock)
        start.wait()
        mine = sum(isinstance(ledger.reserve(0.07), Reservation) for _ in range(5))
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=worker, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 14  # floor(1.00 / 0.07): every grant counted once, none past the cap
    assert SpendLedger(stores[0], clock=clock).spent()["day"] == pytest.approx(14 * 0.07)
    for store in stores:
        store.close()


def test_budget_lives_in_the_breaker_sqlite_file_beside_the_breakers(tmp_path: Path) -> None:
    from resources.resilience.breaker_store import store_from_url

    url = f"sqlite:///{tmp_path / 'cineforge_breakers.sqlite'}"
    breakers = store_from_url(url)
    breakers.read("anthropic")
    spend = spend_store_from_url(url)
    assert isinstance(spend, SQLiteSpendStore) and spend.path == tmp_path / "cineforge_breakers.sqlite"
    ledger = SpendLedger(spend, BudgetCaps(daily_usd=1.0), clock=FakeClock())
    assert isinstance(ledger.reserve(0.25), Reservation)
    import sqlite3

    with sqlite3.connect(tmp_path / "cineforge_breakers.sqlite") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (value,) = conn.execute("SELECT value FROM cineforge_budget").fetchone()
    assert "cineforge_budget" in tables and len(tables) >= 2 and value == pytest.approx(0.25)
    breakers.close()
    spend.close()


# ------------------------------------------------------------------------------------------ the executor


class MeteredAdapter(FakeAdapter):
    """A fake adapter that reports usage the way the simulator does: estimated prompt tokens, text tokens."""

    def complete(self, model: str, request: CompletionRequest, *, timeout: float) -> Completion:
        completion = super().complete(model, request, timeout=timeout)
        return completion.model_copy(
            update={
                "input_tokens": estimate_tokens(request.system + request.prompt),
                "output_tokens": estimate_tokens(completion.text),
                "max_tokens": limits_for(self.name, model).output_ceiling(request.max_tokens),
            }
        )


def estimate(provider: str, model: str, request: CompletionRequest = REQUEST) -> float:
    usage = TokenUsage(
        input_tokens=estimate_tokens(request.system + request.prompt),
        output_tokens=limits_for(provider, model).output_ceiling(request.max_tokens),
    )
    usd = cost_of(provider, model, usage).usd
    assert usd is not None
    return usd


def actual(provider: str, model: str, text: str = GOOD, request: CompletionRequest = REQUEST) -> float:
    usage = TokenUsage(
        input_tokens=estimate_tokens(request.system + request.prompt), output_tokens=estimate_tokens(text)
    )
    usd = cost_of(provider, model, usage).usd
    assert usd is not None
    return usd


class World:
    def __init__(self, caps: BudgetCaps, **responders: Responder) -> None:
        self.clock = FakeClock()
        self.listener = RecordingListener()
        self.store = MemorySpendStore()
        self.adapters = {name: MeteredAdapter(name, r, self.clock) for name, r in responders.items()}
        self.ledger = SpendLedger(self.store, caps, run_id="run-1", clock=self.clock)
        adapters: dict[str, ProviderAdapter] = dict(self.adapters)
        self.breaker = CircuitBreaker(MemoryBreakerStore(), BreakerPolicy(warm_up_calls=5), clock=self.clock)
        self.caller = ResilientCaller(
            adapters,
            self.breaker,
            policy=StagePolicy(),
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(7),
            listeners=[self.listener],
            run_id="run-1",
            ledger=self.ledger,
        )

    def calls(self, provider: str) -> list[str]:
        return self.adapters[provider].models_called() if provider in self.adapters else []


def test_every_attempt_carries_its_cost_and_the_first_models_cost_for_the_same_tokens() -> None:
    world = World(
        BudgetCaps(),
        anthropic=always(lambda: anthropic_error(529, "overloaded_error", "Overloaded")),
        openai=answers(GOOD),
    )
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert (outcome.provider, outcome.model) == ("openai", "gpt-4.1")
    failed, skipped, served = outcome.attempts
    assert (failed.cost_usd, skipped.cost_usd) == (0.0, 0.0)  # errors and skips bill nothing
    assert served.cost_usd == pytest.approx(actual("openai", "gpt-4.1"))
    assert served.first_model_cost_usd == pytest.approx(actual("anthropic", "claude-sonnet-4-6"))
    assert attempts_cost(outcome.attempts).usd == pytest.approx(served.cost_usd)
    premium = actual("openai", "gpt-4.1") - actual("anthropic", "claude-sonnet-4-6")
    assert fallback_premium(outcome.attempts) == pytest.approx(premium)
    assert run_spend(world.store, "run-1").premium_by_stage["normalize"] == pytest.approx(premium)


def test_a_fallback_that_would_break_the_cap_is_skipped_for_a_cheaper_one() -> None:
    # Room for one Sonnet call's worst case, not for Opus's (5/25 vs 3/15 per million).
    cap = estimate("anthropic", "claude-sonnet-4-6") * 1.2
    assert estimate("anthropic", "claude-opus-4-6") > cap > estimate("gemini", "gemini-3-flash-preview")
    world = World(
        BudgetCaps(run_usd=cap),
        anthropic=always(lambda: anthropic_error(500, "api_error", "Internal server error")),
        openai=always(lambda: openai_error(500, "server_error", "The server had an error")),
        gemini=answers(GOOD),
        offline=answers(GOOD),
    )
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert (outcome.provider, outcome.model) == ("gemini", "gemini-3-flash-preview")
    assert world.calls("anthropic") == ["claude-sonnet-4-6", "claude-sonnet-4-6"]  # failed calls bill nothing
    over_budget = [(a.model, a.outcome, a.error_code) for a in outcome.attempts if a.error_code == "over_budget"]
    assert over_budget == [("claude-opus-4-6", "skipped", "over_budget")]
    assert world.ledger.spent()["run"] == pytest.approx(actual("gemini", "gemini-3-flash-preview"))


def test_when_nothing_fits_the_stage_fails_permanently_naming_cap_spend_and_call_and_offline_is_not_used() -> None:
    world = World(BudgetCaps(run_usd=0.05), anthropic=answers(GOOD), offline=answers(GOOD))
    world.ledger.settle(Reservation(("run:run-1",), 0.0), 0.049)  # earlier stages spent most of it
    with pytest.raises(BudgetExceededError) as raised:
        world.caller.call("normalize", REQUEST, parse_ok)
    message = str(raised.value)
    assert raised.value.error_class == "permanent"
    assert "per-run" in message and "$0.0500" in message and "$0.0490 spent" in message
    assert "normalize call to anthropic/claude-opus-4-6" in message  # the latest refusal, its spend figure
    assert world.calls("anthropic") == [] and world.calls("offline") == []
    assert world.ledger.spent()["run"] == pytest.approx(0.049)


# ------------------------------------------------------------------------------------------ billing


def anthropic_no_credit() -> ProviderError:
    return anthropic_error(
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade "
        "or purchase credits.",
    )


def openai_insufficient_quota() -> ProviderError:
    return openai_error(
        429,
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
        code="insufficient_quota",
    )


def gemini_billing_disabled() -> ProviderError:
    body = {
        "error": {
            "code": 403,
            "message": "This API method requires billing to be enabled. Please enable billing on project #1.",
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "BILLING_DISABLED",
                    "domain": "googleapis.com",
                }
            ],
        }
    }
    return http_error("gemini", 403, body)


@pytest.mark.parametrize(
    ("factory", "provider"),
    [(anthropic_no_credit, "anthropic"), (openai_insufficient_quota, "openai"), (gemini_billing_disabled, "gemini")],
)
def test_billing_answers_are_their_own_class_with_an_operator_message(
    factory: Callable[[], ProviderError], provider: str
) -> None:
    error = factory()
    assert isinstance(error, BillingError)
    assert error.error_class == "provider_unavailable"
    assert f"add credit to {provider}" in str(error)


def test_a_billing_refusal_is_not_retried_and_holds_the_provider_for_every_later_call() -> None:
    world = World(BudgetCaps(), openai=always(openai_insufficient_quota), gemini=answers(GOOD))
    chain = ["gpt-4.1", "gpt-4.1-mini", "gemini-3-flash-preview"]
    first = world.caller.call("normalize", REQUEST, parse_ok, chain=chain)
    assert first.provider == "gemini"
    assert world.calls("openai") == ["gpt-4.1"]  # a 429 insufficient_quota is not waited for nor retried
    assert world.clock.sleeps == []
    assert world.breaker.snapshot()["openai"].parked_reason == "billing_refused"
    world.caller.call("normalize", REQUEST, parse_ok, chain=chain)
    assert world.calls("openai") == ["gpt-4.1"]  # the hold skips it without a call
    world.clock.advance(3601)
    world.caller.call("normalize", REQUEST, parse_ok, chain=chain)
    assert world.calls("openai") == ["gpt-4.1", "gpt-4.1"]  # the hold ended: tried again


def test_a_raised_ceiling_the_cap_refuses_ends_the_stage_instead_of_paying_the_next_model() -> None:
    request = REQUEST.model_copy(update={"max_tokens": 1000})
    first = estimate("anthropic", "claude-sonnet-4-6", request)
    world = World(BudgetCaps(run_usd=first * 1.5), anthropic=answers(GOOD), openai=answers(GOOD))

    adapter = world.adapters["anthropic"]
    original = adapter.complete

    def cut(model: str, req: CompletionRequest, *, timeout: float) -> Completion:
        return original(model, req, timeout=timeout).model_copy(update={"truncated": True})

    adapter.complete = cut  # type: ignore[method-assign]
    with pytest.raises(BudgetExceededError, match="normalize call to anthropic/claude-sonnet-4-6"):
        world.caller.call("normalize", request, parse_ok)
    assert world.calls("anthropic") == ["claude-sonnet-4-6"] and world.calls("openai") == []
    assert world.ledger.spent()["run"] <= first * 1.5


def test_simulated_spend_does_not_count_against_the_live_daily_cap() -> None:
    store, clock = MemorySpendStore(), FakeClock()
    drill = SpendLedger(store, BudgetCaps(daily_usd=1.0), clock=clock, namespace="simulated")
    assert isinstance(drill.reserve(0.9), Reservation)
    live = SpendLedger(store, BudgetCaps(daily_usd=1.0), clock=clock)
    assert isinstance(live.reserve(0.9), Reservation)
    assert live.spent()["day"] == pytest.approx(0.9) and drill.spent()["day"] == pytest.approx(0.9)
