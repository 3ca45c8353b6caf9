"""Find runs whose process is gone, so ``cineforge resume`` can fail and resume them.

A run executed in the ``cineforge ingest`` process (or a run worker the default launcher started) that
is killed (OOM killer, ``kill -9``, a reboot) never reports its end: its status stays STARTED for ever.
Dagster's run monitoring cannot see this with the default run launcher (it has no run-worker health
check; only the Kubernetes and Docker launchers do), so ``cineforge resume`` checks the process itself.

Which process ran the run, from the run's own records:

* runs started by ``cineforge ingest`` carry ``cineforge/host``, ``cineforge/pid`` and
  ``cineforge/pid_start`` (the process start time from ``/proc``, so a recycled pid is not mistaken
  for the run's process);
* any other run: the pid of its RUN_START event, which the run worker itself wrote. No host is
  recorded there, so it is only trusted on a SQLite instance (which lives on one machine).

The decision (``worker_liveness``) is a pure function of the run's worker, this host and a process
probe, so tests can drive it without killing anything; ``fail_run_if_worker_gone`` is the Dagster shell.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cineforge_assets.run_tags import MAX_RETRIES_TAG, RUN_HOST_TAG, RUN_PID_START_TAG, RUN_PID_TAG

Liveness = Literal["alive", "gone", "unknown"]


@dataclass(frozen=True, slots=True)
class ProcessState:
    """What ``/proc/<pid>/stat`` says: the one-letter state and the start time in clock ticks."""

    state: str
    start_ticks: str | None


@dataclass(frozen=True, slots=True)
class RunWorker:
    """The process that executed a run, as far as the run's records tell."""

    pid: int
    host: str | None
    start_ticks: str | None = None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host or 'this host'}"


def probe_process(pid: int, proc: Path = Path("/proc")) -> ProcessState | None:
    """The state of process ``pid``, or None when there is no such process.

    Reads ``/proc`` (Linux) rather than ``os.kill(pid, 0)`` alone, because a killed child that its
    parent has not reaped yet still answers signals but is a zombie ("Z"), and because the start time
    tells a recycled pid apart. Without ``/proc`` it falls back to the signal probe."""
    stat_file = proc / str(pid) / "stat"
    try:
        text = stat_file.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        text = ""
    if not text:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # exists, owned by someone else
        return ProcessState(state="?", start_ticks=None)
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return ProcessState(state=fields[0], start_ticks=fields[19] if len(fields) > 19 else None)


def run_worker_tags(pid: int | None = None) -> dict[str, str]:
    """Tags that name the process about to execute a run in-process (this one by default)."""
    pid = os.getpid() if pid is None else pid
    tags = {RUN_HOST_TAG: socket.gethostname(), RUN_PID_TAG: str(pid)}
    state = probe_process(pid)
    if state is not None and state.start_ticks:
        tags[RUN_PID_START_TAG] = state.start_ticks
    return tags


def worker_from_tags(tags: Mapping[str, str]) -> RunWorker | None:
    pid = tags.get(RUN_PID_TAG)
    if not pid or not pid.isdigit():
        return None
    return RunWorker(pid=int(pid), host=tags.get(RUN_HOST_TAG), start_ticks=tags.get(RUN_PID_START_TAG))


def worker_liveness(
    worker: RunWorker | None,
    *,
    this_host: str,
    probe: Callable[[int], ProcessState | None],
) -> tuple[Liveness, str]:
    """Whether ``worker`` still runs, with the reason in words. Never "gone" without evidence."""
    if worker is None:
        return "unknown", "the run records no process id"
    if worker.host is not None and worker.host != this_host:
        return "unknown", f"it ran on host {worker.host!r}, not here ({this_host!r}); run this command there"
    state = probe(worker.pid)
    if state is None:
        return "gone", f"process {worker.describe()} no longer exists"
    if state.state in ("Z", "X"):
        return "gone", f"process {worker.describe()} has exited (state {state.state})"
    if worker.start_ticks and state.start_ticks and worker.start_ticks != state.start_ticks:
        return "gone", f"process {worker.describe()} exited; its pid now belongs to another process"
    return "alive", f"process {worker.describe()} is still running"


# ------------------------------------------------------------------------------------ Dagster shell


def _worker_from_event_log(instance: Any, run_id: str) -> RunWorker | None:
    """The RUN_START event's pid: the run worker wrote that event itself. Trusted on SQLite only."""
    from dagster import DagsterEventType
    from dagster._core.storage.runs import SqliteRunStorage

    if not isinstance(instance.run_storage, SqliteRunStorage):
        return None
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.pid:
            return RunWorker(pid=int(event.pid), host=None)
    return None


def fail_run_if_worker_gone(instance: Any, run: Any) -> tuple[Liveness, str]:
    """If ``run`` (STARTING/STARTED) lost its process, mark it failed through Dagster's API.

    Returns the verdict and its reason; the run is changed only when the verdict is "gone"."""
    from dagster._core.events import JobFailureData, RunFailureReason

    worker = worker_from_tags(run.tags) or _worker_from_event_log(instance, run.run_id)
    liveness, reason = worker_liveness(worker, this_host=socket.gethostname(), probe=probe_process)
    if liveness != "gone":
        return liveness, reason
    instance.add_run_tags(run.run_id, {MAX_RETRIES_TAG: "0"})
    instance.report_run_failed(
        instance.get_run_by_id(run.run_id),
        message=f"Run worker is gone ({reason}); marked failed by `cineforge resume`.",
        job_failure_data=JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
    )
    return liveness, reason
