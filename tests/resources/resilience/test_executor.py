"""The executor against in-process fake adapters: fake clock, recorded sleeps, seeded jitter."""

from __future__ import annotations

import json
import queue
import random
import threading
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pytest

from resources.providers.base import CompletionRequest, ProviderAdapter
from resources.resilience.backoff import BackoffPolicy
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import MemoryBreakerStore
from resources.resilience.chain import StagePolicy
from resources.resilience.errors import (
    AllProvidersOpenError,
    ChainExhaustedError,
    InvalidModelOutputError,
    PermanentProviderError,
    ProviderError,
    ProviderUnavailableError,
)
from resources.resilience.executor import RepairRequest, ResilientCaller, append_validation_error
from resources.resilience.telemetry import AttemptRecord, JsonlTelemetrySink
from tests.resources.resilience.fakes import (
    FakeAdapter,
    FakeClock,
    RecordingListener,
    always,
    answers,
    anthropic_error,
    gemini_error,
    openai_error,
    sequence,
)

GOOD = '{"ok": true}'
SECRET_PROMPT = "INT. SECRET LAB - NIGHT. sk-live-should-never-be-logged"
REQUEST = CompletionRequest(
    system="You are a screenplay normalizer.", prompt=SECRET_PROMPT, stage="normalize"
)


def parse_ok(text: str) -> dict[str, bool]:
    data = json.loads(text)
    if data.get("ok") is not True:
        raise ValueError(f"expected ok=true, got {data!r}")
    return data


def overloaded() -> ProviderError:
    return anthropic_error(529, "overloaded_error", "Overloaded")


def server_error() -> ProviderError:
    return anthropic_error(500, "api_error", "Internal server error")


class World:
    """Adapters, breaker and caller sharing one fake clock."""

    def __init__(
        self,
        *,
        anthropic: object = None,
        openai: object = None,
        gemini: object = None,
        offline: object = None,
        policy: StagePolicy | None = None,
        breaker_policy: BreakerPolicy | None = None,
        listeners: Sequence[object] = (),
        repair: RepairRequest = append_validation_error,
    ) -> None:
        self.clock = FakeClock()
        self.listener = RecordingListener()
        self.adapters: dict[str, FakeAdapter] = {}
        for name, responder in (
            ("anthropic", anthropic),
            ("openai", openai),
            ("gemini", gemini),
            ("offline", offline),
        ):
            if responder is not None:
                self.adapters[name] = FakeAdapter(name, responder, self.clock)  # type: ignore[arg-type]
        self.breaker = CircuitBreaker(
            MemoryBreakerStore(),
            # Budgets as for a provider already proven: the warm-up tests below set their own policy.
            breaker_policy or BreakerPolicy(warm_up_calls=BreakerPolicy().failure_threshold),
            clock=self.clock,
            listeners=[self.listener],
        )
        adapters: dict[str, ProviderAdapter] = dict(self.adapters)
        self.caller = ResilientCaller(
            adapters,
            self.breaker,
            policy=policy or StagePolicy(),
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(1234),
            listeners=[self.listener, *listeners],  # type: ignore[list-item]
            run_id="run-1",
            partition="big-fish",
            repair=repair,
        )

    def calls(self, provider: str) -> list[str]:
        adapter = self.adapters.get(provider)
        return adapter.models_called() if adapter else []


def steps(attempts: Sequence[AttemptRecord]) -> list[tuple[str, str, str]]:
    return [(a.model, a.outcome, a.decision) for a in attempts]


# ------------------------------------------------------------------------------------ the incident


