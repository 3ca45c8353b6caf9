"""Run-level auto-retry, bounded and classified.

Two Dagster mechanisms split the work (both need ``dagster-daemon``, which ``dagster dev`` starts):

* ``run_retries`` in ``dagster.yaml`` (``retry_on_asset_or_op_failure: false``) re-executes runs whose
  *process* died (a killed worker, OOM) from failure;
* the ``transient_run_retry`` run-failure sensor below re-executes runs that failed on a *transient*
  error class (the asset tagged the run ``cineforge/failure_class=transient``) from the failed stage on,
  at most ``CINEFORGE_MAX_AUTO_RETRIES`` times (default 2) per original run, and leaves permanent
  failures alone.

The re-run selects only the assets the failed run did not materialize, for the same partition, so
upstream materializations are reused and no upstream provider call is made again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SkipReason,
    run_failure_sensor,
)

from cineforge_assets.jobs import PIPELINE_ASSET_NAMES, screenplay_pipeline_job
from cineforge_assets.run_tags import (
    AUTO_RETRY_NUMBER_TAG,
    FAILED_STAGE_TAG,
    FAILURE_CLASS_TAG,
    PARTITION_TAG,
    RETRY_OF_TAG,
    RETRY_ROOT_TAG,
    SOURCE_PATH_TAG,
    SOURCE_SHA256_TAG,
)


def max_auto_retries() -> int:
    return int(os.environ.get("CINEFORGE_MAX_AUTO_RETRIES", "2"))


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    reason: str
    retry_number: int = 0


def decide_run_retry(tags: Mapping[str, str], *, max_retries: int) -> RetryDecision:
    """Whether a failed run should be re-executed, from its tags alone (pure)."""
    failure_class = tags.get(FAILURE_CLASS_TAG, "")
    done = int(tags.get(AUTO_RETRY_NUMBER_TAG, "0") or 0)
    stage = tags.get(FAILED_STAGE_TAG, "?")
    if failure_class != "transient":
        why = "permanent" if failure_class == "permanent" else "unclassified"
        return RetryDecision(False, f"failure at {stage} is {why}: not retried automatically")
    if done >= max_retries:
        return RetryDecision(False, f"transient failure at {stage}, but {done} auto-retries already used")
    if PARTITION_TAG not in tags:
        return RetryDecision(False, "run has no partition tag")
    return RetryDecision(True, f"transient failure at {stage}: re-executing from failure", done + 1)


def unmaterialized_assets(instance: DagsterInstance, run_id: str, selection: Iterable[str]) -> list[str]:
    """The selected pipeline assets the run did not materialize, in pipeline order."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    done = {
        r.event_log_entry.dagster_event.asset_key.to_user_string()
        for r in records
        if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.asset_key
    }
    return [name for name in selection if name not in done]


def retry_run_request(
    instance: DagsterInstance, run_id: str, tags: Mapping[str, str], number: int
) -> RunRequest:
    run = instance.get_run_by_id(run_id)
    selected = (
        [k.to_user_string() for k in run.asset_selection]
        if run is not None and run.asset_selection
        else list(PIPELINE_ASSET_NAMES)
    )
    ordered = [name for name in PIPELINE_ASSET_NAMES if name in selected]
    remaining = unmaterialized_assets(instance, run_id, ordered)
    return RunRequest(
        run_key=f"auto-retry:{run_id}",
        partition_key=tags[PARTITION_TAG],
        asset_selection=[AssetKey(name) for name in remaining],
        tags={
            # The retry reads the exact source version its parent was requested for, not whatever
            # version the partition holds by the time the sensor fires.
            **{k: tags[k] for k in (SOURCE_PATH_TAG, SOURCE_SHA256_TAG) if k in tags},
            AUTO_RETRY_NUMBER_TAG: str(number),
            RETRY_OF_TAG: run_id,
            RETRY_ROOT_TAG: tags.get(RETRY_ROOT_TAG, run_id),
        },
    )


@run_failure_sensor(
    name="transient_run_retry",
    monitored_jobs=[screenplay_pipeline_job],
    request_job=screenplay_pipeline_job,
    default_status=DefaultSensorStatus.RUNNING,
    description="Re-executes runs that failed on a transient provider error from the failed stage (bounded).",
)
def transient_run_retry(context: RunFailureSensorContext) -> RunRequest | SkipReason:
    run = context.dagster_run
    decision = decide_run_retry(run.tags, max_retries=max_auto_retries())
    context.log.info(f"run {run.run_id}: {decision.reason}")
    if not decision.retry:
        return SkipReason(decision.reason)
    return retry_run_request(context.instance, run.run_id, run.tags, decision.retry_number)
