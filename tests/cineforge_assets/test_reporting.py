"""The reliability report an operator reads at a glance: drawn from known telemetry, checked on the
matplotlib objects (axis range, bar totals, shaded spans), not on pixels."""

from __future__ import annotations

from typing import Any

import matplotlib.dates as mdates
import pandas as pd
import pytest

from cineforge_assets.reporting import (
    attempt_outcome,
    breaker_open_intervals,
    build_operator_chart,
    figure_png,
    report_window,
    spend_summary,
)

NOW = pd.Timestamp("2026-11-30 06:20:00", tz="UTC").timestamp()
HOUR = 3600.0


def attempt(
    hours_ago: float,
    provider: str,
    outcome: str,
    *,
    error_class: str | None = None,
    cost: float | None = 0.0,
    first_cost: float | None = None,
    stage: str = "extract_scenes",
    model: str = "m",
    mode: str | None = "live",
) -> dict[str, Any]:
    return {
        "kind": "attempt",
        **({"mode": mode} if mode else {}),
        "ts": NOW - hours_ago * HOUR,
        "stage": stage,
        "provider": provider,
        "model": model,
        "outcome": outcome,
        "error_class": error_class,
        "decision": "success",
        "cost_usd": cost,
        "first_model_cost_usd": first_cost,
    }


def transition(hours_ago: float, provider: str, to_state: str, mode: str = "live") -> dict[str, Any]:
    return {
        "kind": "breaker_transition",
        "mode": mode,
        "at": NOW - hours_ago * HOUR,
        "provider": provider,
        "to_state": to_state,
    }


TELEMETRY = [
    attempt(30, "anthropic", "success", cost=9.0),  # before the 24 h window: left out
    attempt(5.5, "anthropic", "error", error_class="transient"),
    attempt(5.4, "anthropic", "error", error_class="transient"),
    transition(5.4, "anthropic", "open"),
    attempt(5.3, "anthropic", "skipped"),
    attempt(5.3, "openai", "success", cost=0.30, first_cost=0.20, model="gpt-4.1"),
    transition(4.9, "anthropic", "half_open"),
    transition(4.8, "anthropic", "closed"),
    attempt(2.2, "anthropic", "success", cost=0.10, model="claude-sonnet-4-6"),
    attempt(2.1, "gemini", "error", error_class="permanent"),
    attempt(1.0, "anthropic", "success", cost=0.05, stage="project_config", model="claude-haiku-4-5"),
    attempt(0.5, "openai", "success", cost=None, model="unknown"),  # unpriced: counted, not priced
    transition(0.2, "gemini", "open"),  # still open at the end of the window
]


# The same morning's fault drill against the simulator, and a line from before lines carried a mode.
DRILL = [
    attempt(3.0, "anthropic", "error", error_class="transient", mode="simulated"),
    attempt(3.0, "anthropic", "error", error_class="transient", mode="simulated"),
    transition(3.0, "anthropic", "open", mode="simulated"),
    attempt(2.9, "openai", "success", cost=2.0, first_cost=1.0, model="gpt-4.1", mode="simulated"),
    transition(2.5, "gemini", "open", mode="simulated"),  # never closed: must not shade the live chart
    attempt(2.8, "offline", "success", cost=0.0, model="offline", mode="offline"),
    attempt(2.7, "openai", "success", cost=0.7, model="gpt-4.1", mode=None),
]


def bars(ax: Any, prefix: str) -> list[Any]:
    return [p for p in ax.patches if (p.get_gid() or "").startswith(prefix)]


def test_the_window_is_the_last_24_hours_in_hourly_buckets_aligned_to_the_clock() -> None:
    window = report_window(NOW, 24)
    assert window.bucket == "1h"
    assert window.end == pd.Timestamp("2026-11-30 07:00", tz="UTC")
    assert window.start == pd.Timestamp("2026-11-29 07:00", tz="UTC")
    assert len(window.buckets()) == 24
    week = report_window(NOW, 24 * 7)
    assert week.bucket == "1D" and len(week.buckets()) == 7
    assert week.end == pd.Timestamp("2026-12-01", tz="UTC")


