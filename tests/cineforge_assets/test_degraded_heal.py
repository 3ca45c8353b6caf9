"""Degraded results heal themselves: the WARN check, the pure heal plan, and the sensor on a real instance.

The end-to-end tests drive the real assets against the loopback simulator: every provider down (the offline
engine serves), then up again. The sensor is evaluated with ``build_sensor_context`` and its requests are run
with ``execute_in_process``, as ``test_inbox_sensor.py`` does; the ``slow`` test lets ``dagster-daemon`` do
it all. No test sleeps for timing: breakers are opened with a short cooldown or an injected clock.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorResult,
    build_sensor_context,
)

from cineforge_assets.checks import (
    SCENES_SERVED,
    SERVED_BY_PREFERRED,
    evaluate_broll_inputs,
    evaluate_served_by_preferred,
)
from cineforge_assets.definitions import defs
from cineforge_assets.degraded import (
    ServedPart,
    ServiceQuality,
    assess_service,
    degraded_below_from_env,
    degraded_from_metadata,
    preferred_models,
    service_metadata,
)
from cineforge_assets.heal import (
    DailyBudget,
    HealCursor,
    HealPolicy,
    Materialization,
    absorb,
    build_heal_sensor,
    plan_heals,
    provider_ready,
    with_downstream,
)
from cineforge_assets.health import provider_health_job
from cineforge_assets.run_tags import HEAL_TAG
from cineforge_assets.sensors import sensors
from cineforge_assets.sources import register_source
from resources.ai import AIProviderResource
from resources.resilience.breaker_state import BreakerSnapshot
from resources.resilience.budget import Reservation
from resources.resilience.chain import DEFAULT_CHAINS
from resources.resilience.telemetry import AttemptRecord
from resources.simulator import ProviderSimulator
from tests.cineforge_assets.daemon_runs import wait_for_tagged_run
from tests.conftest import REPO_ROOT

# ------------------------------------------------------------------------------------ preferred models


def test_the_preferred_models_are_the_chains_leading_run_of_one_provider() -> None:
    assert preferred_models(DEFAULT_CHAINS["extract_scenes"]) == ("claude-sonnet-4-6", "claude-opus-4-6")
    assert preferred_models(DEFAULT_CHAINS["project_config"]) == (
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-6",
        "claude-opus-4-6",
    )
    assert preferred_models(["gpt-4.1", "offline"]) == ("gpt-4.1",)
    assert preferred_models(["offline"]) == ("offline",)  # offline mode: nothing better is configured
    # A deployment may count the first cross-provider fallback as good enough; never the offline engine.
    assert preferred_models(DEFAULT_CHAINS["extract_scenes"], 3)[-1] == "gpt-5.2"
    assert "offline" not in preferred_models(["claude-sonnet-4-6", "offline"], 5)


def test_degraded_below_reads_stage_index_pairs_and_refuses_nonsense() -> None:
    assert degraded_below_from_env("extract_scenes=3, project_config=1") == {"extract_scenes": 3, "project_config": 1}
    assert degraded_below_from_env("") == {}
    for bad in ("extract_scenes", "scenes=0", "=2", "scenes=x"):
        with pytest.raises(ValueError, match="CINEFORGE_DEGRADED_BELOW"):
            degraded_below_from_env(bad)


def attempt(model: str, *, outcome: str = "error", error_class: str | None = None, code: str | None = None) -> Any:
    provider = "offline" if model == "offline" else "anthropic" if model.startswith("claude") else "openai"
    return AttemptRecord(
        ts=0.0,
        stage="extract_scenes",
        attempt=1,
        provider=provider,
        model=model,
        outcome=outcome,  # type: ignore[arg-type]
        error_class=error_class,  # type: ignore[arg-type]
        error_code=code,
        decision="fallback_next_provider",
    )


CHAIN = DEFAULT_CHAINS["extract_scenes"]
SONNET = "claude-sonnet-4-6"


def test_an_answer_from_the_preferred_models_is_not_degraded() -> None:
    quality = assess_service("extract_scenes", CHAIN, [ServedPart("anthropic", SONNET)] * 2)
    assert not quality.degraded and quality.cause == ""
    assert quality.served == {"anthropic/claude-sonnet-4-6": 2}


def test_offline_parts_after_an_outage_are_degraded_and_healable() -> None:
    overloaded = (attempt(SONNET, error_class="transient", code="overloaded_error"),)
    skipped = (attempt(SONNET, outcome="skipped", code="breaker_open"),)
    quality = assess_service(
        "extract_scenes",
        CHAIN,
        [
            ServedPart("anthropic", SONNET),
            ServedPart("offline", "offline", overloaded),
            ServedPart("offline", "offline", skipped),
        ],
    )
    assert quality.degraded and quality.cause == "outage" and quality.healable
    assert quality.lower == {"offline/offline": 2} and quality.offline_parts == 2
    assert quality.preferred_provider == "anthropic"
    assert "2 of 3 part(s)" in quality.describe() and "anthropic was down" in quality.describe()
    assert degraded_from_metadata(service_metadata(quality, "live")) == (True, "outage", "anthropic", "live")


@pytest.mark.parametrize(
    ("attempts", "cached", "cause"),
    [
        ((attempt(SONNET, error_class="permanent", code="safety"),), False, "refused"),
        ((attempt(SONNET, outcome="skipped", code="no_adapter"),), False, "unavailable"),
        ((), True, "cached"),
        ((), False, "outage"),  # the stage's budget ran out before the preferred model: still an outage
    ],
)
def test_a_degraded_answer_a_rerun_cannot_improve_is_not_healable(
    attempts: tuple[AttemptRecord, ...], cached: bool, cause: str
) -> None:
    quality = assess_service("extract_scenes", CHAIN, [ServedPart("openai", "gpt-5.2", attempts, cached)])
    assert quality.degraded and quality.cause == cause
    assert quality.healable == (cause == "outage")


def test_broll_warns_only_when_clips_were_drawn_from_degraded_inputs() -> None:
    degraded = {"scenes": "extract_scenes: 3 of 3 part(s) served below ..."}
    assert not evaluate_broll_inputs(degraded, clips_requested=True).passed
    assert evaluate_broll_inputs(degraded, clips_requested=False).passed  # no clip, nothing drawn badly
    assert evaluate_broll_inputs({}, clips_requested=True).passed


def test_the_check_warns_without_blocking_and_passes_when_served_by_the_preferred_model() -> None:
    assert SCENES_SERVED.blocking is False and SCENES_SERVED.partitions_def is not None
    bad = evaluate_served_by_preferred(
        SCENES_SERVED,
        ServiceQuality("extract_scenes", (SONNET,), {"offline/offline": 3}, {"offline/offline": 3}, "outage"),
    )
    assert not bad.passed and bad.severity == AssetCheckSeverity.WARN
    assert bad.metadata["healable"].value is True and bad.metadata["offline_parts"].value == 3
    good = evaluate_served_by_preferred(SCENES_SERVED, ServiceQuality("extract_scenes", (SONNET,), {"a/b": 1}))
    assert good.passed


# ------------------------------------------------------------------------------------ the heal plan


def snap(provider: str, state: str, *, reopens_in: float = 0.0, failures: int = 0, opened_at: float = 100.0) -> Any:
    return BreakerSnapshot(
        provider=provider,
        state=state,  # type: ignore[arg-type]
        consecutive_failures=failures,
        window_calls=1,
        window_failures=0,
        opened_at=opened_at if state != "closed" else None,
        reopens_at=opened_at + 30 if state != "closed" else None,
        reopens_in_seconds=reopens_in,
        probes_in_flight=0,
    )


def mat(
    asset: str, partition: str, storage_id: int, *, degraded: bool = True, cause: str = "outage"
) -> Materialization:
    return Materialization(asset, partition, storage_id, degraded, cause, "anthropic")


POLICY = HealPolicy(max_runs_per_tick=2, max_in_flight=2)


def test_provider_ready_only_with_a_closed_breaker_and_no_failure_streak() -> None:
    assert provider_ready(snap("anthropic", "closed"))[0]
    assert provider_ready(None)[0]
    assert not provider_ready(snap("anthropic", "open", reopens_in=12))[0]
    assert not provider_ready(snap("anthropic", "half_open"))[0]
    assert not provider_ready(snap("anthropic", "closed", failures=2))[0]


def test_absorb_keeps_the_latest_degraded_materialization_and_a_good_one_clears_it() -> None:
    cursor = absorb(HealCursor(), [mat("scenes", "p", 5), mat("scenes", "q", 6), mat("scenes", "p", 3)])
    assert cursor.outstanding["scenes@p"].storage_id == 5 and cursor.scanned == {"scenes": 6}
    cursor = absorb(cursor, [mat("scenes", "p", 9, degraded=False), mat("scenes", "q", 8, cause="refused")])
    assert cursor.outstanding == {}
    assert HealCursor.from_json(cursor.to_json()) == cursor


def test_only_the_sensors_own_provider_mode_is_healed() -> None:
    drill = Materialization("scenes", "p", 5, True, "outage", "anthropic", "simulated")
    assert absorb(HealCursor(), [drill], mode="live").outstanding == {}
    assert "scenes@p" in absorb(HealCursor(), [drill], mode="simulated").outstanding


def test_the_plan_waits_for_the_breaker_probes_once_per_opening_then_heals_once() -> None:
    cursor = absorb(HealCursor(), [mat("scenes", "p", 5), mat("project_config", "p", 6)])
    cooling = plan_heals(cursor, {"anthropic": snap("anthropic", "open", reopens_in=20)}, policy=POLICY, in_flight=0)
    assert cooling.heals == [] and cooling.probes == []
    assert "p: waiting for anthropic" in cooling.waiting and any("20s of cooldown" in w for w in cooling.waiting)

    due = plan_heals(cursor, {"anthropic": snap("anthropic", "open")}, policy=POLICY, in_flight=0)
    assert due.heals == [] and due.probes == [("anthropic", 100.0)]
    again = plan_heals(due.cursor, {"anthropic": snap("anthropic", "open")}, policy=POLICY, in_flight=0)
    assert again.probes == []  # one probe per opening, however many ticks see it
    reopened = plan_heals(
        due.cursor, {"anthropic": snap("anthropic", "open", opened_at=200.0)}, policy=POLICY, in_flight=0
    )
    assert reopened.probes == [("anthropic", 200.0)]

    healed = plan_heals(due.cursor, {"anthropic": snap("anthropic", "closed")}, policy=POLICY, in_flight=0)
    (heal,) = healed.heals
    assert heal.partition == "p" and heal.run_key == "heal:p:6"
    assert heal.selection == ("scenes", "project_config", "veo3_broll")
    # Never twice for the same degraded materialization ...
    assert plan_heals(healed.cursor, {"anthropic": snap("anthropic", "closed")}, policy=POLICY, in_flight=0).heals == []
    # ... but a heal served badly again is a new materialization, healed after the next recovery.
    worse = absorb(healed.cursor, [mat("scenes", "p", 11)])
    (second,) = plan_heals(worse, {}, policy=POLICY, in_flight=0).heals
    assert second.run_key == "heal:p:11"


def test_the_plan_is_bounded_per_tick_and_by_heal_runs_in_flight() -> None:
    cursor = absorb(HealCursor(), [mat("scenes", p, i) for i, p in enumerate("abcde", start=1)])
    closed = {"anthropic": snap("anthropic", "closed")}
    first = plan_heals(cursor, closed, policy=POLICY, in_flight=0)
    assert [h.partition for h in first.heals] == ["a", "b"]
    assert any("over the heal budget" in w for w in first.waiting)
    assert len(plan_heals(first.cursor, closed, policy=POLICY, in_flight=1).heals) == 1
    assert plan_heals(first.cursor, closed, policy=POLICY, in_flight=2).heals == []
    off = plan_heals(cursor, closed, policy=HealPolicy(max_runs_per_tick=0), in_flight=0)
    assert off.heals == []


def test_the_daily_budget_bounds_the_heals_by_the_per_run_cap() -> None:
    assert DailyBudget(1.0, None, None).heals_that_fit() is None
    assert DailyBudget(1.0, 1.0, 0.1).heals_that_fit() == 0
    assert DailyBudget(0.75, 1.0, 0.1).heals_that_fit() == 2
    assert DailyBudget(0.99, 1.0, None).heals_that_fit() == 1  # unknown cost per run: one at a time
    cursor = absorb(HealCursor(), [mat("scenes", p, i) for i, p in enumerate("abc", start=1)])
    closed = {"anthropic": snap("anthropic", "closed")}
    one = plan_heals(cursor, closed, policy=POLICY, in_flight=0, budget=DailyBudget(0.85, 1.0, 0.1))
    assert [h.partition for h in one.heals] == ["a"]
    spent = plan_heals(cursor, closed, policy=POLICY, in_flight=0, budget=DailyBudget(1.0, 1.0, 0.1))
    assert spent.heals == [] and any("$1.0000 spent today of $1.0000 daily cap" in w for w in spent.waiting)
    assert spent.cursor.requested == {}  # nothing used up: healed once the budget allows


def test_a_deleted_partition_leaves_the_plan() -> None:
    cursor = absorb(HealCursor(), [mat("scenes", "gone", 1), mat("scenes", "here", 2)])
    plan = plan_heals(cursor, {}, policy=POLICY, in_flight=0, live_partitions={"here"})
    assert [h.partition for h in plan.heals] == ["here"] and "scenes@gone" not in plan.cursor.outstanding


def test_downstream_follows_the_pipeline_order() -> None:
    assert with_downstream(["project_config"]) == ["project_config", "veo3_broll"]
    assert with_downstream(["scenes", "canonical_script"])[0] == "canonical_script"
    assert with_downstream([]) == []


def test_the_heal_sensor_is_registered_and_stopped_offline() -> None:
    assert "degraded_heal" in {s.name for s in sensors}
    assert build_heal_sensor(mode=lambda: "offline").default_status.value == "STOPPED"
    assert build_heal_sensor(mode=lambda: "simulated").default_status.value == "RUNNING"
    assert defs.get_repository_def().get_sensor_def("degraded_heal") is not None


def test_heal_runs_and_probes_target_jobs_of_the_code_location() -> None:
    repo = defs.get_repository_def()
    for name in ("screenplay_pipeline", provider_health_job.name):
        assert repo.get_job(name) is not None


# ------------------------------------------------------------------------------------ on a real instance

PROSE = """The harbor at dawn is grey and quiet. Maria walks along the pier with a letter in her hand.