def test_incident_replay_sonnet_529_forever_falls_to_gpt_41(tmp_path: Path) -> None:
    sink = JsonlTelemetrySink(tmp_path / "telemetry" / "attempts.jsonl")
    world = World(anthropic=always(overloaded), openai=answers(GOOD), listeners=[sink])
    outcome = world.caller.call("normalize", REQUEST, parse_ok)

    assert outcome.value == {"ok": True}
    assert (outcome.provider, outcome.model) == ("openai", "gpt-4.1")
    assert world.calls("anthropic") == ["claude-sonnet-4-6"]  # opus never tried: same provider, overloaded
    assert world.calls("openai") == ["gpt-4.1"]
    assert world.clock.sleeps == []  # falling back does not wait
    assert steps(outcome.attempts) == [
        ("claude-sonnet-4-6", "error", "fallback_next_provider"),
        ("claude-opus-4-6", "skipped", "skip_provider"),
        ("gpt-4.1", "success", "success"),
    ]
    first, skipped, served = outcome.attempts
    assert (first.status, first.error_code, first.error_class, first.request_id) == (
        529,
        "overloaded_error",
        "transient",
        "req_011CTest",
    )
    assert skipped.error_code == "provider_overloaded"
    assert served.request_id == "openai-req-1" and served.breaker_state == "closed"
    assert [a.attempt for a in outcome.attempts] == [1, 2, 3]
    assert all(
        a.run_id == "run-1" and a.partition == "big-fish" and a.stage == "normalize" for a in outcome.attempts
    )
    assert world.listener.attempts == outcome.attempts

    lines = (tmp_path / "telemetry" / "attempts.jsonl").read_text().splitlines()
    assert [json.loads(line)["decision"] for line in lines] == [
        "fallback_next_provider",
        "skip_provider",
        "success",
    ]
    text = "\n".join(lines)
    assert "SECRET" not in text and "sk-live" not in text and "normalizer" not in text
    sink.close()


def test_repeated_incident_opens_anthropic_breaker_and_stops_calling_it() -> None:
    world = World(anthropic=always(overloaded), openai=answers(GOOD))
    for _ in range(5):
        world.caller.call("normalize", REQUEST, parse_ok)
    assert len(world.calls("anthropic")) == 5
    assert world.breaker.state("anthropic") == "open"
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert len(world.calls("anthropic")) == 5
    assert outcome.attempts[0].error_code == "breaker_open" and outcome.attempts[0].breaker_state == "open"
    assert [t.to_state for t in world.listener.transitions] == ["open"]


# ------------------------------------------------------------------------------- terminal errors


def test_safety_refusal_is_never_retried_and_never_falls_back() -> None:
    refusal = partial(
        anthropic_error, 400, "invalid_request_error", "Output blocked by content filtering policy"
    )
    world = World(anthropic=always(refusal), openai=answers(GOOD))
    with pytest.raises(PermanentProviderError) as raised:
        world.caller.call("normalize", REQUEST, parse_ok)
    assert world.calls("anthropic") == ["claude-sonnet-4-6"]
    assert world.calls("openai") == []
    assert steps(raised.value.attempts) == [("claude-sonnet-4-6", "error", "stop")]
    assert raised.value.attempts[0].terminal_reason == "invalid_request_error"
    assert world.clock.sleeps == []
    # a bad request says nothing bad about the provider: it counts as an answer
    assert world.breaker.state("anthropic") == "closed"
    # the first answer from a cold provider is written once: it proves the provider (ends its warm-up)
    proven = world.breaker.snapshot()["anthropic"]
    assert (proven.window_calls, proven.window_failures, proven.warming) == (1, 0, False)


def test_context_overflow_stops_at_once() -> None:
    overflow = lambda: openai_error(  # noqa: E731
        400, "invalid_request_error", "maximum context length exceeded", code="context_length_exceeded"
    )
    world = World(openai=always(overflow), offline=answers(GOOD))
    with pytest.raises(PermanentProviderError) as raised:
        world.caller.call("normalize", REQUEST, parse_ok, chain=["gpt-4.1", "offline"])
    assert raised.value.error_code == "context_length_exceeded"
    assert world.calls("offline") == []


def test_401_skips_the_provider_without_touching_its_breaker() -> None:
    unauthorized = partial(anthropic_error, 401, "authentication_error", "invalid x-api-key")
    world = World(anthropic=always(unauthorized), openai=answers(GOOD))
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert outcome.model == "gpt-4.1"
    assert world.calls("anthropic") == ["claude-sonnet-4-6"]
    assert steps(outcome.attempts) == [
        ("claude-sonnet-4-6", "error", "skip_provider"),
        ("claude-opus-4-6", "skipped", "skip_provider"),
        ("gpt-4.1", "success", "success"),
    ]
    assert outcome.attempts[0].error_class == "provider_unavailable"
    assert world.breaker.state("anthropic") == "closed"
    # released: no outcome recorded, the warm-up lease handed back, still warming (nothing proven)
    released = world.breaker.snapshot()["anthropic"]
    assert (released.window_calls, released.consecutive_failures, released.probes_in_flight) == (0, 0, 0)
    assert released.warming


