"""Dagster-native resilience on a real temporary instance, with faults injected by the loopback simulator.

Each stage gets its own model so the simulator's per-model counts say which stage called whom:
normalize (canonical_script) -> gpt-4.1, extract_scenes (scenes) -> claude-sonnet-4-6,
project_config -> gemini-3-flash-preview.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_run_status_sensor_context,
)

from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.definitions import defs
from cineforge_assets.run_retry import decide_run_retry, transient_run_retry
from cineforge_assets.run_tags import AUTO_RETRY_NUMBER_TAG, RETRY_OF_TAG
from cineforge_assets.sources import register_source
from resources.simulator import ProviderSimulator

pytestmark = pytest.mark.usefixtures("data_root")

PROSE = """The harbor at dawn is grey and quiet. Maria walks along the pier with a letter in her hand.

"I told you he would come back," Maria says.

That night, in the kitchen of the old house, Tomas waits by the stove. He reads the letter twice.

Tomas says, "Then we leave tomorrow."
"""
CHAINS = {
    "normalize": ["gpt-4.1"],
    "extract_scenes": ["claude-sonnet-4-6"],
    "project_config": ["gemini-3-flash-preview"],
}


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


def ai_config(sim: ProviderSimulator, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "mode": "simulated",
        "simulator_url": sim.base_url,
        "chains": CHAINS,
        "max_attempts": 2,
        "attempts_per_model": 2,
        "backoff_base_seconds": 0.001,
        "backoff_cap_seconds": 0.005,
        "breaker_store_url": f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        "breaker_failure_threshold": 50,  # the breaker stays out of these tests unless one asks for it
        "breaker_warm_up_calls": 50,
        "seed": 7,
    }
    config.update(overrides)
    return {"resources": {"ai": {"config": config}}}


def calls(sim: ProviderSimulator, model: str) -> int:
    """Requests the simulator received for ``model``, whatever their outcome."""
    return sum(sum(models.get(model, {}).values()) for models in sim.stats()["by_model"].values())


def prose_partition(tmp_path: Path, instance: DagsterInstance, name: str = "harbor-letter.txt") -> str:
    source = tmp_path / name
    source.write_text(PROSE)
    key = register_source(source)
    instance.add_dynamic_partitions("screenplays", [key])
    return key


def run_pipeline(instance: DagsterInstance, key: str, run_config: dict[str, Any]):  # noqa: ANN201
    return defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, run_config=run_config, raise_on_error=False
    )


def step_events(instance: DagsterInstance, run_id: str, kind: DagsterEventType, step: str) -> list[Any]:
    records = instance.get_records_for_run(run_id, of_type=kind).records
    return [
        r.event_log_entry.dagster_event
        for r in records
        if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.step_key == step
    ]


def test_transient_failure_beyond_the_layer_budget_is_retried_by_the_step_policy(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    key = prose_partition(tmp_path, instance)
    # Two 500s exhaust the stage's in-resource budget (2 attempts), the third call succeeds.
    sim.set_profile("fault:kind=server_error,tasks=enrich_scenes,hits=2")
    result = run_pipeline(instance, key, ai_config(sim, tmp_path))
    assert result.success
    retries = step_events(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY, "scenes")
    assert len(retries) == 1
    assert retries[0].event_specific_data.seconds_to_wait is not None
    assert retries[0].event_specific_data.seconds_to_wait > 0
    assert step_events(instance, result.run_id, DagsterEventType.STEP_SUCCESS, "scenes")
    meta = instance.get_latest_materialization_event(AssetKey("scenes")).asset_materialization.metadata
    assert meta["provider"].value == "anthropic" and meta["model"].value == "claude-sonnet-4-6"


def test_incident_replay_sonnet_529_for_the_whole_run_falls_back_and_completes(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    key = prose_partition(tmp_path, instance)
    sim.set_profile("primary-down")
    config = ai_config(sim, tmp_path, chains={}, max_attempts=6)
    result = run_pipeline(instance, key, config)
    assert result.success
    meta = instance.get_latest_materialization_event(AssetKey("scenes")).asset_materialization.metadata
    assert meta["provider"].value != "anthropic"
    assert meta["fallback_taken"].value is True
    assert meta["final_error_class"].value == "transient"
    assert "overloaded" in meta["attempts"].value and "fallback_next_provider" in meta["attempts"].value
    observations = [
        r.event_log_entry.dagster_event.event_specific_data.asset_observation.metadata["event"].value
        for r in instance.get_records_for_run(
            result.run_id, of_type=DagsterEventType.ASSET_OBSERVATION
        ).records
    ]
    assert "stage_fallback" in observations
    # Telemetry for log shippers: one JSON object per line, the incident's 529s among them.
    from cineforge_assets.paths import telemetry_path

    lines = [json.loads(line) for line in telemetry_path().read_text().splitlines()]
    overloads = [r for r in lines if r.get("kind") == "attempt" and r.get("status") == 529]
    assert overloads and all(r["provider"] == "anthropic" for r in overloads)


def test_permanent_failure_makes_one_attempt_and_resume_reuses_upstream(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    key = prose_partition(tmp_path, instance)
    sim.set_profile("fault:kind=safety,tasks=enrich_scenes")
    failed = run_pipeline(instance, key, ai_config(sim, tmp_path))
    assert not failed.success
    assert calls(sim, "claude-sonnet-4-6") == 1  # exactly one attempt, no retry, no fallback storm
    assert not step_events(instance, failed.run_id, DagsterEventType.STEP_UP_FOR_RETRY, "scenes")
    failure = step_events(instance, failed.run_id, DagsterEventType.STEP_FAILURE, "scenes")[0]
    metadata = failure.step_failure_data.user_failure_data.metadata
    assert metadata["error_class"].value == "permanent"
    assert metadata["error_code"].value == "safety_refusal"
    assert metadata["provider"].value == "anthropic"
    run = instance.get_run_by_id(failed.run_id)
    assert run.tags["cineforge/failure_class"] == "permanent"
    normalize_calls = calls(sim, "gpt-4.1")
    assert normalize_calls == 1

    sim.set_profile("none")  # the cause is fixed
    code = cineforge_main(["resume", failed.run_id])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["success"] is True, json.dumps(summary.get("failure"))
    assert summary["resumed_from"] == failed.run_id
    assert calls(sim, "gpt-4.1") == normalize_calls  # canonical_script was not run again
    resumed = instance.get_run_by_id(summary["run_id"])
    assert resumed.parent_run_id == failed.run_id
    assert "canonical_script" not in {e.step_key for e in _all_step_starts(instance, summary["run_id"])}


def test_a_bug_in_an_assets_own_code_fails_once_instead_of_spending_the_retry_policy(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cineforge_assets.assets.ingest as ingest

    def buggy_split_scenes(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("'NoneType' object is not iterable")  # what a bug in the splitter looks like

    monkeypatch.setattr(ingest, "split_scenes", buggy_split_scenes)
    key = prose_partition(tmp_path, instance)
    failed = run_pipeline(instance, key, ai_config(sim, tmp_path))
    assert not failed.success
    assert not step_events(instance, failed.run_id, DagsterEventType.STEP_UP_FOR_RETRY, "scenes")
    failure = step_events(instance, failed.run_id, DagsterEventType.STEP_FAILURE, "scenes")[0]
    data = failure.step_failure_data.user_failure_data
    assert data.metadata["error_class"].value == "permanent"
    assert data.metadata["error_type"].value == "TypeError"
    assert "not retried" in data.description
    assert "TypeError" in failure.step_failure_data.error.to_string()  # the bug's traceback is kept
    run = instance.get_run_by_id(failed.run_id)
    assert (run.tags["cineforge/failure_class"], run.tags["cineforge/failed_stage"]) == ("permanent", "extract_scenes")
    assert instance.get_latest_materialization_event(AssetKey("canonical_script")) is not None


def test_an_environment_failure_in_an_asset_goes_to_the_retry_policy(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cineforge_assets.assets.ingest as ingest

    real_split_scenes = ingest.split_scenes
    raised: list[OSError] = []

    def split_scenes_once_out_of_disk(*args: Any, **kwargs: Any) -> Any:
        if not raised:
            raised.append(OSError(28, "No space left on device"))
            raise raised[0]
        return real_split_scenes(*args, **kwargs)

    monkeypatch.setattr(ingest, "split_scenes", split_scenes_once_out_of_disk)
    key = prose_partition(tmp_path, instance)
    result = run_pipeline(instance, key, ai_config(sim, tmp_path))
    assert result.success
    assert len(step_events(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY, "scenes")) == 1
    assert len(raised) == 1


def _all_step_starts(instance: DagsterInstance, run_id: str) -> list[Any]:
    return [
        r.event_log_entry.dagster_event
        for r in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START).records
        if r.event_log_entry.dagster_event
    ]


def test_resume_steps_back_to_an_unusable_upstream_artifact(
    tmp_path: Path, instance: DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "ledger.fountain"
    source.write_text(
        (
            Path(__file__).resolve().parents[2] / "samples" / "the-lighthouse-keepers-ledger.fountain"
        ).read_text()
    )
    key = register_source(source)
    instance.add_dynamic_partitions("screenplays", [key])
    assert run_pipeline(instance, key, {}).success
    # An older version left a blank raw_input artifact behind.
    from cineforge_assets.paths import artifacts_dir

    raw_path = artifacts_dir() / "raw_input" / f"{key}.json"
    raw = json.loads(raw_path.read_text())
    raw["text"] = "   "
    raw_path.write_text(json.dumps(raw))
    failed = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance,
        partition_key=key,
        asset_selection=[AssetKey("canonical_script"), AssetKey("scenes"), AssetKey("project_config")],
        raise_on_error=False,
    )
    assert not failed.success
    failure = step_events(instance, failed.run_id, DagsterEventType.STEP_FAILURE, "canonical_script")[0]
    assert failure.step_failure_data.user_failure_data.metadata["remediate"].value == "raw_input"
    assert "re-materialize raw_input" in failure.step_failure_data.user_failure_data.description

    code = cineforge_main(["resume", failed.run_id])
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert code == 0 and summary["success"]
    assert "raw_input is unusable" in captured.err
    assert json.loads(raw_path.read_text())["text"].strip()


def test_decide_run_retry_only_retries_transient_failures_within_the_bound() -> None:
    tags = {
        "dagster/partition": "p",
        "cineforge/failure_class": "transient",
        "cineforge/failed_stage": "scenes",
    }
    assert decide_run_retry(tags, max_retries=2).retry
    assert decide_run_retry(tags, max_retries=2).retry_number == 1
    assert not decide_run_retry({**tags, AUTO_RETRY_NUMBER_TAG: "2"}, max_retries=2).retry
    assert not decide_run_retry({**tags, "cineforge/failure_class": "permanent"}, max_retries=2).retry
    assert not decide_run_retry({"dagster/partition": "p"}, max_retries=2).retry


def _failure_sensor_result(instance: DagsterInstance, run_id: str) -> RunRequest | SkipReason:
    run = instance.get_run_by_id(run_id)
    failure_record = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records[0]
    context = build_run_status_sensor_context(
        sensor_name="transient_run_retry",
        dagster_event=failure_record.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()
    return transient_run_retry(context)


def test_auto_retry_sensor_reexecutes_a_transient_failure_once_and_leaves_a_permanent_one(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    key = prose_partition(tmp_path, instance)
    # scenes fails transiently on every attempt, step retries included.
    sim.set_profile("fault:kind=server_error,tasks=enrich_scenes")
    config = ai_config(sim, tmp_path)
    from cineforge_assets.sources import current_source

    source_tags = current_source(key).run_tags()
    failed = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, run_config=config, tags=source_tags, raise_on_error=False
    )
    assert not failed.success
    assert instance.get_run_by_id(failed.run_id).tags["cineforge/failure_class"] == "transient"

    request = _failure_sensor_result(instance, failed.run_id)
    assert isinstance(request, RunRequest)
    assert request.partition_key == key
    assert [k.to_user_string() for k in request.asset_selection or []] == ["scenes", "project_config", "veo3_broll"]
    assert request.tags[RETRY_OF_TAG] == failed.run_id and request.tags[AUTO_RETRY_NUMBER_TAG] == "1"
    # The retry reads the same source version as the run it retries.
    assert {k: request.tags[k] for k in source_tags} == source_tags

    sim.set_profile("none")
    normalize_calls = calls(sim, "gpt-4.1")
    retried = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance,
        partition_key=key,
        asset_selection=request.asset_selection,
        run_config=config,
        tags=request.tags,
        raise_on_error=False,
    )
    assert retried.success
    assert calls(sim, "gpt-4.1") == normalize_calls

    sim.set_profile("fault:kind=bad_request,tasks=enrich_scenes")
    permanent = run_pipeline(instance, key, config)
    assert not permanent.success
    assert isinstance(_failure_sensor_result(instance, permanent.run_id), SkipReason)


def test_reliability_report_counts_what_the_simulator_recorded(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    key = prose_partition(tmp_path, instance)
    sim.set_profile("fault:kind=server_error,tasks=enrich_scenes,hits=3")
    assert run_pipeline(instance, key, ai_config(sim, tmp_path)).success
    from dagster import materialize

    from cineforge_assets.assets.reliability import reliability_report

    result = materialize([reliability_report], instance=instance, resources={})
    assert result.success
    frame = result.output_for_node("reliability_report")
    stats = sim.stats()
    sonnet = frame[frame["model"] == "claude-sonnet-4-6"].iloc[0]
    assert sonnet["calls"] == calls(sim, "claude-sonnet-4-6") == 4
    assert sonnet["transient_failures"] == 3
    assert sonnet["successes"] == 1
    assert frame["calls"].sum() == stats["total"]
    meta = instance.get_latest_materialization_event(
        AssetKey("reliability_report")
    ).asset_materialization.metadata
    # A drill's retried step is no live step retry: it is counted under its mode.
    assert meta["step_retries"].value == 0 and meta["runs"].value == 0
    assert meta["other_modes"].value["simulated"]["step_retries"] == 1
    assert meta["other_modes"].value["simulated"]["runs"] >= 1
    assert Path(meta["chart_path"].value).read_bytes().startswith(b"\x89PNG")


def test_every_provider_behind_an_open_breaker_asks_dagster_to_retry_when_one_reopens(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    key = prose_partition(tmp_path, instance)
    # Long enough that the step's policy retry (0.2 s) starts well inside it on a loaded machine; the
    # step then waits out the rest of it for real, so it is kept to a few seconds.
    cooldown = 6.0
    # The scenes step's only provider is overloaded once: that failure opens its breaker (threshold 1)
    # inside the step, so the step finds every provider behind an open breaker however long the run
    # took to get there (opening it before the run raced the cooldown against the earlier steps).
    sim.set_profile("fault:kind=overloaded,provider=anthropic,tasks=enrich_scenes,hits=1")
    config = ai_config(
        sim,
        tmp_path,
        breaker_failure_threshold=1,
        breaker_warm_up_calls=1,
        breaker_cooldown_seconds=cooldown,
        breaker_first_cooldown_seconds=cooldown,
    )
    result = run_pipeline(instance, key, config)
    assert result.success
    retries = step_events(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY, "scenes")
    # The overload is a degraded provider, so the step walks its chain again after a jittered wait and finds
    # the breaker open (opened by that overload): it asks for one retry, timed to the breaker's reopening.
    assert len(retries) == 1
    assert 0 < retries[-1].event_specific_data.seconds_to_wait <= cooldown
    # The overloaded call, then only the half-open probe, which served the stage.
    assert calls(sim, "claude-sonnet-4-6") == 2
    meta = instance.get_latest_materialization_event(AssetKey("scenes")).asset_materialization.metadata
    assert meta["provider"].value == "anthropic"
