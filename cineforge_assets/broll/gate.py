"""The Veo await gate: poll the partition's jobs to the end, retry only what can succeed, never fail.

``run_veo3_await_gate`` drives every job of ``jobs.json`` to a terminal state (``succeeded``/``failed``)
or until ``timeout_s`` passes on the injected ``clock``, sleeping ``poll_interval_s`` between rounds with
the injected ``sleep``. The file is rewritten atomically after every change, so it is always the truth.

Retry policy, deliberately narrow because every Veo submission costs money and minutes:

* A failure's kind is the prefix of its ``error_message``. ``submit_failed`` (5xx / transport on submit),
  ``rate_limited`` (429 RESOURCE_EXHAUSTED) and ``poll_failed`` (the operation could not be read) are
  retriable: the same request can succeed later. ``download_failed``, ``generation_failed`` (the
  operation finished with an error or a safety filter), ``submit_rejected`` (the API refused the request
  itself: 4xx), ``timed_out`` and ``not_configured`` (no key) are permanent, and so is any message
  containing ``INVALID_ARGUMENT`` whatever its kind: the request is wrong and would be wrong again.
* Auto-retry fires only when *every* job failed and *every* failure is retriable (a partial result is a
  result; one permanent failure means something other than load is wrong), at most once per invocation.
  It resubmits every job, emits ``veo3.gate.retried`` on the optional event bus, and polling continues.
* A retry that fails again, a permanent failure or a timeout ends the gate without (some) B-roll: the
  result lists the clips that exist and the reasons. Nothing here raises for a provider failure.

Poll and download hiccups that the taxonomy calls transient are tolerated ``max_poll_errors`` /
``max_download_errors`` times in a row before the job fails, so one 503 never throws away a finished
video. No Dagster imports: ``cineforge_assets.run_events.RunEventLog`` is the event bus the asset hands in.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, Field

from cineforge_assets.broll.jobs import (
    BrollJob,
    BrollJobsFile,
    clip_path,
    error_kind,
    load_jobs,
    save_jobs,
    utc_now,
)
from resources.adapters.veo import VideoOperation
from resources.atomic_files import atomic_write_bytes
from resources.resilience.errors import ProviderError

log = logging.getLogger(__name__)

RETRIABLE_ERROR_KINDS: Final[frozenset[str]] = frozenset({"submit_failed", "rate_limited", "poll_failed"})
PERMANENT_ERROR_KINDS: Final[frozenset[str]] = frozenset(
    {"download_failed", "generation_failed", "submit_rejected", "timed_out", "not_configured"}
)
# Whatever the kind, a message with one of these is the request's fault: retrying repeats it.
PERMANENT_ERROR_MARKERS: Final[tuple[str, ...]] = ("INVALID_ARGUMENT",)
RETRIED_EVENT: Final = "veo3.gate.retried"
DEFAULT_MAX_POLL_ERRORS: Final = 3
DEFAULT_MAX_DOWNLOAD_ERRORS: Final = 3

Clock = Callable[[], float]
Sleep = Callable[[float], None]
WallClock = Callable[[], datetime]
GateOutcome = Literal["completed", "timed_out"]


class PipelineEvent(BaseModel):
    """A structured event another part of the pipeline may react to."""

    event_name: str
    occurred_at: datetime = Field(default_factory=utc_now)
    source: str = "veo3_await_gate"
    data: dict[str, Any] = Field(default_factory=dict)


class EventBus(Protocol):
    def emit(self, event: PipelineEvent) -> None: ...


class VeoJobClient(Protocol):
    """What the gate needs from a Veo client (``resources.adapters.veo.VeoClient`` fits)."""

    def submit(self, prompt: str) -> str: ...

    def poll(self, operation_name: str) -> VideoOperation: ...

    def download(self, uri: str) -> bytes: ...


class GateResult(BaseModel):
    outcome: GateOutcome
    retried: bool
    broll_available: bool
    succeeded_scenes: list[int]
    failed: dict[int, str] = Field(description="scene -> error_message")
    clips: list[str]
    reasons: list[str]
    polls: int
    elapsed_s: float


# ---------------------------------------------------------------- classification


def is_retriable_error(message: str | None) -> bool:
    """True when a failed job with this ``error_message`` may succeed if submitted again."""
    if not message or any(marker in message for marker in PERMANENT_ERROR_MARKERS):
        return False
    return error_kind(message) in RETRIABLE_ERROR_KINDS


def _all_failures_retriable(jobs_path: Path) -> bool:
    """True only if there are failed jobs and every one of them failed with a retriable error."""
    failed = [job for job in load_jobs(jobs_path).jobs if job.status == "failed"]
    return bool(failed) and all(is_retriable_error(job.error_message) for job in failed)


def submit_error_kind(error: ProviderError) -> str:
    """The failure kind of a submit: rate limit, retriable failure, or a refusal of the request itself."""
    if error.status == 429 or error.error_code == "RESOURCE_EXHAUSTED":
        return "rate_limited"
    return "submit_failed" if error.error_class == "transient" else "submit_rejected"


# ---------------------------------------------------------------- submission


def _fail(job: BrollJob, message: str, now: datetime) -> None:
    job.status = "failed"
    job.error_message = message
    job.updated_at = job.finished_at = now


def submit_job(job: BrollJob, client: VeoJobClient, *, now: WallClock = utc_now) -> None:
    """Submit one pending job in place: ``running`` with its operation, or ``failed`` with the reason."""
    job.attempts += 1
    try:
        operation_name = client.submit(job.prompt)
    except ProviderError as exc:
        _fail(job, f"{submit_error_kind(exc)}: {exc}", now())
        return
    job.status = "running"
    job.operation_name = operation_name
    job.error_message = None
    job.video_uri = job.video_path = job.finished_at = None
    job.submitted_at = job.updated_at = now()


def submit_pending_jobs(jobs_path: Path, client: VeoJobClient, *, now: WallClock = utc_now) -> BrollJobsFile:
    """Submit every ``pending`` job, saving after each so a crash leaves a truthful file."""
    jobs_file = load_jobs(jobs_path)
    for job in jobs_file.jobs:
        if job.status == "pending":
            submit_job(job, client, now=now)
            save_jobs(jobs_path, jobs_file)
    return jobs_file


# ---------------------------------------------------------------- the gate


class _GateRun:
    """One invocation's state: error streaks per scene, the single-retry guard, counters."""

    def __init__(
        self,
        jobs_path: Path,
        client: VeoJobClient,
        *,
        now: WallClock,
        max_poll_errors: int,
        max_download_errors: int,
        event_bus: EventBus | None,
    ) -> None:
        self.jobs_path = Path(jobs_path)
        self.client = client
        self.now = now
        self.max_poll_errors = max(1, max_poll_errors)
        self.max_download_errors = max(1, max_download_errors)
        self.event_bus = event_bus
        self.poll_errors: Counter[int] = Counter()
        self.download_errors: Counter[int] = Counter()
        self.retried = False
        self.retry_skipped_for_time = False
        self.retry_failures: dict[int, str] = {}
        self.polls = 0

    # ---- one round

    def advance_all(self) -> BrollJobsFile:
        submit_pending_jobs(self.jobs_path, self.client, now=self.now)
        jobs_file = load_jobs(self.jobs_path)
        for job in jobs_file.jobs:
            if job.status == "running" and self._advance(job):
                save_jobs(self.jobs_path, jobs_file)
        return jobs_file

    def _advance(self, job: BrollJob) -> bool:
        """Poll one running job (and fetch its clip when done); True when the job changed."""
        if not job.operation_name:
            _fail(job, "poll_failed: running job has no operation name", self.now())
            return True
        self.polls += 1
        try:
            operation = self.client.poll(job.operation_name)
        except ProviderError as exc:
            return self._on_error(job, "poll_failed", exc, self.poll_errors, self.max_poll_errors)
        self.poll_errors.pop(job.scene, None)
        if not operation.done:
            return False
        if operation.error is not None:
            _fail(job, f"generation_failed: {operation.error.describe()}", self.now())
            return True
        if not operation.video_uri:
            _fail(job, "generation_failed: operation finished without a video URI", self.now())
            return True
        job.video_uri = operation.video_uri
        try:
            video = self.client.download(operation.video_uri)
        except ProviderError as exc:
            return self._on_error(job, "download_failed", exc, self.download_errors, self.max_download_errors)
        path = clip_path(self.jobs_path, job.scene)
        atomic_write_bytes(path, video)
        job.status = "succeeded"
        job.video_path = str(path)
        job.error_message = None
        job.updated_at = job.finished_at = self.now()
        return True

    def _on_error(self, job: BrollJob, kind: str, exc: ProviderError, streaks: Counter[int], limit: int) -> bool:
        streaks[job.scene] += 1
        if exc.error_class == "transient" and streaks[job.scene] < limit:
            log.info("scene %s: %s (%d of %d tolerated): %s", job.scene, kind, streaks[job.scene], limit, exc)
            return False
        suffix = f" (after {streaks[job.scene]} consecutive errors)" if streaks[job.scene] > 1 else ""
        _fail(job, f"{kind}: {exc}{suffix}", self.now())
        streaks.pop(job.scene, None)
        return True

    # ---- retry

    def should_retry(self, jobs_file: BrollJobsFile) -> bool:
        every_job_failed = bool(jobs_file.jobs) and all(job.status == "failed" for job in jobs_file.jobs)
        return not self.retried and every_job_failed and _all_failures_retriable(self.jobs_path)

    def retry_all(self, jobs_file: BrollJobsFile) -> None:
        """The one auto-retry: every job back to ``pending`` (keeping its error history), then resubmitted."""
        self.retried = True
        kinds = Counter(job.error_kind for job in jobs_file.jobs)
        self.retry_failures = {job.scene: job.error_message or "" for job in jobs_file.jobs}
        for job in jobs_file.jobs:
            if job.error_message:
                job.previous_errors.append(job.error_message)
            job.status = "pending"
            job.updated_at = self.now()
        save_jobs(self.jobs_path, jobs_file)
        self._emit(
            PipelineEvent(
                event_name=RETRIED_EVENT,
                occurred_at=self.now(),
                data={
                    "jobs_path": str(self.jobs_path),
                    "partition": jobs_file.partition,
                    "scenes": [job.scene for job in jobs_file.jobs],
                    "job_count": len(jobs_file.jobs),
                    "failure_kinds": dict(sorted(kinds.items())),
                },
            )
        )
        submit_pending_jobs(self.jobs_path, self.client, now=self.now)

    def _emit(self, event: PipelineEvent) -> None:
        if self.event_bus is None:
            return
        try:
            self.event_bus.emit(event)
        except Exception:  # an observer must never take the B-roll (or the pipeline) down with it
            log.warning("event bus failed to take %s", event.event_name, exc_info=True)

    # ---- the end

    def time_out(self, jobs_file: BrollJobsFile, timeout_s: float) -> None:
        for job in jobs_file.jobs:
            if not job.terminal:
                where = f" (operation {job.operation_name} may still finish)" if job.operation_name else ""
                _fail(
                    job,
                    f"timed_out: not finished when the gate's {timeout_s:g}s timeout passed{where}",
                    self.now(),
                )
        save_jobs(self.jobs_path, jobs_file)

    def result(self, jobs_file: BrollJobsFile, outcome: GateOutcome, elapsed_s: float) -> GateResult:
        jobs = jobs_file.jobs
        succeeded = [job for job in jobs if job.status == "succeeded"]
        failed = {job.scene: job.error_message or "" for job in jobs if job.status == "failed"}
        return GateResult(
            outcome=outcome,
            retried=self.retried,
            broll_available=bool(succeeded),
            succeeded_scenes=[job.scene for job in succeeded],
            failed=failed,
            clips=[job.video_path for job in succeeded if job.video_path],
            reasons=self._reasons(jobs, succeeded, failed, outcome, elapsed_s),
            polls=self.polls,
            elapsed_s=round(elapsed_s, 3),
        )

    def _reasons(
        self,
        jobs: list[BrollJob],
        succeeded: list[BrollJob],
        failed: dict[int, str],
        outcome: GateOutcome,
        elapsed_s: float,
    ) -> list[str]:
        reasons: list[str] = []
        if not jobs:
            return ["no B-roll: no jobs (no scenes selected)"]
        if self.retried:
            kinds = Counter(error_kind(m) for m in self.retry_failures.values())
            summary = ", ".join(f"{kind} x{n}" for kind, n in sorted(kinds.items()))
            reasons.append(f"auto-retry fired once: all {len(jobs)} job(s) had failed retriably ({summary})")
        if outcome == "timed_out":
            unfinished = sum(1 for m in failed.values() if error_kind(m) == "timed_out")
            reasons.append(f"gate timed out after {elapsed_s:g}s with {unfinished} job(s) unfinished")
        if failed and not self.retried and outcome == "completed":
            if succeeded:
                reasons.append("no auto-retry: only some jobs failed (retry fires only when all failed)")
            elif self.retry_skipped_for_time:
                reasons.append("no auto-retry: the gate's timeout had passed when every job had failed")
            else:
                permanent = [f"scene {s} {error_kind(m)}" for s, m in failed.items() if not is_retriable_error(m)]
                reasons.append("no auto-retry: permanent failure(s): " + ", ".join(permanent))
        if self.retried and not succeeded and outcome == "completed":
            reasons.append("retry failed again: no second retry (single-retry guard)")
        reasons.append(
            f"{len(succeeded)} of {len(jobs)} clip(s) generated"
            if succeeded
            else "no B-roll: the pipeline proceeds without it"
        )
        return reasons


