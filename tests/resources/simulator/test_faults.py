from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from resources.simulator import (
    FAULT_KINDS,
    PROFILES,
    FaultInjector,
    FaultProfile,
    ManualClock,
    profile_from_spec,
)


def test_every_named_profile_builds_with_defaults() -> None:
    for name in PROFILES:
        if name != "fault":
            assert profile_from_spec(name).name == name
    assert profile_from_spec("none").rules == []


def test_named_profiles_match_their_promise() -> None:
    (storm,) = profile_from_spec("overload-storm").rules
    assert (storm.kind, storm.provider, storm.start_s, storm.duration_s) == (
        "overloaded",
        "anthropic",
        0.0,
        20.0,
    )
    (down,) = profile_from_spec("primary-down").rules
    assert (down.kind, down.provider, down.duration_s) == ("overloaded", "anthropic", None)
    (limit,) = profile_from_spec("rate-limit").rules
    assert (limit.kind, limit.provider, limit.retry_after) == ("rate_limit", "anthropic", 2.0)
    assert [r.kind for r in profile_from_spec("flaky").rules] == ["timeout", "reset"]
    assert all(r.provider == "*" for r in profile_from_spec("flaky").rules)
    (auth,) = profile_from_spec("auth").rules
    assert (auth.kind, auth.provider) == ("auth", "anthropic")


def test_profile_parameters_override_defaults_and_are_checked() -> None:
    (rule,) = profile_from_spec("overload-storm:duration=5,provider=openai,model=gpt-*").rules
    assert (rule.duration_s, rule.provider, rule.model) == (5.0, "openai", "gpt-*")
    with pytest.raises(ValueError, match="no parameter"):
        profile_from_spec("overload-storm:durration=5")
    with pytest.raises(ValueError, match="not a number"):
        profile_from_spec("overload-storm:duration=soon")
    with pytest.raises(ValueError, match="unknown fault profile"):
        profile_from_spec("earthquake")
    with pytest.raises(ValueError, match="kind="):
        profile_from_spec("fault:kind=meteor")


def test_profiles_combine_and_load_from_json(tmp_path: object) -> None:
    combined = profile_from_spec("overload-storm:duration=5+safety:rate=0.5")
    assert [r.kind for r in combined.rules] == ["overloaded", "safety"]
    raw = {"name": "mine", "rules": [{"kind": "reset", "provider": "gemini", "probability": 0.5}]}
    assert profile_from_spec(json.dumps(raw)).rules[0].provider == "gemini"
    with pytest.raises(ValidationError):
        profile_from_spec(json.dumps({"rules": [{"kind": "meteor"}]}))


def test_fault_kinds_are_all_reachable_through_the_fault_profile() -> None:
    for kind in FAULT_KINDS:
        (rule,) = profile_from_spec(f"fault:kind={kind}").rules
        assert rule.kind == kind


def test_time_window_follows_the_injected_clock() -> None:
    clock = ManualClock(1000.0)
    injector = FaultInjector("overload-storm:duration=5", clock=clock)
    assert injector.decide("anthropic", "claude-sonnet-4-5") is not None
    assert injector.decide("openai", "gpt-4o-mini") is None  # other providers unaffected
    clock.advance(4.99)
    assert injector.decide("anthropic", "claude-sonnet-4-5") is not None
    clock.advance(0.01)
    assert injector.decide("anthropic", "claude-sonnet-4-5") is None  # recovered
    injector.reset()  # the storm starts again from now
    assert injector.decide("anthropic", "claude-sonnet-4-5") is not None


def test_switching_profile_restarts_the_window() -> None:
    clock = ManualClock()
    injector = FaultInjector("none", clock=clock)
    clock.advance(100)
    injector.set_profile("overload-storm:duration=5,start=1")
    assert injector.decide("anthropic", "m") is None  # not started yet
    clock.advance(1)
    assert injector.decide("anthropic", "m") is not None


def test_random_faults_are_seeded_and_at_the_configured_rate() -> None:
    def draws(seed: int) -> list[str | None]:
        injector = FaultInjector("flaky", seed=seed, clock=ManualClock())
        return [(rule.kind if (rule := injector.decide("gemini", "m")) else None) for _ in range(4000)]

    first = draws(7)
    assert first == draws(7)
    assert first != draws(8)
    rate = sum(kind is not None for kind in first) / len(first)
    assert 0.08 < rate < 0.12  # flaky = 10%, split between timeouts and resets
    assert {"timeout", "reset"} == {kind for kind in first if kind}


def test_only_tasks_restricts_a_rule() -> None:
    injector = FaultInjector("safety:rate=1,tasks=enrich_scenes", clock=ManualClock())
    assert injector.decide("openai", "m", "enrich_scenes") is not None
    assert injector.decide("openai", "m", "normalize") is None
    assert injector.decide("openai", "m", None) is None


def test_profile_model_round_trips() -> None:
    profile = profile_from_spec("overload-storm+flaky")
    assert FaultProfile.model_validate_json(profile.model_dump_json()) == profile