def test_no_usable_provider_at_all_is_provider_unavailable() -> None:
    unauthorized = partial(openai_error, 401, "invalid_request_error", "bad key", code="invalid_api_key")
    world = World(openai=always(unauthorized))
    with pytest.raises(ProviderUnavailableError) as raised:
        world.caller.call("normalize", REQUEST, parse_ok)
    assert raised.value.error_code == "no_usable_provider"
    assert [a.error_code for a in raised.value.attempts] == [
        "no_adapter",
        "no_adapter",
        "invalid_api_key",
        "no_adapter",
        "no_adapter",
    ]


# ------------------------------------------------------------------------------- retries and backoff


def test_transient_errors_retry_the_same_model_with_seeded_jitter_then_fall_back() -> None:
    world = World(anthropic=always(server_error), openai=answers(GOOD))
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert world.calls("anthropic") == ["claude-sonnet-4-6"] * 2 + ["claude-opus-4-6"] * 2
    assert steps(outcome.attempts) == [
        ("claude-sonnet-4-6", "error", "retry_same_model"),
        ("claude-sonnet-4-6", "error", "fallback_next_model"),
        ("claude-opus-4-6", "error", "retry_same_model"),
        ("claude-opus-4-6", "error", "fallback_next_model"),
        ("gpt-4.1", "success", "success"),
    ]
    rng = random.Random(1234)
    expected = [rng.uniform(0, 0.5), rng.uniform(0, 0.5)]  # first retry of each model: base * 2**0
    assert world.clock.sleeps == pytest.approx(expected)
    assert [a.delay_s for a in outcome.attempts if a.decision == "retry_same_model"] == pytest.approx(
        expected
    )


def test_retry_after_is_honoured() -> None:
    limited = partial(
        openai_error, 429, "requests", "Rate limit", code="rate_limit_exceeded", headers={"retry-after": "7"}
    )
    world = World(openai=sequence(limited, GOOD))
    outcome = world.caller.call("normalize", REQUEST, parse_ok, chain=["gpt-4.1", "offline"])
    assert outcome.model == "gpt-4.1"
    assert world.clock.sleeps == [7.0]
    assert outcome.attempts[0].delay_s == 7.0


def test_retry_after_is_capped() -> None:
    # Only the offline engine is left after the model, so the long hint is waited for (capped).
    limited = partial(anthropic_error, 429, "rate_limit_error", "Rate limit", headers={"retry-after": "55"})
    world = World(anthropic=sequence(limited, GOOD))
    world.caller.call("normalize", REQUEST, parse_ok, chain=["claude-sonnet-4-6", "offline"])
    assert world.clock.sleeps == [30.0]


def test_a_long_retry_after_falls_back_at_once_when_another_provider_model_is_left() -> None:
    limited = partial(
        openai_error, 429, "requests", "Rate limit", code="rate_limit_exceeded", headers={"retry-after": "5"}
    )
    world = World(openai=always(limited), gemini=answers(GOOD))
    outcome = world.caller.call("normalize", REQUEST, parse_ok, chain=["gpt-4.1", "gemini-3-flash-preview"])
    assert outcome.provider == "gemini"
    assert world.clock.sleeps == []
    assert steps(outcome.attempts) == [
        ("gpt-4.1", "error", "fallback_next_model"),
        ("gemini-3-flash-preview", "success", "success"),
    ]
    assert len(world.adapters["openai"].calls) == 1


def test_a_rate_limit_is_per_model_so_the_long_hint_moves_to_the_same_providers_next_model() -> None:
    limited = partial(anthropic_error, 429, "rate_limit_error", "Rate limit", headers={"retry-after": "5"})
    world = World(anthropic=sequence(limited, GOOD))
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert (outcome.model, world.clock.sleeps) == ("claude-opus-4-6", [])


