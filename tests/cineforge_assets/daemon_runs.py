"""Waiting for a run that a real ``dagster-daemon`` launches (sensor tests against the daemon)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def wait_for_tagged_run(
    instance: DagsterInstance, tags: Mapping[str, str], timeout_s: float
) -> DagsterRunStatus | None:
    """The status of the newest run with ``tags`` once it has finished, or its last status (None: no run)
    when ``timeout_s`` is over."""
    deadline = time.monotonic() + timeout_s
    status = None
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=RunsFilter(tags=dict(tags)))
        if runs:
            status = runs[0].status
            if status in FINISHED:
                break
        time.sleep(1.0)  # polling the instance: the bound is the deadline above, not this interval
    return status
