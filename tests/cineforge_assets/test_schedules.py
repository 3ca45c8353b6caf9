"""Schedules and the provider health probe.

The probe runs the real ``provider_health`` job against the loopback simulator with a SQLite breaker
store; breakers are opened "in the past" by a ``CircuitBreaker`` with an injected clock, so a cooldown
has elapsed without anyone waiting for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, AssetSelection, DagsterEventType, DailyPartitionsDefinition, asset

from cineforge_assets.assets.reliability import reliability_report
from cineforge_assets.definitions import defs
from cineforge_assets.health import provider_health_job
from cineforge_assets.schedules import (
    HEALTH_SCHEDULE_NAME,
    RELIABILITY_JOB_NAME,
    RELIABILITY_SCHEDULE_NAME,
    provider_health_schedule,
    reliability_report_schedule,
    schedules,
)
from resources.ai import AIProviderResource
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_state import BreakerSnapshot
from resources.resilience.breaker_store import store_from_url
from resources.resilience.health_probe import HEALTH_STAGE
from resources.simulator import ProviderSimulator

# ------------------------------------------------------------------------------------ schedules


def by_name() -> dict[str, Any]:
    return {s.name: s for s in schedules}


def test_health_probe_runs_every_five_minutes_and_only_by_default_with_real_providers() -> None:
    schedule = by_name()[HEALTH_SCHEDULE_NAME]
    assert schedule.cron_schedule == "*/5 * * * *"
    assert schedule.job_name == "provider_health"
    assert provider_health_schedule("offline").default_status.value == "STOPPED"
    assert provider_health_schedule("simulated").default_status.value == "RUNNING"
    assert provider_health_schedule("live").default_status.value == "RUNNING"


def test_reliability_report_is_scheduled_daily_and_its_job_resolves_in_definitions() -> None:
    schedule = by_name()[RELIABILITY_SCHEDULE_NAME]
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.default_status.value == "RUNNING"
    job = defs.resolve_job_def(RELIABILITY_JOB_NAME)
    assert job.asset_layer.executable_asset_keys == {AssetKey("reliability_report")}


def test_every_schedule_job_is_loadable() -> None:
    repo = defs.get_repository_def()
    for schedule in schedules:
        assert repo.get_job(schedule.job_name) is not None


def test_a_partitioned_report_gets_no_guessed_schedule() -> None:
    @asset(name="reliability_report", partitions_def=DailyPartitionsDefinition(start_date="2026-01-01"))
    def partitioned_report() -> None:
        return None

    with pytest.warns(UserWarning, match="partitioned"):
        assert reliability_report_schedule(partitioned_report) is None


def test_report_job_selects_only_the_report() -> None:
    schedule = reliability_report_schedule(reliability_report)
    assert schedule is not None
    selection = schedule.job.selection  # type: ignore[union-attr]
    assert selection == AssetSelection.assets(AssetKey("reliability_report"))


# ------------------------------------------------------------------------------------ the probe job


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'breakers.sqlite'}"


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


def open_breaker(
    store_url: str, provider: str, *, seconds_ago: float, identities: dict[str, str] | None = None
) -> None:
    """Open ``provider``'s breaker as if its failures happened ``seconds_ago`` (default policy: a cold
    provider opens when both of its 2 warm-up calls fail, for a first open period of 5 s). ``identities``: a resource's
    ``breaker_identities()``, to open the breaker that resource's calls obey."""
    policy = BreakerPolicy()
    breaker = CircuitBreaker(
        store_from_url(store_url), policy, clock=lambda: time.time() - seconds_ago, identities=identities
    )
    try:
        for _ in range(policy.warm_up_budget):
            breaker.record(breaker.acquire(provider), success=False)
        assert breaker.state(provider) == "open"
    finally:
        breaker.store.close()


def one_failure(store_url: str, provider: str, identities: dict[str, str] | None = None) -> None:
    """A closed breaker with one failure on record (successes alone are buffered, not stored)."""
    breaker = CircuitBreaker(store_from_url(store_url), BreakerPolicy(), identities=identities)
    try:
        breaker.record(breaker.acquire(provider), success=False)
    finally:
        breaker.store.close()


def states(store_url: str, identities: dict[str, str] | None = None) -> dict[str, BreakerSnapshot]:
    breaker = CircuitBreaker(store_from_url(store_url), BreakerPolicy(), identities=identities)
    try:
        return breaker.snapshot()
    finally:
        breaker.store.close()