def test_a_short_retry_after_is_waited_out_on_the_same_model() -> None:
    limited = partial(
        openai_error, 429, "requests", "Rate limit", code="rate_limit_exceeded", headers={"retry-after": "2"}
    )
    world = World(openai=sequence(limited, GOOD), gemini=answers(GOOD))
    outcome = world.caller.call("normalize", REQUEST, parse_ok, chain=["gpt-4.1", "gemini-3-flash-preview"])
    assert (outcome.provider, world.clock.sleeps) == ("openai", [2.0])


def test_the_retry_after_fallback_threshold_is_a_policy() -> None:
    limited = partial(
        openai_error, 429, "requests", "Rate limit", code="rate_limit_exceeded", headers={"retry-after": "5"}
    )
    world = World(
        openai=sequence(limited, GOOD),
        gemini=answers(GOOD),
        policy=StagePolicy(retry_after_fallback_seconds=10.0),
    )
    outcome = world.caller.call("normalize", REQUEST, parse_ok, chain=["gpt-4.1", "gemini-3-flash-preview"])
    assert (outcome.provider, world.clock.sleeps) == ("openai", [5.0])


def test_a_retry_after_past_the_deadline_falls_back_instead_of_waiting() -> None:
    limited = partial(
        openai_error, 429, "requests", "Rate limit", code="rate_limit_exceeded", headers={"retry-after": "25"}
    )
    world = World(openai=always(limited), gemini=answers(GOOD), policy=StagePolicy(deadline_seconds=20.0))
    outcome = world.caller.call("normalize", REQUEST, parse_ok, chain=["gpt-4.1", "gemini-3-flash-preview"])
    assert outcome.provider == "gemini"
    assert world.clock.sleeps == []
    assert steps(outcome.attempts)[0] == ("gpt-4.1", "error", "fallback_next_model")


def test_the_deadline_bounds_every_call_and_every_wait() -> None:
    world = World(anthropic=always(server_error), policy=StagePolicy(deadline_seconds=120.0, max_attempts=50))
    world.adapters["anthropic"].latency = 50.0
    started = world.clock.now
    with pytest.raises(ChainExhaustedError) as raised:
        world.caller.call("normalize", REQUEST, parse_ok, chain=["claude-sonnet-4-6", "claude-opus-4-6"])
    assert raised.value.reason == "deadline"
    assert world.clock.now - started <= 120.0
    timeouts = [c.timeout for c in world.adapters["anthropic"].calls]
    assert timeouts[0] == 120.0 and all(t <= 120.0 for t in timeouts)
    assert all(a.decision != "retry_same_model" or a.delay_s < 120.0 for a in raised.value.attempts)
    assert raised.value.attempts[-1].decision == "stop"


def test_the_attempt_budget_spans_the_chain() -> None:
    openai_down = partial(openai_error, 500, "server_error", "The server had an error")
    world = World(anthropic=always(server_error), openai=always(openai_down), offline=answers(GOOD))
    with pytest.raises(ChainExhaustedError) as raised:
        world.caller.call("normalize", REQUEST, parse_ok)
    assert raised.value.reason == "budget"
    assert raised.value.last_error is not None and raised.value.last_error.provider == "openai"
    calls = [a for a in raised.value.attempts if a.outcome != "skipped"]
    assert len(calls) == 6
    assert raised.value.attempts[-1].terminal_reason == "budget"
    assert world.calls("offline") == []


def openai_overloaded() -> ProviderError:
    return openai_error(503, "server_error", "The engine is currently overloaded")


def gemini_overloaded() -> ProviderError:
    return gemini_error(503, "UNAVAILABLE", "The model is overloaded.")


THREE_PROVIDERS = ["claude-sonnet-4-6", "gpt-4.1", "gemini-3-flash-preview"]


def test_overloads_everywhere_walk_the_chain_again_until_the_attempt_budget_is_spent() -> None:
    world = World(anthropic=always(overloaded), openai=always(openai_overloaded), gemini=always(gemini_overloaded))
    with pytest.raises(ChainExhaustedError) as raised:
        world.caller.call("normalize", REQUEST, parse_ok, chain=THREE_PROVIDERS)
    assert raised.value.reason == "budget"
    assert raised.value.error_class == "transient"
    assert [(a.provider, a.decision) for a in raised.value.attempts] == [
        ("anthropic", "fallback_next_provider"),
        ("openai", "fallback_next_provider"),
        ("gemini", "retry_chain"),
        ("anthropic", "retry_chain"),  # the wait before the second walk (skipped: no call)
        ("anthropic", "fallback_next_provider"),
        ("openai", "fallback_next_provider"),
        ("gemini", "stop"),
    ]
    wait = raised.value.attempts[3]
    assert wait.outcome == "skipped" and 0 < wait.delay_s <= StagePolicy().backoff.base
    assert world.clock.sleeps == [wait.delay_s]


