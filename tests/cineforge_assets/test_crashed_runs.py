"""Issue 13 item 6: a run whose process was killed can be resumed with ``cineforge resume``.

The end-to-end test kills a real ``cineforge ingest`` process while its run is inside a step (the
provider simulator holds the first model call and tells the test it arrived), then resumes the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus

from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.crashed_runs import (
    ProcessState,
    RunWorker,
    probe_process,
    run_worker_tags,
    worker_liveness,
)
from cineforge_assets.run_tags import RUN_PID_TAG
from resources.simulator import ProviderSimulator
from resources.simulator.routing import SimRequest, SimResponse
from tests.conftest import REPO_ROOT

SAMPLE_FOUNTAIN = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"


# ------------------------------------------------------------------------------------ the decision


def probe_from(table: dict[int, ProcessState]) -> Any:
    return lambda pid: table.get(pid)


def test_a_missing_process_on_this_host_is_gone() -> None:
    liveness, reason = worker_liveness(RunWorker(41, "box"), this_host="box", probe=probe_from({}))
    assert liveness == "gone" and "pid 41" in reason


def test_a_zombie_or_a_recycled_pid_is_gone_and_a_live_one_is_alive() -> None:
    worker = RunWorker(41, "box", start_ticks="1000")
    assert worker_liveness(worker, this_host="box", probe=probe_from({41: ProcessState("Z", "1000")}))[0] == "gone"
    assert worker_liveness(worker, this_host="box", probe=probe_from({41: ProcessState("S", "2000")}))[0] == "gone"
    assert worker_liveness(worker, this_host="box", probe=probe_from({41: ProcessState("R", "1000")}))[0] == "alive"


def test_another_host_or_no_pid_is_never_judged_gone() -> None:
    probe = probe_from({})
    assert worker_liveness(RunWorker(41, "other"), this_host="box", probe=probe)[0] == "unknown"
    assert worker_liveness(None, this_host="box", probe=probe)[0] == "unknown"


def test_probe_reads_a_real_process_and_sees_a_killed_unreaped_child_as_a_zombie() -> None:
    tags = run_worker_tags()
    me = probe_process(os.getpid())
    assert me is not None and me.state in ("R", "S") and tags[RUN_PID_TAG] == str(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped: a zombie
        state = probe_process(child.pid)
        assert state is not None and state.state == "Z"
    finally:
        child.wait()
    assert probe_process(child.pid) is None


# ------------------------------------------------------------------------------------ end to end


class HeldSimulator(ProviderSimulator):
    """The simulator, holding every model call until ``release`` is set; ``arrived`` says one came."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.release = threading.Event()

    def handle(self, request: SimRequest) -> SimResponse:
        if request.method == "POST" and not request.path.startswith("/_sim"):
            self.arrived.set()
            self.release.wait(timeout=120)
        return super().handle(request)


@pytest.mark.slow
def test_resume_fails_and_resumes_a_run_whose_process_was_killed(
    tmp_path: Path, data_root: Path, dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    with HeldSimulator() as sim:
        env.update(
            CINEFORGE_SIMULATOR_URL=sim.base_url,
            PYTHONPATH=str(REPO_ROOT),
            DAGSTER_HOME=str(dagster_home),
            CINEFORGE_DATA=str(data_root),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "cineforge_assets.cli", "ingest", str(SAMPLE_FOUNTAIN), "--provider", "simulated"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            while not sim.arrived.wait(timeout=1.0):  # bounded by the process: it exits if anything breaks
                if proc.poll() is not None:
                    pytest.fail(f"ingest ended before a model call: {proc.stdout.read().decode()[-2000:]}")  # type: ignore[union-attr]
            proc.send_signal(signal.SIGKILL)  # what the OOM killer does
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
            sim.release.set()

        with DagsterInstance.get() as instance:
            (crashed,) = instance.get_runs(limit=1)
            assert crashed.status == DagsterRunStatus.STARTED  # nobody reported the end
            assert crashed.tags[RUN_PID_TAG] == str(proc.pid)

        code = cineforge_main(["resume", crashed.run_id, "--provider", "simulated"])
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        summary = json.loads(captured.out.strip().splitlines()[-1])
        assert f"process pid {proc.pid}" in captured.err and "marked it failed" in captured.err
        assert summary["success"] is True and summary["resumed_from"] == crashed.run_id
        assert summary["partition"] == "the-lighthouse-keepers-ledger"
        assert {"scenes", "project_config"} <= set(summary["artifacts"])

        with DagsterInstance.get() as instance:
            old = instance.get_run_by_id(crashed.run_id)
            assert old is not None and old.status == DagsterRunStatus.FAILURE
            # Dagster's run-retry daemon must not start a second copy of what `resume` resumed.
            assert old.tags["dagster/max_retries"] == "0"
            new = instance.get_run_by_id(summary["run_id"])
            assert new is not None and new.parent_run_id == crashed.run_id
            # The resumed run reads the same source version as the crashed one.
            assert new.tags["cineforge/source_path"] == crashed.tags["cineforge/source_path"]


def test_resume_leaves_a_run_alone_while_its_process_lives(
    data_root: Path, dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cineforge_assets.definitions import defs

    with DagsterInstance.get() as instance:
        job = defs.resolve_job_def("screenplay_pipeline")
        run = instance.create_run_for_job(job_def=job, tags=run_worker_tags())  # this process: alive
        instance.report_dagster_event(_run_start_event(run.job_name), run.run_id)
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED  # type: ignore[union-attr]
    code = cineforge_main(["resume", run.run_id])
    err = capsys.readouterr().err
    assert code == 2 and "still running" in err
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED  # type: ignore[union-attr]


def test_a_run_without_cineforge_tags_is_judged_by_its_run_start_pid_on_sqlite(dagster_home: Path) -> None:
    """Runs launched by the daemon or the UI carry no cineforge/pid: the RUN_START event's pid is used."""
    from cineforge_assets.crashed_runs import fail_run_if_worker_gone
    from cineforge_assets.definitions import defs

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that no longer exists
    with DagsterInstance.get() as instance:
        run = instance.create_run_for_job(job_def=defs.resolve_job_def("screenplay_pipeline"))
        instance.report_dagster_event(_run_start_event(run.job_name, pid=child.pid), run.run_id)
        liveness, reason = fail_run_if_worker_gone(instance, instance.get_run_by_id(run.run_id))
        assert liveness == "gone" and f"pid {child.pid}" in reason
        failed = instance.get_run_by_id(run.run_id)
        assert failed is not None and failed.status == DagsterRunStatus.FAILURE


def _run_start_event(job_name: str, pid: int | None = None) -> Any:
    from dagster._core.events import DagsterEvent, DagsterEventType

    return DagsterEvent(DagsterEventType.RUN_START.value, job_name=job_name, message="started", pid=pid)


# ------------------------------------------------------------------------------------ configuration


def test_embedded_instance_turns_run_monitoring_on_with_explained_timeouts(dagster_home: Path) -> None:
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["start_timeout_seconds"] > 0 and monitoring["max_runtime_seconds"] > 0
    assert config["run_retries"]["enabled"] is True
    with DagsterInstance.from_config(str(dagster_home)) as instance:  # Dagster accepts the file as written
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == monitoring["max_runtime_seconds"]