def test_the_chart_draws_the_window_with_attempts_stacked_per_provider_and_spend_below() -> None:
    window = report_window(NOW, 24)
    fig = build_operator_chart(TELEMETRY, window, "Provider attempts")
    attempts_ax, spend_ax = fig.axes
    start, end = mdates.date2num(window.start.to_pydatetime()), mdates.date2num(window.end.to_pydatetime())
    assert attempts_ax.get_xlim() == pytest.approx((start, end))
    assert spend_ax.get_xlim() == pytest.approx((start, end))

    drawn = bars(attempts_ax, "attempts:")
    assert sum(p.get_height() for p in drawn) == len([r for r in TELEMETRY if r["kind"] == "attempt"]) - 1
    by_series: dict[str, float] = {}
    for p in drawn:
        by_series[p.get_gid()] = by_series.get(p.get_gid(), 0) + p.get_height()
    assert by_series == {
        "attempts:anthropic:ok": 2,
        "attempts:anthropic:transient": 2,
        "attempts:anthropic:skipped": 1,
        "attempts:openai:ok": 2,
        "attempts:gemini:permanent": 1,
    }
    assert all(start <= p.get_x() and p.get_x() + p.get_width() <= end for p in drawn)

    spend = bars(spend_ax, "spend")
    assert len(spend) == 24
    assert sum(p.get_height() for p in spend) == pytest.approx(0.30 + 0.10 + 0.05)

    shaded = [p for p in attempts_ax.patches if (p.get_gid() or "").startswith("breaker_open:")]
    assert sorted(p.get_gid() for p in shaded) == ["breaker_open:anthropic", "breaker_open:gemini"]
    assert figure_png(fig).startswith(b"\x89PNG")


def test_a_breaker_is_shaded_from_opening_to_closing_and_one_still_open_to_the_window_end() -> None:
    window = report_window(NOW, 24)
    spans = breaker_open_intervals(TELEMETRY, window)
    assert [(p, round((b - a).total_seconds() / 60)) for p, a, b in spans] == [
        ("anthropic", 36),  # open 5.4 h ago, probing, closed 4.8 h ago
        ("gemini", round((window.end.timestamp() - (NOW - 0.2 * HOUR)) / 60)),
    ]


def test_spend_by_day_provider_model_and_stage_with_the_fallback_premium_and_budget_headroom() -> None:
    window = report_window(NOW, 24)
    spend = spend_summary(TELEMETRY, window, now=NOW, daily_budget_usd=1.0)
    assert spend.total_usd == pytest.approx(0.45)
    assert spend.by_provider == {"anthropic": 0.15, "gemini": 0.0, "openai": 0.3}  # failed calls bill nothing
    assert spend.by_stage == {"extract_scenes": 0.4, "project_config": 0.05}
    assert spend.by_model == {"claude-haiku-4-5": 0.05, "claude-sonnet-4-6": 0.1, "gpt-4.1": 0.3, "m": 0.0}
    assert spend.by_day == {"2026-11-30": 0.45}
    assert spend.fallback_premium_usd == pytest.approx(0.10)
    assert spend.unpriced_calls == 1
    assert spend.budget_headroom_usd == pytest.approx(0.55)
    assert spend_summary(TELEMETRY, window, now=NOW).budget_headroom_usd is None


def test_outcomes_are_the_four_the_chart_stacks() -> None:
    assert attempt_outcome({"outcome": "success"}) == "ok"
    assert attempt_outcome({"outcome": "skipped"}) == "skipped"
    assert attempt_outcome({"outcome": "error", "error_class": "transient"}) == "transient"
    assert attempt_outcome({"outcome": "error", "error_class": "provider_unavailable"}) == "permanent"


def test_an_empty_window_still_draws_its_axes() -> None:
    window = report_window(NOW, 24 * 7)
    fig = build_operator_chart([], window, "Provider attempts")
    attempts_ax, spend_ax = fig.axes
    assert not bars(attempts_ax, "attempts:")
    assert sum(p.get_height() for p in bars(spend_ax, "spend")) == 0
    assert attempts_ax.get_xlim() == pytest.approx(
        (mdates.date2num(window.start.to_pydatetime()), mdates.date2num(window.end.to_pydatetime()))
    )
    figure_png(fig)


