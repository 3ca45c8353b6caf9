"""Sensors of the code location; ``sensors`` is what ``definitions.py`` registers.

* ``screenplay_inbox`` - a screenplay dropped into ``$CINEFORGE_DATA/inbox/`` becomes a dynamic partition
  and a ``screenplay_pipeline`` run, once per file content (the decisions live in ``inbox.py``).
* ``transient_run_retry`` - re-executes a run that failed on a transient error class (``run_retry.py``).
* ``degraded_heal`` - re-runs what the offline engine or a lower-quality fallback served, once the
  preferred provider is healthy again (``heal.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from cineforge_assets.heal import degraded_heal_sensor
from cineforge_assets.inbox import REFUSALS, AcceptedFile, InboxCursor, InboxPolicy, SeenFile, SkippedFile, scan_inbox
from cineforge_assets.jobs import screenplay_pipeline_job
from cineforge_assets.partitions import screenplay_partitions
from cineforge_assets.paths import inbox_dir
from cineforge_assets.run_retry import transient_run_retry
from cineforge_assets.run_tags import SOURCE_FORMAT_TAG, SOURCE_SHA256_TAG, SOURCE_TAG, TRIGGER_TAG
from cineforge_assets.screenplay.formats.errors import SourceError
from cineforge_assets.sources import (
    RegisteredSource,
    SourceConflictError,
    SourceRegistryError,
    register_source_version,
    replace_sources_from_env,
)

INBOX_SENSOR_NAME = "screenplay_inbox"
DEFAULT_INBOX_INTERVAL_SECONDS = 15


def inbox_interval_from_env() -> int:
    """``CINEFORGE_INBOX_INTERVAL_SECONDS``: how often the daemon evaluates the inbox (default 15)."""
    return max(1, int(os.environ.get("CINEFORGE_INBOX_INTERVAL_SECONDS", DEFAULT_INBOX_INTERVAL_SECONDS)))


def _log_skip(context: SensorEvaluationContext, skip: SkippedFile) -> None:
    """Refusals are warnings the first time a version of a file is seen, then quiet."""
    line = f"inbox: skipped {skip.name}: {skip.reason}"
    if (skip.kind in REFUSALS or skip.kind == "superseded") and skip.new:
        context.log.warning(line)
    elif skip.kind == "settling":
        context.log.info(line)
    else:
        context.log.debug(line)


def _run_request(item: AcceptedFile, registered: RegisteredSource) -> RunRequest:
    return RunRequest(
        run_key=item.run_key,
        partition_key=registered.partition_key,
        tags={
            TRIGGER_TAG: "inbox",
            SOURCE_TAG: item.name,
            SOURCE_SHA256_TAG: item.sha256,
            SOURCE_FORMAT_TAG: item.source_format,
            # The exact stored version: raw_input reads it and checks its hash.
            **registered.run_tags(),
        },
    )


def evaluate_inbox(context: SensorEvaluationContext, *, now: float, policy: InboxPolicy) -> SensorResult:
    """One tick: scan the inbox, register accepted files as sources, request a run per file."""
    folder = inbox_dir()
    folder.mkdir(parents=True, exist_ok=True)
    previous = InboxCursor.from_json(context.cursor)
    scan = scan_inbox(folder, previous, now=now, policy=policy)
    for skip in scan.skipped:
        _log_skip(context, skip)
    for warning in scan.warnings:
        context.log.warning(f"inbox: {warning}")
    cursor = scan.cursor
    run_requests: list[RunRequest] = []
    conflicts: list[str] = []
    for item in scan.accepted:
        try:
            registered = register_source_version(
                item.entry.path, limits=policy.source_limits, replace=replace_sources_from_env()
            )
        except (OSError, SourceError) as exc:
            context.log.warning(f"inbox: cannot register {item.name} ({exc}); trying again next tick")
            cursor = cursor.with_entry(item.name, previous.files.get(item.name))
            continue
        except SourceConflictError as exc:
            # Refused once per version of the file, like an unsupported file; a new version is looked at again.
            context.log.warning(f"inbox: refused {exc}")
            cursor = cursor.with_entry(item.name, SeenFile(item.entry.fingerprint, item.sha256, refused=str(exc)))
            conflicts.append(str(exc))
            continue
        except SourceRegistryError as exc:
            context.log.warning(f"inbox: cannot register {item.name} ({exc}); trying again next tick")
            cursor = cursor.with_entry(item.name, previous.files.get(item.name))
            continue
        partition_key = registered.partition_key
        if registered.sha256 != item.sha256:
            # The file changed between hashing and copying: run nothing now; the next tick sees a new
            # mtime, waits for it to settle and runs the final content.
            context.log.info(f"inbox: {item.name} changed while being registered; looking again next tick")
            cursor = cursor.with_entry(item.name, previous.files.get(item.name))
            continue
        context.log.info(
            f"inbox: {item.name} ({item.source_format}, sha256 {item.sha256[:12]}) -> partition "
            f"{partition_key!r}, run key {item.run_key}"
        )
        run_requests.append(_run_request(item, registered))
    if not run_requests:
        reason = (
            scan.summary()
            if not scan.accepted
            else "; ".join(conflicts) or "files changed while being registered; next tick"
        )
        return SensorResult(skip_reason=SkipReason(reason), cursor=cursor.to_json())
    keys = list(dict.fromkeys(str(r.partition_key) for r in run_requests))
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[screenplay_partitions.build_add_request(keys)],
        cursor=cursor.to_json(),
    )


def build_inbox_sensor(
    *,
    name: str = INBOX_SENSOR_NAME,
    clock: Callable[[], float] = time.time,
    policy: InboxPolicy | None = None,
    minimum_interval_seconds: int | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
) -> SensorDefinition:
    """The inbox sensor. ``clock`` (epoch seconds) and ``policy`` are injectable for tests; by default
    the policy is read from the environment at every tick (``InboxPolicy.from_env``)."""

    @sensor(
        name=name,
        job=screenplay_pipeline_job,
        minimum_interval_seconds=minimum_interval_seconds or inbox_interval_from_env(),
        default_status=default_status,
        description=(
            "Turns each screenplay dropped into $CINEFORGE_DATA/inbox/ into a partition and a "
            "screenplay_pipeline run (again when the file's content changes)."
        ),
    )
    def screenplay_inbox(context: SensorEvaluationContext) -> SensorResult:
        return evaluate_inbox(context, now=clock(), policy=policy or InboxPolicy.from_env())

    return screenplay_inbox


screenplay_inbox_sensor = build_inbox_sensor()

sensors: list[SensorDefinition] = [screenplay_inbox_sensor, transient_run_retry, degraded_heal_sensor]