def test_a_brownout_request_is_served_on_the_second_walk_instead_of_failing() -> None:
    """Every provider degraded (one overload each, then healthy): the request must not fail while a healthy
    answer is one jittered wait away; before, the walk ended with ``chain_exhausted`` after three calls."""
    world = World(
        anthropic=sequence(overloaded, GOOD),
        openai=sequence(openai_overloaded, GOOD),
        gemini=sequence(gemini_overloaded, GOOD),
    )
    outcome = world.caller.call("normalize", REQUEST, parse_ok, chain=THREE_PROVIDERS)
    assert outcome.provider == "anthropic"  # the walk starts again at the chain's first provider
    assert [c for p in ("anthropic", "openai", "gemini") for c in world.calls(p)] == [
        "claude-sonnet-4-6",
        "claude-sonnet-4-6",
        "gpt-4.1",
        "gemini-3-flash-preview",
    ]
    assert len(world.clock.sleeps) == 1


def test_an_outage_is_not_walked_again() -> None:
    """Providers that are down for everyone (401, open breaker) are no brownout: no wait, no second walk."""
    world = World(
        anthropic=always(lambda: anthropic_error(401, "authentication_error", "invalid x-api-key")),
        openai=always(openai_overloaded),
    )
    with pytest.raises(ChainExhaustedError):
        world.caller.call("normalize", REQUEST, parse_ok, chain=["claude-sonnet-4-6", "gpt-4.1"])
    # openai alone was degraded: it is walked again, anthropic (unavailable) never again
    assert world.calls("anthropic") == ["claude-sonnet-4-6"]
    assert all(a.decision != "retry_chain" or a.provider == "openai" for a in world.listener.attempts)


def test_the_second_walk_ends_at_the_deadline() -> None:
    world = World(
        anthropic=always(overloaded),
        openai=always(openai_overloaded),
        policy=StagePolicy(deadline_seconds=1.2, max_attempts=50),
    )
    started = world.clock.now
    with pytest.raises(ChainExhaustedError) as raised:
        world.caller.call("normalize", REQUEST, parse_ok, chain=["claude-sonnet-4-6", "gpt-4.1"])
    assert raised.value.reason == "deadline"
    assert world.clock.now - started <= 1.2


# --------------------------------------------------------------------------------- invalid output


def test_invalid_output_gets_one_repair_on_the_same_model() -> None:
    world = World(anthropic=sequence('{"ok": false}', GOOD), openai=answers(GOOD))
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert outcome.model == "claude-sonnet-4-6"
    assert steps(outcome.attempts) == [
        ("claude-sonnet-4-6", "error", "retry_same_model"),
        ("claude-sonnet-4-6", "success", "success"),
    ]
    assert outcome.attempts[0].error_code == "invalid_model_output"
    first, repair = world.adapters["anthropic"].calls
    assert first.request.prompt == SECRET_PROMPT
    assert repair.request.prompt.startswith(SECRET_PROMPT) and "expected ok=true" in repair.request.prompt
    assert world.clock.sleeps == []


def test_output_still_invalid_after_repair_is_terminal() -> None:
    world = World(anthropic=answers("not json at all"), openai=answers(GOOD))
    with pytest.raises(InvalidModelOutputError) as raised:
        world.caller.call("normalize", REQUEST, parse_ok)
    assert raised.value.error_class == "permanent"
    assert raised.value.request_id == "anthropic-req-2"
    assert world.calls("anthropic") == ["claude-sonnet-4-6", "claude-sonnet-4-6"]
    assert world.calls("openai") == []
    assert [a.decision for a in raised.value.attempts] == ["retry_same_model", "stop"]


# ----------------------------------------------------------------------------------- breakers