@pytest.mark.usefixtures("data_root")
def test_the_asset_reports_spend_and_headroom_and_writes_the_chart(
    instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import time
    from pathlib import Path

    from dagster import AssetKey, materialize

    from cineforge_assets.assets.reliability import reliability_report
    from cineforge_assets.paths import telemetry_path

    now = time.time()
    lines = [
        {**attempt(0, "anthropic", "success", cost=0.25), "ts": now - 60},
        {**attempt(0, "openai", "success", cost=0.5, first_cost=0.25), "ts": now - 30},
        {**attempt(0, "anthropic", "success", cost=7.0), "ts": now - 3 * 24 * HOUR},  # outside 24 h
    ]
    path = telemetry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    monkeypatch.setenv("CINEFORGE_DAILY_BUDGET_USD", "2")
    assert materialize([reliability_report], instance=instance, resources={}).success
    event = instance.get_latest_materialization_event(AssetKey("reliability_report"))
    meta = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    assert meta["spend_usd"] == pytest.approx(0.75)
    assert meta["fallback_premium_usd"] == pytest.approx(0.25)
    assert meta["spend_by_provider"] == {"anthropic": 0.25, "openai": 0.5}
    assert meta["daily_budget_usd"] == 2.0
    assert meta["budget_headroom_usd"] == pytest.approx(2.0 - meta["spent_today_usd"])
    assert meta["bucket"] == "1h"
    assert Path(meta["chart_path"]).read_bytes().startswith(b"\x89PNG")


@pytest.mark.usefixtures("data_root")
def test_the_headroom_is_against_the_fleet_wide_ledger_not_one_hosts_telemetry(
    instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from dagster import AssetKey, materialize

    from cineforge_assets.assets.reliability import reliability_report
    from resources.resilience.breaker_store import default_store_url
    from resources.resilience.budget import day_key, spend_store_from_url

    now = time.time()
    store = spend_store_from_url(default_store_url())  # other workers settled $1.50 today
    try:
        store.update([day_key(now)], lambda values: ({key: 1.5 for key in values}, None))
    finally:
        store.close()
    monkeypatch.setenv("CINEFORGE_DAILY_BUDGET_USD", "2")
    assert materialize([reliability_report], instance=instance, resources={}).success
    event = instance.get_latest_materialization_event(AssetKey("reliability_report"))
    meta = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    assert meta["spend_usd"] == 0.0  # nothing in this host's telemetry
    assert meta["spent_today_usd"] == pytest.approx(1.5)
    assert meta["budget_headroom_usd"] == pytest.approx(0.5)


def test_a_drill_in_the_same_file_is_neither_live_spend_nor_live_failures_but_is_shown_apart() -> None:
    window = report_window(NOW, 24)
    mixed = sorted(TELEMETRY + DRILL, key=lambda rec: rec.get("ts", rec.get("at")))
    spend = spend_summary(mixed, window, now=NOW, daily_budget_usd=1.0)
    live = spend_summary(TELEMETRY, window, now=NOW, daily_budget_usd=1.0)
    assert spend.total_usd == pytest.approx(0.45)  # the live calls' money only
    assert (spend.by_day, spend.by_provider, spend.by_model, spend.by_stage) == (
        live.by_day,
        live.by_provider,
        live.by_model,
        live.by_stage,
    )
    assert spend.fallback_premium_usd == pytest.approx(0.10)
    assert spend.budget_headroom_usd == pytest.approx(0.55)
    assert spend.other_modes_usd == {"offline": 0.0, "simulated": 2.0, "unknown": 0.7}
    assert spend.as_metadata()["other_modes_usd"] == spend.other_modes_usd

    from cineforge_assets.reporting import mode_totals, reliability_frame

    frame = reliability_frame(mixed)
    assert list(frame.columns[:3]) == ["mode", "provider", "model"]
    assert list(dict.fromkeys(frame["mode"])) == ["live", "simulated", "offline", "unknown"]
    drill = frame[frame["mode"] == "simulated"].set_index(["provider", "model"])
    assert drill.loc[("anthropic", "m"), "transient_failures"] == 2
    assert drill.loc[("anthropic", "*"), "breaker_openings"] == 1
    totals = mode_totals(frame)
    assert totals["live"]["transient_failures"] == 2 and totals["live"]["breaker_openings"] == 2
    assert totals["live"]["calls"] == 8  # the frame is not windowed: read_telemetry is
    assert totals["simulated"]["calls"] == 3 and totals["simulated"]["breaker_openings"] == 2
    assert totals["unknown"]["calls"] == 1 and totals["offline"]["calls"] == 1


def test_the_chart_draws_the_live_calls_only_and_says_how_many_it_left_out() -> None:
    window = report_window(NOW, 24)
    mixed = TELEMETRY + DRILL
    attempts_ax, spend_ax = build_operator_chart(mixed, window, "Provider attempts").axes
    drawn = bars(attempts_ax, "attempts:")
    assert sum(p.get_height() for p in drawn) == len([r for r in TELEMETRY if r["kind"] == "attempt"]) - 1
    assert sum(p.get_height() for p in bars(spend_ax, "spend")) == pytest.approx(0.30 + 0.10 + 0.05)
    shaded = [p for p in attempts_ax.patches if (p.get_gid() or "").startswith("breaker_open:")]
    assert sorted(p.get_gid() for p in shaded) == ["breaker_open:anthropic", "breaker_open:gemini"]
    gemini = [p for p in shaded if p.get_gid() == "breaker_open:gemini"]
    assert len(gemini) == 1  # the live one opened 0.2 h ago, not the drill's 2.5 h ago
    assert "5 simulated/offline/unknown-mode attempts not drawn" in attempts_ax.get_title()


@pytest.mark.usefixtures("data_root")
def test_the_asset_counts_live_calls_and_money_only_and_its_metadata_says_so(instance: Any) -> None:
    import json
    import time

    from dagster import AssetKey, materialize

    from cineforge_assets.assets.reliability import reliability_report
    from cineforge_assets.paths import telemetry_path

    now = time.time()
    lines = [
        {**attempt(0, "anthropic", "success", cost=0.25), "ts": now - 60},
        {**attempt(0, "anthropic", "error", error_class="transient", mode="simulated"), "ts": now - 50},
        {**attempt(0, "anthropic", "error", error_class="transient", mode="simulated"), "ts": now - 49},
        {**transition(0, "anthropic", "open", mode="simulated"), "at": now - 49},
        {**attempt(0, "openai", "success", cost=3.0, mode="simulated"), "ts": now - 48},
        {**attempt(0, "openai", "success", cost=0.5, mode=None), "ts": now - 40},
    ]
    path = telemetry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = materialize([reliability_report], instance=instance, resources={})
    assert result.success
    event = instance.get_latest_materialization_event(AssetKey("reliability_report"))
    meta = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    assert meta["spend_usd"] == pytest.approx(0.25)
    assert meta["spend_by_provider"] == {"anthropic": 0.25}
    assert meta["other_modes_usd"] == {"simulated": 3.0, "unknown": 0.5}
    assert (meta["calls"], meta["transient_failures"], meta["breaker_openings"], meta["providers"]) == (1, 0, 0, 1)
    assert meta["other_modes"]["simulated"]["transient_failures"] == 2
    assert meta["other_modes"]["simulated"]["breaker_openings"] == 1
    assert meta["other_modes"]["unknown"]["calls"] == 1
    assert meta["counted_mode"].startswith("live")
    assert "| mode | provider |" in meta["report"]
    frame = result.output_for_node("reliability_report")
    assert set(frame["mode"]) == {"live", "simulated", "unknown"}


def test_runs_are_counted_under_the_mode_their_config_gives_the_ai_resource() -> None:
    from cineforge_assets.reporting import run_counts_by_mode, run_mode

    drill = {"resources": {"ai": {"config": {"mode": "simulated", "simulator_url": "http://127.0.0.1:1"}}}}
    assert run_mode(drill, "live") == "simulated"
    assert run_mode({"resources": {"io_manager": {}}}, "live") == "live"  # no ai config: the location's mode
    assert run_mode(None, "offline") == "offline"
    counts = run_counts_by_mode(
        [("simulated", True, False), ("simulated", False, True), ("live", False, False)], ["simulated", "live"]
    )
    assert counts == {
        "simulated": {"runs": 2, "failed_runs": 1, "runs_resumed": 1, "step_retries": 1},
        "live": {"runs": 1, "failed_runs": 0, "runs_resumed": 0, "step_retries": 1},
    }
