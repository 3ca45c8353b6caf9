"""The PostgreSQL + Celery profile on real services: two workers, one breaker, a worker killed mid-step.

Every test gets its own database, queues, Redis key prefix, simulator and workers (``Fleet``), and
launches runs with the commands docs/deploy.md gives (``dagster job execute`` with the profiles in
``deploy/``).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT
from tests.deploy.fleet import RUN_TIMEOUT_S, Fleet, Worker

pytestmark = [pytest.mark.services, pytest.mark.slow]

POOL = "provider_calls"
POOL_STEPS = ("canonical_script", "scenes", "project_config")
AI_STEPS = ("scenes", "project_config")  # Fountain input is parsed deterministically: no AI call there
LIGHTHOUSE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"

# Two transient failures open a provider's breaker; 10 minutes of cooldown means no half-open probe can
# happen during the test, so the bound on calls to the downed provider is exactly the threshold.
BREAKER_THRESHOLD = 2
HALF_OPEN_PROBES = 0


def breaker_run_config(fleet: Fleet) -> dict[str, Any]:
    """Resource config for the run. Run config for ``ai`` replaces the whole env-built resource config
    (it does not merge), so the simulated mode and the shared store are restated here."""
    config = {
        "mode": "simulated",
        "simulator_url": fleet.simulator_url,
        "breaker_store_url": fleet.pg_url,
        "breaker_failure_threshold": BREAKER_THRESHOLD,
        "breaker_cooldown_seconds": 600.0,
        "breaker_first_cooldown_seconds": 600.0,  # open for the whole test: no probe
    }
    return {"resources": {"ai": {"config": config}}}

# Long enough that a provider call is certainly still in flight when the test kills its worker.
STALLED_CALL_S = 120.0


# ------------------------------------------------------------------------------------------ helpers


def register(instance: Any, path: Path) -> str:
    from cineforge_assets.partitions import screenplay_partitions
    from cineforge_assets.sources import register_source

    partition = register_source(path)
    assert screenplay_partitions.name
    instance.add_dynamic_partitions(screenplay_partitions.name, [partition])
    return partition


def runs_for(instance: Any, partition: str) -> list[Any]:
    from dagster import RunsFilter

    return list(instance.get_runs(filters=RunsFilter(tags={"dagster/partition": partition})))


def wait_run(fleet: Fleet, proc: subprocess.Popen[Any], log_name: str) -> int:
    try:
        return proc.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"run did not finish in {RUN_TIMEOUT_S}s:\n{fleet.log(log_name)}")


def events(instance: Any, run_id: str, event_type: str) -> list[Any]:
    from dagster import DagsterEventType

    of_type = DagsterEventType(event_type)
    return [r.event_log_entry for r in instance.get_records_for_run(run_id, of_type=of_type, limit=10_000).records]


def step_pids(instance: Any, run_id: str) -> dict[str, int]:
    return {e.dagster_event.step_key: e.dagster_event.pid for e in events(instance, run_id, "STEP_START")}


def step_intervals(instance: Any, run_id: str) -> dict[str, tuple[float, float]]:
    starts = {e.dagster_event.step_key: e.timestamp for e in events(instance, run_id, "STEP_START")}
    ends = {e.dagster_event.step_key: e.timestamp for e in events(instance, run_id, "STEP_SUCCESS")}
    return {step: (starts[step], ends[step]) for step in starts if step in ends}


def observations(instance: Any, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(step key, metadata) of every AssetObservation the AI layer logged in the run."""
    out = []
    for entry in events(instance, run_id, "ASSET_OBSERVATION"):
        metadata = entry.dagster_event.asset_observation_data.asset_observation.metadata
        out.append((entry.dagster_event.step_key, {k: getattr(v, "value", v) for k, v in metadata.items()}))
    return out


def owner(workers: list[Worker], pid: int) -> Worker:
    owners = [w for w in workers if w.owns(pid)]
    assert len(owners) == 1, f"pid {pid} is not a process of exactly one test worker"
    return owners[0]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def mp4_complete(data: bytes) -> bool:
    """Whether an MP4's top-level boxes (size + type headers) account for exactly every byte."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1:  # 64-bit size follows the type
            if pos + 16 > len(data):
                return False
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:  # box runs to the end of the file
            return True
        if size < 8:
            return False
        pos += size
    return pos == len(data) and data[4:8] == b"ftyp"


def whole(name: str, data: bytes) -> bool:
    """Whether an artifact is complete: its format's reader accepts every byte of it."""
    try:
        if name.endswith(".parquet"):
            pd.read_parquet(io.BytesIO(data))
        elif name.endswith(".json"):
            json.loads(data)
        elif name.endswith(".mp4"):
            return mp4_complete(data)
        else:
            data.decode("utf-8")
    except Exception:
        return False
    return True