def run_probe(instance: Any, ai: AIProviderResource) -> tuple[Any, dict[str, Any]]:
    result = provider_health_job.execute_in_process(instance=instance, resources={"ai": ai})
    (output,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_OUTPUT]
    metadata = {k: getattr(v, "value", v) for k, v in output.step_output_data.metadata.items()}
    return result, metadata


def simulated(sim: ProviderSimulator, store_url: str, tmp_path: Path) -> AIProviderResource:
    return AIProviderResource(
        mode="simulated",
        simulator_url=sim.base_url,
        breaker_store_url=store_url,
        telemetry_path=str(tmp_path / "events.jsonl"),
    )


def test_probe_closes_a_recovered_providers_breaker_and_leaves_the_others_alone(
    instance: Any, sim: ProviderSimulator, store_url: str, tmp_path: Path
) -> None:
    ai = simulated(sim, store_url, tmp_path)
    ids = ai.breaker_identities()
    open_breaker(store_url, "anthropic", seconds_ago=100.0, identities=ids)  # cooldown (30 s) long over
    open_breaker(store_url, "openai", seconds_ago=0.0, identities=ids)  # still cooling down
    one_failure(store_url, "gemini", ids)

    result, metadata = run_probe(instance, ai)

    assert result.success
    after = states(store_url, ids)
    assert after["anthropic"].state == "closed"
    assert after["openai"].state == "open"
    assert after["gemini"].state == "closed"
    calls = sim.stats()["by_model"]
    assert calls == {"anthropic": {"claude-haiku-4-5-20251001": {"ok": 1}}}  # one cheap call, nobody else
    assert metadata["probed"] == 1 and metadata["recovered"] == 1 and metadata["open"] == 1
    assert "| anthropic | closed |" in metadata["states"]
    assert "recovered (claude-haiku-4-5-20251001)" in metadata["states"]
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    attempts = [line for line in lines if line.get("kind") == "attempt"]
    assert [(a["stage"], a["provider"], a["outcome"], a["breaker_state"]) for a in attempts] == [
        (HEALTH_STAGE, "anthropic", "success", "half_open")
    ]
    transitions = [(t["from_state"], t["to_state"]) for t in lines if t.get("kind") == "breaker_transition"]
    assert transitions == [("open", "half_open"), ("half_open", "closed")]


def test_a_failed_probe_reopens_the_breaker_for_a_longer_open_period(
    instance: Any, sim: ProviderSimulator, store_url: str, tmp_path: Path
) -> None:
    sim.set_profile("primary-down:provider=anthropic")
    ai = simulated(sim, store_url, tmp_path)
    ids = ai.breaker_identities()
    open_breaker(store_url, "anthropic", seconds_ago=100.0, identities=ids)
    before = states(store_url, ids)["anthropic"]

    result, metadata = run_probe(instance, ai)

    assert result.success  # a provider still down is news, not a failed probe run
    after = states(store_url, ids)["anthropic"]
    assert after.state == "open"
    assert after.opened_at is not None and before.opened_at is not None and after.opened_at > before.opened_at
    policy = BreakerPolicy()
    assert before.reopens_at is not None and after.reopens_at is not None
    assert before.reopens_at - before.opened_at == pytest.approx(policy.first_cooldown_seconds)
    assert after.reopens_at - after.opened_at == pytest.approx(policy.open_period(policy.first_cooldown_seconds))
    assert sim.stats()["by_model"]["anthropic"] == {"claude-haiku-4-5-20251001": {"overloaded": 1}}
    assert metadata["probed"] == 1 and metadata["recovered"] == 0
    assert "still_down" in metadata["states"]


def test_offline_mode_logs_states_but_has_nothing_to_probe_with(
    instance: Any, store_url: str, tmp_path: Path
) -> None:
    open_breaker(store_url, "anthropic", seconds_ago=100.0)
    ai = AIProviderResource(mode="offline", breaker_store_url=store_url, telemetry_path=str(tmp_path / "e.jsonl"))
    result, metadata = run_probe(instance, ai)
    assert result.success
    assert states(store_url)["anthropic"].state == "open"  # untouched: no adapter, no permit taken
    assert "not_probed" in metadata["states"]
    assert metadata["recovered"] == 0


def test_probe_with_no_breakers_yet_is_a_quiet_success(instance: Any, store_url: str, tmp_path: Path) -> None:
    ai = AIProviderResource(mode="offline", breaker_store_url=store_url, telemetry_path=str(tmp_path / "e.jsonl"))
    result, metadata = run_probe(instance, ai)
    assert result.success and metadata["providers"] == 0 and metadata["probed"] == 0
