"""The Veo await gate over real HTTP on loopback: which failures retry (once), which never do, timeouts.

Faults come from the simulator's per-job rules (``VeoFault``); time moves only through the injected clock
(``sleep=clock.advance``), so nothing here sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cineforge_assets.broll.gate import (
    PERMANENT_ERROR_KINDS,
    RETRIABLE_ERROR_KINDS,
    RETRIED_EVENT,
    GateResult,
    PipelineEvent,
    _all_failures_retriable,
    is_retriable_error,
    run_veo3_await_gate,
    submit_error_kind,
)
from cineforge_assets.broll.jobs import BrollJob, BrollJobsFile, error_kind, load_jobs, save_jobs
from resources.adapters.veo import VeoClient, is_playable_mp4
from resources.resilience.errors import PermanentProviderError, TransientProviderError
from resources.simulator import ManualClock, ProviderSimulator
from resources.simulator.veo import VeoFault, VeoSimulator

from .conftest import TEST_KEY

MakeJobs = Callable[..., Path]


class RecordingBus:
    def __init__(self) -> None:
        self.events: list[PipelineEvent] = []

    def emit(self, event: PipelineEvent) -> None:
        self.events.append(event)


class BrokenBus:
    def emit(self, event: PipelineEvent) -> None:
        raise RuntimeError("bus is down")


def run_gate(
    jobs_path: Path,
    client: VeoClient,
    clock: ManualClock,
    *,
    bus: object | None = None,
    timeout_s: float = 600.0,
    poll_interval_s: float = 10.0,
) -> GateResult:
    return run_veo3_await_gate(
        jobs_path,
        client,
        timeout_s=timeout_s,
        poll_interval_s=poll_interval_s,
        clock=clock,
        sleep=clock.advance,
        event_bus=bus,  # type: ignore[arg-type]
    )


def assert_clips_valid(result: GateResult) -> None:
    for clip in result.clips:
        data = Path(clip).read_bytes()
        assert is_playable_mp4(data), clip


# ---------------------------------------------------------------- retriable: exactly one retry


@pytest.mark.parametrize("kind", ["submit_failed", "rate_limited", "poll_failed"])
def test_retriable_failures_of_every_job_trigger_exactly_one_retry(
    kind: str, veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(3)
    # the first three submissions fail, the retry is clean
    veo.set_faults([VeoFault.model_validate({"kind": kind, "times": 3})])
    bus = RecordingBus()

    result = run_gate(jobs_path, client, gate_clock, bus=bus)

    assert result.retried is True
    assert [e.event_name for e in bus.events] == [RETRIED_EVENT]
    assert bus.events[0].data["failure_kinds"] == {kind: 3}
    assert bus.events[0].data["scenes"] == [1, 2, 3]
    assert veo.state()["submits"] == {kind: 3, "ok": 3}
    assert result.outcome == "completed" and result.broll_available
    assert result.succeeded_scenes == [1, 2, 3] and result.failed == {}
    assert_clips_valid(result)
    jobs = load_jobs(jobs_path).jobs
    assert all(j.status == "succeeded" and j.attempts == 2 for j in jobs)
    assert all(error_kind(j.previous_errors[0]) == kind for j in jobs)
    assert any("auto-retry fired once" in r for r in result.reasons)


# ---------------------------------------------------------------- permanent: never retried


@pytest.mark.parametrize(
    ("fault", "expected_kind"),
    [
        ("download_failed", "download_failed"),
        ("generation_failed", "generation_failed"),
        ("rai_filtered", "generation_failed"),
        ("invalid_argument", "submit_rejected"),
    ],
)
def test_permanent_failures_are_never_retried(
    fault: str,
    expected_kind: str,
    veo: VeoSimulator,
    client: VeoClient,
    gate_clock: ManualClock,
    make_jobs: MakeJobs,
) -> None:
    jobs_path = make_jobs(2)
    veo.set_faults([VeoFault.model_validate({"kind": fault})])
    bus = RecordingBus()

    result = run_gate(jobs_path, client, gate_clock, bus=bus)

    assert result.retried is False and bus.events == []
    assert sum(veo.state()["submits"].values()) == 2
    assert result.outcome == "completed"
    assert result.broll_available is False and result.clips == []
    assert {error_kind(m) for m in result.failed.values()} == {expected_kind}
    assert any("no auto-retry: permanent failure(s)" in r for r in result.reasons)
    assert any("proceeds without it" in r for r in result.reasons)
    assert not list(jobs_path.parent.glob("*.mp4"))


def test_invalid_argument_stays_permanent_whatever_the_kind(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(1)
    veo.set_faults([VeoFault(kind="invalid_argument")])
    run_gate(jobs_path, client, gate_clock)
    message = load_jobs(jobs_path).jobs[0].error_message or ""
    assert "INVALID_ARGUMENT" in message and TEST_KEY not in message
    # Even filed under a retriable kind, the marker wins.
    assert not is_retriable_error("submit_failed: HTTP 400 INVALID_ARGUMENT: bad aspect ratio")
    assert not is_retriable_error("poll_failed: INVALID_ARGUMENT")


def test_a_mix_with_one_permanent_failure_does_not_retry(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(3)
    veo.set_faults(
        [
            VeoFault(kind="download_failed", job_index=0),
            VeoFault(kind="rate_limited", job_index=1),
            VeoFault(kind="submit_failed", job_index=2),
        ]
    )
    bus = RecordingBus()

    result = run_gate(jobs_path, client, gate_clock, bus=bus)

    assert result.retried is False and bus.events == []
    assert not _all_failures_retriable(jobs_path)
    assert {s: error_kind(m) for s, m in result.failed.items()} == {
        1: "download_failed",
        2: "rate_limited",
        3: "submit_failed",
    }
    assert "no auto-retry: permanent failure(s): scene 1 download_failed" in result.reasons
    assert sum(veo.state()["submits"].values()) == 3


def test_partial_success_keeps_its_clips_and_does_not_retry(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(3)
    veo.set_faults([VeoFault(kind="rate_limited", job_index=1)])

    result = run_gate(jobs_path, client, gate_clock)

    assert result.retried is False
    assert _all_failures_retriable(jobs_path)  # retriable, but only one of three failed
    assert result.succeeded_scenes == [1, 3] and list(result.failed) == [2]
    assert result.broll_available is True
    assert_clips_valid(result)
    assert [Path(c).name for c in result.clips] == ["scene-1.mp4", "scene-3.mp4"]
    assert "no auto-retry: only some jobs failed (retry fires only when all failed)" in result.reasons
    assert "2 of 3 clip(s) generated" in result.reasons


# ---------------------------------------------------------------- the single-retry guard


def test_a_second_failure_after_the_retry_does_not_retry_again(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(2)
    veo.set_faults([VeoFault(kind="rate_limited")])  # every submission, retry included
    bus = RecordingBus()

    result = run_gate(jobs_path, client, gate_clock, bus=bus)

    assert result.retried is True
    assert len(bus.events) == 1
    assert veo.state()["submits"] == {"rate_limited": 4}  # 2 jobs x (first try + the one retry)
    assert result.outcome == "completed" and result.broll_available is False
    assert "retry failed again: no second retry (single-retry guard)" in result.reasons
    assert _all_failures_retriable(jobs_path)  # still retriable: the guard, not the class, stopped it
    assert all(j.attempts == 2 for j in load_jobs(jobs_path).jobs)


def test_a_retry_that_turns_permanent_ends_the_gate(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(2)
    veo.set_faults([VeoFault(kind="submit_failed", times=2), VeoFault(kind="generation_failed")])

    result = run_gate(jobs_path, client, gate_clock)

    assert result.retried is True and result.broll_available is False
    assert {error_kind(m) for m in result.failed.values()} == {"generation_failed"}
    assert "retry failed again: no second retry (single-retry guard)" in result.reasons


# ---------------------------------------------------------------- event bus


def test_no_event_bus_is_fine(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(2)
    veo.set_faults([VeoFault(kind="submit_failed", times=2)])
    result = run_gate(jobs_path, client, gate_clock, bus=None)
    assert result.retried is True and result.succeeded_scenes == [1, 2]


def test_a_broken_event_bus_does_not_break_the_gate(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(1)
    veo.set_faults([VeoFault(kind="rate_limited", times=1)])
    result = run_gate(jobs_path, client, gate_clock, bus=BrokenBus())
    assert result.retried is True and result.succeeded_scenes == [1]


def test_retried_event_is_a_json_ready_pipeline_event(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(1)
    veo.set_faults([VeoFault(kind="poll_failed", times=1)])
    bus = RecordingBus()
    run_gate(jobs_path, client, gate_clock, bus=bus)
    event = json.loads(bus.events[0].model_dump_json())
    assert event["event_name"] == "veo3.gate.retried"
    assert event["source"] == "veo3_await_gate"
    assert event["data"]["jobs_path"] == str(jobs_path)
    assert event["data"]["partition"] == "demo"


# ---------------------------------------------------------------- polling, completion and timeouts


def test_a_successful_retry_keeps_polling_until_every_job_completes(
    sim: ProviderSimulator,
    veo: VeoSimulator,
    client: VeoClient,
    gate_clock: ManualClock,
    make_jobs: MakeJobs,
) -> None:
    jobs_path = make_jobs(2)
    veo.set_faults([VeoFault(kind="submit_failed", times=2)], polls_to_complete=4)

    result = run_gate(jobs_path, client, gate_clock, poll_interval_s=10.0)

    assert result.retried is True
    assert result.succeeded_scenes == [1, 2]
    assert veo.state()["polls"] == 2 * 4  # each retried operation polled until it was done
    assert result.polls == 8
    # one pause before the retry + three pauses between the four polling rounds
    assert gate_clock() == pytest.approx(40.0)
    assert result.elapsed_s == pytest.approx(40.0)
    assert_clips_valid(result)


def test_a_timeout_ends_the_gate_with_the_clips_that_finished(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(3)
    veo.set_faults([VeoFault(kind="stalled", job_index=1)])

    result = run_gate(jobs_path, client, gate_clock, timeout_s=55.0, poll_interval_s=10.0)

    assert result.outcome == "timed_out" and result.retried is False
    assert result.succeeded_scenes == [1, 3] and result.broll_available is True
    assert_clips_valid(result)
    assert error_kind(result.failed[2]) == "timed_out"
    assert "operation models/veo-3.0-generate-001/operations/" in result.failed[2]
    assert "gate timed out after 55s with 1 job(s) unfinished" in result.reasons
    assert gate_clock() == pytest.approx(55.0)
    stalled = load_jobs(jobs_path).jobs[1]
    assert stalled.status == "failed" and stalled.operation_name


def test_a_timeout_with_nothing_finished_gives_no_broll(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(2)
    veo.set_faults([VeoFault(kind="stalled")])
    result = run_gate(jobs_path, client, gate_clock, timeout_s=30.0, poll_interval_s=10.0)
    assert result.outcome == "timed_out" and result.broll_available is False and result.clips == []
    assert len(result.failed) == 2


def test_no_retry_when_the_timeout_has_passed_by_the_time_everything_failed(
    veo: VeoSimulator, client: VeoClient, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(1)
    veo.set_faults([VeoFault(kind="rate_limited")])
    clock = ManualClock()
    result = run_gate(jobs_path, client, clock, timeout_s=0.0)
    assert result.retried is False and result.outcome == "completed"
    assert "no auto-retry: the gate's timeout had passed when every job had failed" in result.reasons
    assert veo.state()["submits"] == {"rate_limited": 1}


# ---------------------------------------------------------------- transient hiccups are tolerated


def test_one_failed_poll_or_download_does_not_fail_the_job(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(2)
    veo.set_faults([VeoFault(kind="poll_flaky", job_index=0), VeoFault(kind="download_flaky", job_index=1)])
    result = run_gate(jobs_path, client, gate_clock)
    assert result.succeeded_scenes == [1, 2] and result.retried is False
    assert veo.state()["downloads"] == 3  # the flaky download was fetched twice


def test_persistent_poll_errors_fail_after_the_streak_limit(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(1)
    veo.set_faults([VeoFault(kind="poll_failed")])
    result = run_veo3_await_gate(
        jobs_path,
        client,
        timeout_s=600,
        poll_interval_s=5,
        clock=gate_clock,
        sleep=gate_clock.advance,
        max_poll_errors=2,
    )
    assert result.retried is True  # poll_failed is retriable ...
    assert veo.state()["polls"] == 4  # ... and each attempt gave up after two failed polls
    message = result.failed[1]
    assert error_kind(message) == "poll_failed" and "after 2 consecutive errors" in message


# ---------------------------------------------------------------- the job file and the rules


def test_the_job_file_records_every_job_truthfully(
    veo: VeoSimulator, client: VeoClient, gate_clock: ManualClock, make_jobs: MakeJobs
) -> None:
    jobs_path = make_jobs(2)
    veo.set_faults([VeoFault(kind="generation_failed", job_index=1)])
    run_gate(jobs_path, client, gate_clock)
    raw = json.loads(jobs_path.read_text())
    assert raw["partition"] == "demo" and raw["model"] == "veo-3.0-generate-001"
    done, failed = raw["jobs"]
    assert done["status"] == "succeeded" and done["error_message"] is None
    assert done["video_path"].endswith("scene-1.mp4") and done["operation_name"].startswith("models/veo-")
    assert done["submitted_at"] and done["finished_at"] and done["created_at"] and done["updated_at"]
    assert failed["status"] == "failed" and failed["error_kind"] == "generation_failed"
    assert "INTERNAL (13)" in failed["error_message"]
    assert failed["video_path"] is None
    assert not list(jobs_path.parent.glob(".*.tmp"))


def test_running_job_without_an_operation_fails_as_poll_failed(
    client: VeoClient, gate_clock: ManualClock, tmp_path: Path
) -> None:
    jobs_path = tmp_path / "jobs.json"
    save_jobs(jobs_path, BrollJobsFile(jobs=[BrollJob(scene=4, prompt="x", status="running")]))
    result = run_veo3_await_gate(
        jobs_path, client, timeout_s=0, poll_interval_s=1, clock=gate_clock, sleep=gate_clock.advance
    )
    assert error_kind(result.failed[4]) == "poll_failed"


def test_no_jobs_means_no_broll_and_no_calls(client: VeoClient, gate_clock: ManualClock, tmp_path: Path) -> None:
    jobs_path = tmp_path / "jobs.json"
    save_jobs(jobs_path, BrollJobsFile())
    result = run_gate(jobs_path, client, gate_clock)
    assert result.broll_available is False and result.reasons == ["no B-roll: no jobs (no scenes selected)"]
    assert result.polls == 0 and not _all_failures_retriable(jobs_path)


def test_gate_rejects_a_non_positive_poll_interval(client: VeoClient, tmp_path: Path) -> None:
    jobs_path = tmp_path / "jobs.json"
    save_jobs(jobs_path, BrollJobsFile())
    clock = ManualClock()
    with pytest.raises(ValueError, match="poll_interval_s"):
        run_veo3_await_gate(jobs_path, client, timeout_s=1, poll_interval_s=0, clock=clock, sleep=clock.advance)
    with pytest.raises(ValueError, match="timeout_s"):
        run_veo3_await_gate(jobs_path, client, timeout_s=-1, poll_interval_s=1, clock=clock, sleep=clock.advance)


def test_classification_constants_are_disjoint_and_complete() -> None:
    assert {"submit_failed", "rate_limited", "poll_failed"} == RETRIABLE_ERROR_KINDS
    assert {"download_failed", "generation_failed"} <= PERMANENT_ERROR_KINDS
    assert not RETRIABLE_ERROR_KINDS & PERMANENT_ERROR_KINDS
    assert is_retriable_error("rate_limited: HTTP 429 RESOURCE_EXHAUSTED")
    assert not is_retriable_error("download_failed: HTTP 404 NOT_FOUND")
    assert not is_retriable_error("something odd happened")  # unknown kinds are not worth money
    assert not is_retriable_error(None) and not is_retriable_error("")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TransientProviderError("x", status=429, error_code="RESOURCE_EXHAUSTED"), "rate_limited"),
        (TransientProviderError("x", status=503, error_code="UNAVAILABLE"), "submit_failed"),
        (TransientProviderError("x", error_code="connection_reset"), "submit_failed"),
        (PermanentProviderError("x", status=400, error_code="INVALID_ARGUMENT"), "submit_rejected"),
    ],
)
def test_submit_errors_map_to_kinds(error: TransientProviderError, kind: str) -> None:
    assert submit_error_kind(error) == kind


def test_an_unreachable_api_is_a_retriable_submit_failure(gate_clock: ManualClock, make_jobs: MakeJobs) -> None:
    # A port nobody listens on: connection refused on every submit, the retry included.
    with ProviderSimulator(extensions=()) as dead:
        url = dead.gemini_url
    jobs_path = make_jobs(1)
    with VeoClient(TEST_KEY, url, timeout_s=2) as offline_client:
        result = run_gate(jobs_path, offline_client, gate_clock)
    assert result.retried is True
    assert error_kind(result.failed[1]) == "submit_failed"
    assert "connection" in result.failed[1].lower()
