"""``reliability_report``: per mode, provider and model, what failed and what the system did about it, what
it cost, and a chart of the report's own window an operator reads at a glance.

The totals, the spend and the chart are the live calls': drills against the simulator, the offline engine
and lines of no known mode are in the table (``mode`` column) and in ``other_modes`` /
``other_modes_usd``, never added to them (``cineforge_assets.reporting``)."""

import os
import time
from typing import Any

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
from pydantic import Field

from cineforge_assets.paths import artifacts_dir, telemetry_path
from cineforge_assets.reporting import (
    LIVE,
    build_operator_chart,
    figure_png,
    mode_totals,
    read_telemetry,
    reliability_frame,
    report_markdown,
    report_window,
    run_counts_by_mode,
    run_mode,
    spend_summary,
)
from cineforge_assets.resource_config import provider_mode_from_env
from cineforge_assets.run_tags import RESUME_TAGS
from resources.atomic_files import atomic_write_bytes
from resources.resilience.telemetry import UNKNOWN_MODE

DAILY_BUDGET_ENV = "CINEFORGE_DAILY_BUDGET_USD"
BREAKER_STORE_ENV = "CINEFORGE_BREAKER_STORE_URL"


class ReliabilityReportConfig(Config):
    window_hours: float = Field(
        default=24.0, gt=0, description="the span reported: up to 48 h in hourly buckets, longer in daily ones"
    )
    daily_budget_usd: float | None = Field(
        default=None, ge=0, description=f"the daily cap to show headroom against (default: ${DAILY_BUDGET_ENV})"
    )


def fleet_spend_today(now: float) -> float | None:
    """Today's live spend from the spend ledger every worker settles into (the breakers' store): the
    fleet-wide figure the daily cap is enforced against, where telemetry files are per host. None when the
    store cannot be read (the report then falls back to its telemetry)."""
    from resources.resilience.breaker_store import default_store_url
    from resources.resilience.budget import SpendLedger, spend_store_from_url

    try:
        store = spend_store_from_url(os.environ.get(BREAKER_STORE_ENV) or default_store_url())
        try:
            return float(SpendLedger(store, clock=lambda: now).spent()["day"])
        finally:
            store.close()
    except Exception:  # the report must still materialize when the store is down
        return None


def _daily_budget(config: ReliabilityReportConfig) -> float | None:
    if config.daily_budget_usd is not None:
        return config.daily_budget_usd
    raw = os.environ.get(DAILY_BUDGET_ENV, "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


@asset(
    group_name="operations",
    description="Per mode/provider/model: calls, transient and permanent failures, retries, fallbacks, "
    "breaker openings, time lost waiting; live spend by day, provider, model and stage, the fallbacks' "
    "premium and the daily budget's headroom (simulated and offline usage apart, never added); run-level step "
    "retries and resumed runs; a PNG chart of the window's live calls.",
)
def reliability_report(context: AssetExecutionContext, config: ReliabilityReportConfig):
    now = time.time()
    window = report_window(now, config.window_hours)
    since = window.since
    records = list(read_telemetry(telemetry_path(), since=since))
    frame = reliability_frame(records)
    spend = spend_summary(
        records, window, now=now, daily_budget_usd=_daily_budget(config), spent_today_usd=fleet_spend_today(now)
    )

    instance = context.instance
    default_mode = provider_mode_from_env()
    runs = instance.get_runs(filters=RunsFilter(created_after=_utc(since)), limit=10_000)
    modes = {r.run_id: run_mode(r.run_config, default_mode) for r in runs}

    def mode_of_run(run_id: str) -> str:
        if run_id not in modes:  # a step retried in the window of a run created before it
            run = instance.get_run_by_id(run_id)
            modes[run_id] = run_mode(run.run_config, default_mode) if run is not None else UNKNOWN_MODE
        return modes[run_id]

    retried = instance.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.STEP_UP_FOR_RETRY, after_timestamp=since), limit=10_000
    )
    run_counts = run_counts_by_mode(
        (
            (modes[r.run_id], r.status.value == "FAILURE", any(tag in r.tags for tag in RESUME_TAGS))
            for r in runs
        ),
        (mode_of_run(record.run_id) for record in retried),
    )
    live_runs = run_counts.get(LIVE, {})

    chart_path = artifacts_dir() / "reliability_report" / "failures_over_time.png"
    atomic_write_bytes(chart_path, figure_png(build_operator_chart(records, window, "Provider attempts")))

    attempt_counts = mode_totals(frame)
    by_mode: dict[str, dict[str, Any]] = {}
    for mode in {*attempt_counts, *run_counts}:
        by_mode[mode] = {**attempt_counts.get(mode, {}), **run_counts.get(mode, {})}
    totals = attempt_counts.get(LIVE)
    other_modes = {mode: counts for mode, counts in by_mode.items() if mode != LIVE}
    live = frame[frame["mode"] == LIVE]
    spend_meta = spend.as_metadata()
    return MaterializeResult(
        value=frame,
        metadata={
            "window_hours": config.window_hours,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "bucket": window.bucket,
            "counted_mode": MetadataValue.text(
                "live: providers, calls, failures, fallbacks, openings, time lost, spend_* and the run counts "
                "(runs, failed_runs, runs_resumed, step_retries) are live calls' and runs' only; simulated, "
                "offline and unknown-mode (lines without a mode) ones are in other_modes, other_modes_usd "
                "(list price, not spent) and the report's mode column"
            ),
            "providers": len(set(live["provider"])),
            "calls": int(totals["calls"]) if totals is not None else 0,
            "transient_failures": int(totals["transient_failures"]) if totals is not None else 0,
            "permanent_failures": int(totals["permanent_failures"]) if totals is not None else 0,
            "fallbacks": int(totals["fallbacks"]) if totals is not None else 0,
            "breaker_openings": int(totals["breaker_openings"]) if totals is not None else 0,
            "time_lost_waiting_s": float(totals["time_lost_waiting_s"]) if totals is not None else 0.0,
            "other_modes": MetadataValue.json(other_modes),
            "step_retries": live_runs.get("step_retries", 0),
            "runs": live_runs.get("runs", 0),
            "failed_runs": live_runs.get("failed_runs", 0),
            "runs_resumed": live_runs.get("runs_resumed", 0),
            **{k: MetadataValue.json(v) if isinstance(v, dict) else v for k, v in spend_meta.items() if v is not None},
            "report": MetadataValue.md(report_markdown(frame)),
            "chart_path": MetadataValue.path(str(chart_path)),
        },
    )


def _utc(ts: float):  # noqa: ANN202 - datetime
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)