def test_breaker_opens_then_zero_calls_until_cooldown_then_one_probe() -> None:
    world = World(
        anthropic=always(server_error),
        offline=answers(GOOD),
        policy=StagePolicy(attempts_per_model=1),
        breaker_policy=BreakerPolicy(
            failure_threshold=3, warm_up_calls=3, cooldown_seconds=30.0, first_cooldown_seconds=30.0,
            half_open_max_probes=1,
        ),
    )
    chain = ["claude-sonnet-4-6", "offline"]
    for _ in range(3):
        assert world.caller.call("normalize", REQUEST, parse_ok, chain=chain).provider == "offline"
    assert len(world.calls("anthropic")) == 3
    assert world.breaker.state("anthropic") == "open"
    for _ in range(10):
        outcome = world.caller.call("normalize", REQUEST, parse_ok, chain=chain)
        assert outcome.attempts[0].error_code == "breaker_open"
    assert len(world.calls("anthropic")) == 3  # zero calls while open
    world.clock.advance(30.0)
    outcome = world.caller.call("normalize", REQUEST, parse_ok, chain=chain)
    assert outcome.attempts[0].breaker_state == "half_open"  # the probe, which fails again
    for _ in range(5):
        world.caller.call("normalize", REQUEST, parse_ok, chain=chain)
    assert len(world.calls("anthropic")) == 4  # exactly one probe; re-opened after it failed
    assert [(t.from_state, t.to_state) for t in world.listener.transitions] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
    ]


def test_half_open_lets_exactly_max_probes_through_concurrent_calls() -> None:
    release = threading.Event()
    world = World(
        offline=answers(GOOD),
        breaker_policy=BreakerPolicy(failure_threshold=1, cooldown_seconds=30.0, half_open_max_probes=2),
    )

    def slow_recovering_provider(model: str, request: CompletionRequest) -> str:
        release.wait(timeout=60)
        return GOOD

    world.adapters["anthropic"] = FakeAdapter("anthropic", slow_recovering_provider, world.clock)
    world.caller.adapters["anthropic"] = world.adapters["anthropic"]
    world.breaker.record(world.breaker.acquire("anthropic"), success=False)  # open it
    world.clock.advance(30.0)

    chain = ["claude-sonnet-4-6", "offline"]
    served: queue.Queue[str] = queue.Queue()

    def run() -> None:
        served.put(world.caller.call("normalize", REQUEST, parse_ok, chain=chain).provider)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    early = [served.get(timeout=60) for _ in range(4)]  # four calls are turned away and served offline
    assert early == ["offline"] * 4
    assert len(world.calls("anthropic")) == 2  # exactly half_open_max_probes probes in flight
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(served.get_nowait() for _ in range(2)) == ["anthropic", "anthropic"]
    assert world.breaker.state("anthropic") == "closed"


def test_all_providers_open_raises_with_the_soonest_reopening() -> None:
    world = World(
        anthropic=answers(GOOD),
        openai=answers(GOOD),
        breaker_policy=BreakerPolicy(failure_threshold=1, cooldown_seconds=30.0, first_cooldown_seconds=30.0),
    )
    world.breaker.record(world.breaker.acquire("anthropic"), success=False)  # reopens at t0 + 30
    world.clock.advance(10.0)
    world.breaker.record(world.breaker.acquire("openai"), success=False)  # reopens at t0 + 40
    world.clock.advance(2.0)
    with pytest.raises(AllProvidersOpenError) as raised:
        world.caller.call(
            "normalize", REQUEST, parse_ok, chain=["claude-sonnet-4-6", "claude-opus-4-6", "gpt-4.1"]
        )
    assert raised.value.reopens_in_seconds == pytest.approx(18.0)
    assert raised.value.retry_after == pytest.approx(18.0)
    assert raised.value.error_class == "transient"
    assert world.calls("anthropic") == [] and world.calls("openai") == []
    assert steps(raised.value.attempts) == [
        ("claude-sonnet-4-6", "skipped", "skip_provider"),
        ("claude-opus-4-6", "skipped", "skip_provider"),
        ("gpt-4.1", "skipped", "skip_provider"),
    ]


# --------------------------------------------------------------------------------------- plumbing