"I told you he would come back," Maria says.

That night, in the kitchen of the old house, Tomas waits by the stove. He reads the letter twice.

Tomas says, "Then we leave tomorrow."
"""
WHOLE_CHAIN_DOWN = "primary-down:provider=*"


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


def ai_config(sim: ProviderSimulator, store_url: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "mode": "simulated",
        "simulator_url": sim.base_url,
        "breaker_store_url": store_url,
        "telemetry_path": str(tmp_path / "events.jsonl"),
        # Short enough that the cooldown is over by the sensor's next tick: the test never waits for it.
        "breaker_cooldown_seconds": 0.01,
        "backoff_base_seconds": 0.001,
        "backoff_cap_seconds": 0.005,
        "seed": 3,
    }


def prose_partition(tmp_path: Path, instance: DagsterInstance) -> str:
    source = tmp_path / "harbor-letter.txt"
    source.write_text(PROSE)
    key = register_source(source)
    instance.add_dynamic_partitions("screenplays", [key])
    return key


def check_evaluations(instance: DagsterInstance, run_id: str) -> dict[str, Any]:
    """asset -> the served_by_preferred evaluation a run recorded."""
    from dagster import DagsterEventType

    found: dict[str, Any] = {}
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records:
        event = record.event_log_entry.dagster_event
        assert event is not None
        data = event.event_specific_data
        if data.check_name == SERVED_BY_PREFERRED:  # type: ignore[union-attr]
            found[data.asset_key.to_user_string()] = data  # type: ignore[union-attr]
    return found


def latest_metadata(instance: DagsterInstance, asset: str, partition: str) -> dict[str, Any]:
    from dagster import AssetRecordsFilter

    (record,) = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    assert record.asset_materialization is not None
    return {k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()}


def tick(instance: DagsterInstance, ai: AIProviderResource, cursor: str | None) -> SensorResult:
    sensor = build_heal_sensor(policy=HealPolicy(), default_status=None, mode=lambda: "simulated")
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"ai": ai})
    result = sensor(context)
    assert isinstance(result, SensorResult)
    return result


def launch(instance: DagsterInstance, request: RunRequest, run_config: dict[str, Any]) -> Any:
    job = defs.resolve_job_def(request.job_name or "screenplay_pipeline")
    if request.asset_selection is not None:
        job = job.get_subset(asset_selection=set(request.asset_selection))
    return job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags={**request.tags, "dagster/run_key": request.run_key or ""},
        run_config=run_config,
        raise_on_error=False,
    )


@pytest.mark.usefixtures("data_root")
def test_outage_offline_serves_recovery_and_the_sensor_heals_the_partition(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    store_url = f"sqlite:///{tmp_path / 'breakers.sqlite'}"
    config = ai_config(sim, store_url, tmp_path)
    ai = AIProviderResource(**config)
    veo3 = {"mode": "simulated", "simulator_url": sim.base_url, "poll_interval_seconds": 0.01}
    run_config = {"resources": {"ai": {"config": config}, "veo3": {"config": veo3}}}
    key = prose_partition(tmp_path, instance)

    # Outage: every provider answers 529; the offline engine serves every AI-backed stage.
    sim.set_profile(WHOLE_CHAIN_DOWN)
    outage = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, run_config=run_config, raise_on_error=False
    )
    assert outage.success
    checks = check_evaluations(instance, outage.run_id)
    assert set(checks) == {"canonical_script", "scenes", "project_config", "veo3_broll"}
    assert all(not c.passed and c.severity == AssetCheckSeverity.WARN for c in checks.values())
    assert "clips drawn from degraded inputs" in (checks["veo3_broll"].description or "")
    assert latest_metadata(instance, "scenes", key)["degraded_cause"] == "outage"
    assert latest_metadata(instance, "project_config", key)["provider"] == "offline"

    # Tick 1: every breaker is open (its short cooldown over): a probe is requested, nothing is healed yet.
    first = tick(instance, ai, None)
    requests = first.run_requests or []
    assert {r.job_name for r in requests} == {"provider_health"}
    assert {r.tags["cineforge/probe_for"] for r in requests} == {"anthropic"}
    # The same opening never gets a second probe.
    assert not (tick(instance, ai, first.cursor).run_requests or [])

    # Recovery: the providers answer again and the probe (the daemon would launch it) closes the breaker.
    sim.set_profile("none")
    (probe_request,) = requests
    assert launch(instance, probe_request, run_config).success

    # With today's budget spent, nothing is healed (and nothing used up); with room, the heal goes ahead.
    capped = AIProviderResource(**{**config, "daily_budget_usd": 0.01})
    ledger = capped.ledger("an-earlier-run")
    reservation = ledger.reserve(0.0)
    assert isinstance(reservation, Reservation)
    ledger.settle(reservation, 0.02)
    ledger.store.close()
    broke = tick(instance, capped, first.cursor)
    assert not (broke.run_requests or []) and broke.skip_reason is not None
    assert "daily budget: $0.0200 spent today of $0.0100 daily cap" in (broke.skip_reason.skip_message or "")

    # Tick 2: the partition's degraded assets and their downstream are re-materialized, once.
    second = tick(instance, ai, broke.cursor)
    (heal,) = second.run_requests or []
    assert heal.partition_key == key and heal.tags[HEAL_TAG] == "true"
    assert {k.to_user_string() for k in heal.asset_selection or []} == {
        "canonical_script",
        "scenes",
        "project_config",
        "veo3_broll",
    }
    healed = launch(instance, heal, run_config)
    assert healed.success
    checks = check_evaluations(instance, healed.run_id)
    assert set(checks) == {"canonical_script", "scenes", "project_config", "veo3_broll"}
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items()}
    assert latest_metadata(instance, "scenes", key)["degraded"] is False
    assert latest_metadata(instance, "project_config", key)["provider"] == "anthropic"

    # Tick 3: nothing left to heal, and nothing healed twice.
    third = tick(instance, ai, second.cursor)
    assert not (third.run_requests or [])
    assert third.skip_reason is not None and third.skip_reason.skip_message == "nothing degraded"
    # Partitioned checks: the partition's own latest evaluation is green.
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [AssetCheckKey(AssetKey("scenes"), SERVED_BY_PREFERRED)]
    )
    assert record[AssetCheckKey(AssetKey("scenes"), SERVED_BY_PREFERRED)].run_id == healed.run_id


@pytest.mark.usefixtures("data_root")
def test_a_partition_served_by_its_preferred_models_is_left_alone(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    config = ai_config(sim, f"sqlite:///{tmp_path / 'breakers.sqlite'}", tmp_path)
    key = prose_partition(tmp_path, instance)
    result = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, run_config={"resources": {"ai": {"config": config}}}
    )
    assert all(c.passed for c in check_evaluations(instance, result.run_id).values())
    outcome = tick(instance, AIProviderResource(**config), None)
    assert not (outcome.run_requests or []) and outcome.skip_reason is not None


# ------------------------------------------------------------------------------------ with the daemon


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def daemon_with_sim(tmp_path: Path) -> Iterator[tuple[DagsterInstance, Path, ProviderSimulator, Path]]:
    """``dagster-daemon run`` in simulated mode against a simulator this process controls."""
    home, data = tmp_path / "daemon_home", tmp_path / "daemon_data"
    home.mkdir()
    data.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    instance = DagsterInstance.from_config(str(home))
    instance.get_runs(limit=1)
    instance.all_instigator_state()
    with ProviderSimulator() as simulator:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env.update(
            DAGSTER_HOME=str(home),
            CINEFORGE_DATA=str(data),
            CINEFORGE_SIMULATOR_URL=simulator.base_url,
            CINEFORGE_HEAL_INTERVAL_SECONDS="2",
            PYTHONUNBUFFERED="1",
        )
        env.pop("CINEFORGE_PROVIDER_MODE", None)
        log = (tmp_path / "daemon.log").open("wb")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO_ROOT / "workspace.yaml")],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield instance, home, simulator, tmp_path / "daemon.log"
        finally:
            _stop_group(proc)
            log.close()
            instance.dispose()


@pytest.mark.slow
def test_dagster_daemon_heals_a_partition_the_offline_engine_served(
    daemon_with_sim: tuple[DagsterInstance, Path, ProviderSimulator, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance, home, sim, log = daemon_with_sim
    monkeypatch.setenv("CINEFORGE_DATA", str(tmp_path / "daemon_data"))
    # The daemon's own resource (from its environment): the same breaker store and breaker keys.
    config = {
        "mode": "simulated",
        "simulator_url": sim.base_url,
        "breaker_store_url": f"sqlite:///{home.resolve() / 'cineforge_breakers.sqlite'}",
    }
    key = prose_partition(tmp_path, instance)
    sim.set_profile(WHOLE_CHAIN_DOWN)
    outage = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, run_config={"resources": {"ai": {"config": config}}}
    )
    assert outage.success and latest_metadata(instance, "scenes", key)["degraded"] is True
    sim.set_profile("none")  # recovery; from here on nobody presses a button

    # The bound covers the breakers' open period (30 s at most), a probe run and a heal run.
    status = wait_for_tagged_run(instance, {HEAL_TAG: "true"}, timeout_s=240.0)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert status == DagsterRunStatus.SUCCESS, f"heal run status {status}; daemon log tail:\n{tail}"
    (run,) = instance.get_runs(filters=RunsFilter(tags={HEAL_TAG: "true"}))
    assert run.tags["dagster/partition"] == key and run.tags.get("dagster/sensor_name") == "degraded_heal"
    # A probe closed the breaker first: the sensor's (or the 5-minute schedule's, if its slot came first).
    assert instance.get_runs(filters=RunsFilter(job_name="provider_health", statuses=[DagsterRunStatus.SUCCESS]))
    checks = check_evaluations(instance, run.run_id)
    assert checks and all(c.passed for c in checks.values())
    assert latest_metadata(instance, "scenes", key)["degraded"] is False


SAMPLE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"


@pytest.mark.usefixtures("data_root")
def test_a_heal_run_asks_the_preferred_model_again_instead_of_reusing_cached_fallback_answers(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    """Split stages keep answered parts in the response cache; a heal must not be served the fallback's
    cached answers again (it would stay degraded for good)."""
    config = {**ai_config(sim, f"sqlite:///{tmp_path / 'breakers.sqlite'}", tmp_path), "call_output_tokens": 600}
    run_config = {"resources": {"ai": {"config": config}}}
    source = tmp_path / SAMPLE.name
    shutil.copyfile(SAMPLE, source)
    key = register_source(source)
    instance.add_dynamic_partitions("screenplays", [key])
    sim.set_profile("primary-down:provider=anthropic")  # openai's gpt-5.2 serves every batch
    outage = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, run_config=run_config
    )
    before = latest_metadata(instance, "scenes", key)
    assert before["enrich_parts"] > 1 and before["degraded_cause"] == "outage"
    assert before["served_by"] == {"openai/gpt-5.2": before["enrich_parts"]}
    assert outage.success

    sim.set_profile("none")
    heal = RunRequest(
        run_key="heal:test",
        job_name="screenplay_pipeline",
        partition_key=key,
        asset_selection=[AssetKey("scenes")],
        tags={HEAL_TAG: "true"},
    )
    assert launch(instance, heal, run_config).success
    after = latest_metadata(instance, "scenes", key)
    assert after["degraded"] is False, after["service"]
    assert after["parts_from_cache"] == 0 and set(after["served_by"]) == {"anthropic/claude-sonnet-4-6"}