def run_veo3_await_gate(
    jobs_path: Path,
    client: VeoJobClient,
    *,
    timeout_s: float,
    poll_interval_s: float,
    clock: Clock,
    sleep: Sleep,
    event_bus: EventBus | None = None,
    now: WallClock = utc_now,
    max_poll_errors: int = DEFAULT_MAX_POLL_ERRORS,
    max_download_errors: int = DEFAULT_MAX_DOWNLOAD_ERRORS,
) -> GateResult:
    """Poll ``jobs_path``'s jobs until all are terminal or ``timeout_s`` passes; see the module docstring.

    ``clock``/``sleep`` measure and pass time (``time.monotonic``/``time.sleep`` in production); ``now``
    stamps the job file. Pending jobs in the file are submitted first.
    """
    if poll_interval_s <= 0:
        raise ValueError("poll_interval_s must be positive")
    if timeout_s < 0:
        raise ValueError("timeout_s must not be negative")
    run = _GateRun(
        jobs_path,
        client,
        now=now,
        max_poll_errors=max_poll_errors,
        max_download_errors=max_download_errors,
        event_bus=event_bus,
    )
    started = clock()
    while True:
        jobs_file = run.advance_all()
        elapsed = clock() - started
        remaining = timeout_s - elapsed
        if all(job.terminal for job in jobs_file.jobs):
            if run.should_retry(jobs_file):
                if remaining > 0:
                    # Give a rate limit or an overload a moment to clear before the one retry.
                    sleep(min(poll_interval_s, remaining))
                    run.retry_all(jobs_file)
                    continue
                run.retry_skipped_for_time = True
            return run.result(jobs_file, "completed", elapsed)
        if remaining <= 0:
            run.time_out(jobs_file, timeout_s)
            return run.result(load_jobs(jobs_path), "timed_out", elapsed)
        sleep(min(poll_interval_s, remaining))