class ExplodingListener:
    def on_attempt(self, record: AttemptRecord) -> None:
        raise OSError("disk full")

    def on_breaker_transition(self, transition: object) -> None:
        raise OSError("disk full")


def test_a_failing_telemetry_listener_never_fails_the_stage() -> None:
    world = World(anthropic=answers(GOOD), listeners=[ExplodingListener()])
    assert world.caller.call("normalize", REQUEST, parse_ok).value == {"ok": True}


def test_stage_policies_and_chain_overrides() -> None:
    world = World(anthropic=always(server_error), gemini=answers(GOOD))
    world.caller.stage_policies["normalize"] = StagePolicy(
        attempts_per_model=1, backoff=BackoffPolicy(base=1.0)
    )
    world.caller.chains = {"normalize": ["claude-haiku-4-5-20251001", "gemini-3-flash-preview"]}
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert steps(outcome.attempts) == [
        ("claude-haiku-4-5-20251001", "error", "fallback_next_model"),
        ("gemini-3-flash-preview", "success", "success"),
    ]


def test_an_adapter_bug_propagates_and_frees_the_probe() -> None:
    def buggy(model: str, request: CompletionRequest) -> str:
        raise KeyError("choices")

    world = World(anthropic=buggy, breaker_policy=BreakerPolicy(failure_threshold=1))
    world.breaker.record(world.breaker.acquire("anthropic"), success=False)
    world.clock.advance(30.0)
    with pytest.raises(KeyError):
        world.caller.call("normalize", REQUEST, parse_ok)
    assert world.breaker.snapshot()["anthropic"].probes_in_flight == 0


def test_the_repair_request_builder_is_pluggable() -> None:
    def quote_back(request: CompletionRequest, bad_output: str, problem: Exception) -> CompletionRequest:
        return request.model_copy(update={"prompt": f"{request.prompt}\n<previous>{bad_output}</previous>"})

    world = World(anthropic=sequence('{"ok": false}', GOOD), repair=quote_back)
    world.caller.call("normalize", REQUEST, parse_ok)
    assert world.adapters["anthropic"].calls[1].request.prompt.endswith('<previous>{"ok": false}</previous>')


# ------------------------------------------------------------------------------------- warm-up budget


def test_a_call_over_a_cold_providers_warm_up_budget_goes_to_the_next_provider_without_waiting() -> None:
    world = World(anthropic=answers(GOOD), openai=answers(GOOD), breaker_policy=BreakerPolicy(failure_threshold=1))
    elsewhere = world.breaker.acquire("anthropic")  # another worker's warm-up call is still out
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert outcome.model == "gpt-4.1"
    assert world.calls("anthropic") == []
    assert steps(outcome.attempts) == [
        ("claude-sonnet-4-6", "skipped", "skip_provider"),
        ("claude-opus-4-6", "skipped", "skip_provider"),
        ("gpt-4.1", "success", "success"),
    ]
    assert [a.error_code for a in outcome.attempts[:2]] == ["provider_warming", "provider_warming"]
    assert world.clock.sleeps == []
    world.breaker.record(elsewhere, success=True)  # proven: the next call goes to the primary again
    assert world.caller.call("normalize", REQUEST, parse_ok).model == "claude-sonnet-4-6"


def test_warming_never_fails_a_request_the_last_usable_provider_is_called_over_budget() -> None:
    world = World(anthropic=answers(GOOD), breaker_policy=BreakerPolicy(failure_threshold=1))
    world.breaker.acquire("anthropic")  # budget taken; no other provider has an adapter
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert outcome.model == "claude-sonnet-4-6"
    assert steps(outcome.attempts) == [("claude-sonnet-4-6", "success", "success")]


def test_warming_does_not_hand_a_request_to_the_offline_engine() -> None:
    world = World(anthropic=answers(GOOD), offline=answers(GOOD), breaker_policy=BreakerPolicy(failure_threshold=1))
    world.breaker.acquire("anthropic")  # budget taken; only the offline engine is left after it
    outcome = world.caller.call("normalize", REQUEST, parse_ok)
    assert outcome.model == "claude-sonnet-4-6"
    assert steps(outcome.attempts) == [("claude-sonnet-4-6", "success", "success")]