def poll(what: str, condition: Callable[[], Any], timeout_s: float = 90.0) -> Any:
    """Wait for an outside process to reach a state (not for time to pass)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


# ------------------------------------------------------------------------------------------ tests


def test_two_screenplays_on_two_workers_share_one_breaker_per_provider(
    fleet: Fleet, pg_instance: Any, corpus_dir: Path
) -> None:
    from resources.ai import AIProviderResource
    from resources.resilience.breaker_store import PostgresBreakerStore

    fleet.start_simulator(faults="primary-down")
    workers = fleet.start_workers(2)
    # The documented command; slots live in the fleet's PostgreSQL, so the limit binds both runs.
    fleet.run_cli("dagster", "instance", "concurrency", "set", POOL, "1")
    # As docs/deploy.md says: every pool gets its row at set-up, or two workers may race to create it.
    fleet.run_cli("dagster", "instance", "concurrency", "set", "veo_calls", "4")

    # Each run is pinned to one worker through its own queue, so "which worker opened the breaker"
    # and "which worker was stopped by it" are different processes by construction.
    plan = {
        register(pg_instance, corpus_dir / "The-Last-Birthday-Card.fountain"): workers[0],
        register(pg_instance, LIGHTHOUSE): workers[1],
    }
    procs = {}
    for index, (partition, worker) in enumerate(plan.items()):
        config = fleet.write_run_config(f"run_{index}", worker.queues[1], breaker_run_config(fleet))
        procs[partition] = (fleet.launch(partition, config, f"run_{index}"), f"run_{index}")
    for proc, log_name in procs.values():
        wait_run(fleet, proc, log_name)

    runs = {partition: runs_for(pg_instance, partition)[0] for partition in plan}
    for partition, run in runs.items():
        assert run.status.value == "SUCCESS", fleet.log(procs[partition][1])

    # Steps ran on the Celery workers, each run on its own worker process.
    worker_of: dict[tuple[str, str], Worker] = {}
    for partition, run in runs.items():
        pids = step_pids(pg_instance, run.run_id)
        assert set(pids) >= {"raw_input", *POOL_STEPS}
        for step, pid in pids.items():
            worker_of[(run.run_id, step)] = owner(workers, pid)
            assert worker_of[(run.run_id, step)] is plan[partition]

    # One breaker for the fleet: the primary saw at most threshold (+ probes) calls across both runs.
    stats = fleet.sim_stats()
    anthropic_calls = stats["by_provider"].get("anthropic", {}).get("total", 0)
    assert anthropic_calls <= BREAKER_THRESHOLD + HALF_OPEN_PROBES, stats
    drill = AIProviderResource(mode="simulated", simulator_url=fleet.simulator_url)
    assert PostgresBreakerStore(fleet.pg_url).read(drill.breaker_identities()["anthropic"]).state == "open"

    logged = [(run.run_id, step, meta) for run in runs.values() for step, meta in observations(pg_instance, run.run_id)]
    opened = [(run_id, step) for run_id, step, meta in logged if meta.get("event") == "breaker_open"]
    assert len(opened) == 1, logged
    stopped = [
        (run_id, step)
        for run_id, step, meta in logged
        if meta.get("provider") == "anthropic" and meta.get("error_code") == "breaker_open"
    ]
    assert stopped, "no step was turned away from the open breaker"
    opener = worker_of[opened[0]]
    assert any(worker_of[key] is not opener for key in stopped), (opened, stopped)

    # Both runs completed through the fallback (the primary is down).
    artifacts = fleet.data_root / "artifacts"
    for partition in plan:
        config = json.loads((artifacts / "project_config" / f"{partition}.json").read_text())
        assert config["insights_by"].startswith("openai/"), config["insights_by"]
        scenes = pd.read_parquet(artifacts / "scenes" / f"{partition}.parquet")
        assert len(scenes) > 0
        assert set(scenes["enriched_by"]) == {scenes["enriched_by"].iloc[0]}
        assert scenes["enriched_by"].iloc[0].startswith("openai/")

    # The pool held at most one provider-calling step at a time across both runs.
    intervals = sorted(
        span
        for run in runs.values()
        for step, span in step_intervals(pg_instance, run.run_id).items()
        if step in POOL_STEPS
    )
    assert len(intervals) == 2 * len(POOL_STEPS)
    for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
        assert end <= start, intervals


def provider_call_in_flight(
    fleet: Fleet, instance: Any, partition: str, step: str, known_runs: set[str], calls_before: int
) -> Callable[[], tuple[str, int] | None]:
    """(run id, pid) once a new run's ``step`` has started and its provider call reached the simulator."""

    def check() -> tuple[str, int] | None:
        latest = [r for r in runs_for(instance, partition) if r.run_id not in known_runs]
        if not latest:
            return None
        pid = step_pids(instance, latest[0].run_id).get(step)
        if pid is None or fleet.sim_stats()["total"] <= calls_before:
            return None
        return latest[0].run_id, pid

    return check


