"""``reliability_report``: per provider and model, what failed and what the system did about it."""

import time

from dagster import (
    AssetExecutionContext,
    Config,
    DagsterEventType,
    EventRecordsFilter,
    MaterializeResult,
    MetadataValue,
    RunsFilter,
    asset,
)

from cineforge_assets.paths import artifacts_dir, telemetry_path
from cineforge_assets.reporting import (
    failures_over_time,
    read_telemetry,
    reliability_frame,
    render_chart,
    report_markdown,
)
from resources.io_manager import atomic_write_bytes

RESUME_TAGS = ("cineforge/resumed_from", "cineforge/retry_of", "dagster/parent_run_id")


class ReliabilityReportConfig(Config):
    window_hours: float = 24.0
    bucket: str = "1min"


@asset(
    group_name="operations",
    description="Per provider/model: calls, transient and permanent failures, retries, fallbacks, breaker "
    "openings, time lost waiting; run-level step retries and resumed runs; a PNG chart over time.",
)
def reliability_report(context: AssetExecutionContext, config: ReliabilityReportConfig):
    since = time.time() - config.window_hours * 3600.0
    records = list(read_telemetry(telemetry_path(), since=since))
    frame = reliability_frame(records)

    instance = context.instance
    step_retries = len(
        instance.get_event_records(
            EventRecordsFilter(event_type=DagsterEventType.STEP_UP_FOR_RETRY, after_timestamp=since),
            limit=10_000,
        )
    )
    runs = instance.get_runs(filters=RunsFilter(created_after=_utc(since)), limit=10_000)
    resumed = sum(1 for r in runs if any(tag in r.tags for tag in RESUME_TAGS))
    failed_runs = sum(1 for r in runs if r.status.value == "FAILURE")

    chart_path = artifacts_dir() / "reliability_report" / "failures_over_time.png"
    atomic_write_bytes(
        chart_path, render_chart(failures_over_time(records, bucket=config.bucket), "Failures and fallbacks")
    )

    totals = frame.sum(numeric_only=True) if len(frame) else None
    return MaterializeResult(
        value=frame,
        metadata={
            "window_hours": config.window_hours,
            "providers": len(set(frame["provider"])) if len(frame) else 0,
            "calls": int(totals["calls"]) if totals is not None else 0,
            "transient_failures": int(totals["transient_failures"]) if totals is not None else 0,
            "permanent_failures": int(totals["permanent_failures"]) if totals is not None else 0,
            "fallbacks": int(totals["fallbacks"]) if totals is not None else 0,
            "breaker_openings": int(totals["breaker_openings"]) if totals is not None else 0,
            "time_lost_waiting_s": float(totals["time_lost_waiting_s"]) if totals is not None else 0.0,
            "step_retries": step_retries,
            "runs": len(runs),
            "failed_runs": failed_runs,
            "runs_resumed": resumed,
            "report": MetadataValue.md(report_markdown(frame)),
            "chart_path": MetadataValue.path(str(chart_path)),
        },
    )


def _utc(ts: float):  # noqa: ANN202 - datetime
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)
