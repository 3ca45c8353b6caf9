"""The health probe's decisions: which breakers get a probe and which model a probe calls.

The probe job itself (a real call through the simulator) is tested with the schedules, in
``tests/cineforge_assets/test_schedules.py``.
"""

from __future__ import annotations

from resources.resilience.breaker_state import BreakerSnapshot
from resources.resilience.health_probe import plan_probes, probe_model_for


def snap(provider: str, state: str, *, reopens_in: float = 0.0, probes: int = 0) -> BreakerSnapshot:
    return BreakerSnapshot(
        provider=provider,
        state=state,  # type: ignore[arg-type]
        consecutive_failures=5 if state != "closed" else 0,
        window_calls=5,
        window_failures=5 if state != "closed" else 0,
        opened_at=1.0 if state != "closed" else None,
        reopens_at=1.0 + reopens_in if state != "closed" else None,
        reopens_in_seconds=reopens_in,
        probes_in_flight=probes,
    )


def test_plan_probes_only_open_breakers_past_their_cooldown_and_free_half_open_slots() -> None:
    snapshots = {
        "anthropic": snap("anthropic", "open"),
        "openai": snap("openai", "open", reopens_in=12.0),
        "gemini": snap("gemini", "closed"),
        "busy": snap("busy", "half_open", probes=1),
        "idle": snap("idle", "half_open", probes=0),
        "offline": snap("offline", "open"),
    }
    plans = {p.provider: p for p in plan_probes(snapshots, max_probes=1)}
    assert {p: plan.action for p, plan in plans.items()} == {
        "anthropic": "probe",
        "openai": "none",
        "gemini": "none",
        "busy": "none",
        "idle": "probe",
    }
    assert "12s left" in plans["openai"].reason
    assert {p.provider: p.action for p in plan_probes(snapshots, max_probes=2)}["busy"] == "probe"


def test_probe_model_is_the_providers_cheapest_configured_model() -> None:
    assert probe_model_for("anthropic") == "claude-haiku-4-5-20251001"
    assert probe_model_for("openai") == "gpt-4.1"
    assert probe_model_for("gemini") == "gemini-3-flash-preview"
    chains = {"x": ["gpt-5.2", "gpt-4.1-mini", "claude-opus-4-6", "claude-sonnet-4-6"]}
    assert probe_model_for("openai", chains) == "gpt-4.1-mini"
    assert probe_model_for("anthropic", chains) == "claude-sonnet-4-6"
    assert probe_model_for("gemini", chains) is None
    assert probe_model_for("openai", chains, {"openai": "o4-mini"}) == "o4-mini"