def test_killed_workers_leave_no_torn_artifact_and_every_run_completes(fleet: Fleet, pg_instance: Any) -> None:
    fleet.start_simulator(faults="none")
    workers = fleet.start_workers(2)
    pg_instance.event_log_storage.set_concurrency_slots(POOL, 1)
    partition = register(pg_instance, LIGHTHOUSE)
    config = fleet.write_run_config("run", fleet.queue("shared"))
    artifacts = fleet.data_root / "artifacts"

    # 1. A whole worker dies mid-step (its host is lost). Every provider call stalls, so `scenes` is
    #    deterministically mid-call when the worker's whole process group is SIGKILLed. The step's message
    #    was not acknowledged (task_acks_late), so RabbitMQ hands it to the other worker: same run, success.
    fleet.sim_set("none", latency_s=STALLED_CALL_S)
    first = fleet.launch(partition, config, "run_1")
    in_flight = provider_call_in_flight(fleet, pg_instance, partition, "scenes", set(), 0)
    first_id, pid = poll("run 1's scenes call", in_flight)
    lost = owner(workers, pid)
    survivor = next(w for w in workers if w is not lost)
    os.killpg(lost.proc.pid, signal.SIGKILL)
    fleet.sim_set("none", latency_s=0.0)
    assert wait_run(fleet, first, "run_1") == 0, fleet.log("run_1")
    scenes_pids = [e.dagster_event.pid for e in events(pg_instance, first_id, "STEP_START")
                   if e.dagster_event.step_key == "scenes"]
    assert len(scenes_pids) == 2 and survivor.owns(scenes_pids[-1]), scenes_pids
    previous = snapshot(artifacts)  # the "previous whole version" of every artifact
    assert {f"scenes/{partition}.parquet", f"project_config/{partition}.json"} <= set(previous)

    # 2. The process running a step dies (OOM killer): the worker survives, the run fails.
    fleet.sim_set("none", latency_s=STALLED_CALL_S)
    calls_before = fleet.sim_stats()["total"]
    second = fleet.launch(partition, config, "run_2")
    in_flight = provider_call_in_flight(fleet, pg_instance, partition, "scenes", {first_id}, calls_before)
    second_id, pid = poll("run 2's scenes call", in_flight)
    assert survivor.owns(pid)
    os.kill(pid, signal.SIGKILL)
    fleet.sim_set("none", latency_s=0.0)

    wait_run(fleet, second, "run_2")
    assert pg_instance.get_run_by_id(second_id).status.value == "FAILURE"
    assert "WorkerLostError" in fleet.log("run_2") or "exited prematurely" in fleet.log("run_2")
    assert survivor.proc.poll() is None, "the worker's main process survives and replaces its child"

    # No torn artifact: every file is whole; what the killed step and its downstream own is the
    # previous version byte for byte; temporaries are dot-files nobody reads.
    after = snapshot(artifacts)
    visible = {name for name in after if not Path(name).name.startswith(".")}
    assert visible == {name for name in previous if not Path(name).name.startswith(".")}
    for name in visible:
        assert after[name] == previous[name] or whole(name, after[name]), f"{name} is torn"
    assert after[f"scenes/{partition}.parquet"] == previous[f"scenes/{partition}.parquet"]
    assert after[f"project_config/{partition}.json"] == previous[f"project_config/{partition}.json"]

    # The dead step never released its pool slot; the daemon frees it after
    # run_monitoring.free_slots_after_run_end_seconds (the UI has a button for it). Do it now.
    held = pg_instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
    assert [(s.run_id, s.step_key) for s in held] == [(second_id, "scenes")]
    pg_instance.event_log_storage.free_concurrency_slots_for_run(second_id)

    # A killed write leaves at most a dot-prefixed temporary beside the artifact; readers skip it.
    leftover = artifacts / "scenes" / f".{partition}.parquet.killed.tmp"
    leftover.write_bytes(previous[f"scenes/{partition}.parquet"][:100])

    resumed = fleet.resume(second_id)
    assert resumed["success"], (fleet.root / "resume.log").read_text()[-4000:]
    resumed_run = pg_instance.get_run_by_id(resumed["run_id"])
    assert resumed_run.parent_run_id == second_id
    assert resumed_run.tags["dagster/partition"] == partition
    # Only what had not succeeded runs again: the killed step and everything downstream of it.
    succeeded = {e.dagster_event.step_key for e in events(pg_instance, second_id, "STEP_SUCCESS")}
    assert {"raw_input", "canonical_script"} <= succeeded and "scenes" not in succeeded
    resumed_pids = step_pids(pg_instance, resumed_run.run_id)
    assert set(resumed_pids) == set(step_pids(pg_instance, first_id)) - succeeded
    assert all(survivor.owns(pid) for pid in resumed_pids.values()), "resumed steps ran on the worker"
    final = snapshot(artifacts)
    for name in visible:
        assert whole(name, final[name]), f"{name} is torn"
    assert leftover.read_bytes() == previous[f"scenes/{partition}.parquet"][:100]
    pd.testing.assert_frame_equal(
        pd.read_parquet(artifacts / "scenes" / f"{partition}.parquet"),
        pd.read_parquet(io.BytesIO(previous[f"scenes/{partition}.parquet"])),
    )

