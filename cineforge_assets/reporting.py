"""Reliability report: what failed, where, and what the system did about it (pure, no Dagster).

Inputs are the telemetry JSONL lines (one per provider attempt or breaker transition, written by
``JsonlTelemetrySink`` in every process) and a few run-level counts read from Dagster's event log.

One file holds every mode's lines. The table keeps them apart by a ``mode`` column; the chart, the spend
figures and the totals an operator reads first count ``live`` lines only: a fault drill against the
simulator is not a provider outage, and the simulator's answers priced at list price are not money spent.
Other modes' list-priced usage is reported apart (``other_modes_usd``). A line without a mode (written
before lines were stamped) is ``unknown``: shown apart too, since the same files then mixed drills and
live calls and nothing in the line says which it was.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from resources.resilience.telemetry import UNKNOWN_MODE, line_mode, window_files

LIVE = "live"
# The table's order: the money first, then drills, the offline engine, and lines of no known mode.
MODE_ORDER = {LIVE: 0, "simulated": 1, "offline": 2, UNKNOWN_MODE: 3}

REPORT_COLUMNS = [
    "mode",
    "provider",
    "model",
    "calls",
    "successes",
    "transient_failures",
    "permanent_failures",
    "provider_unavailable",
    "retries",
    "fallbacks",
    "skips",
    "breaker_openings",
    "time_lost_waiting_s",
]


def read_telemetry(path: Path, *, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Telemetry lines newer than ``since``, from the live file and the rotated segments that can hold
    them (``window_files``: older segments are not opened); a torn line (a writer killed mid-line) is
    skipped."""
    for part in window_files(path, since):
        try:
            handle = part.open("r", encoding="utf-8")
        except FileNotFoundError:  # rotated or pruned between listing and opening
            continue
        with handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                ts = record.get("ts", record.get("at", 0.0))
                if since is not None and float(ts or 0.0) < since:
                    continue
                yield record


def of_mode(records: Iterable[dict[str, Any]], mode: str = LIVE) -> list[dict[str, Any]]:
    """The lines written in ``mode`` (``line_mode``: a line without one is ``unknown``)."""
    return [rec for rec in records if line_mode(rec) == mode]


def reliability_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per mode/provider/model with the counts the on-call engineer asks for, live rows first."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}

    def row(mode: str, provider: str, model: str) -> dict[str, Any]:
        key = (mode, provider, model)
        if key not in rows:
            rows[key] = {c: 0 for c in REPORT_COLUMNS[3:]} | {"mode": mode, "provider": provider, "model": model}
            rows[key]["time_lost_waiting_s"] = 0.0
        return rows[key]

    for rec in records:
        if rec.get("kind") == "breaker_transition":
            if rec.get("to_state") == "open":
                row(line_mode(rec), str(rec.get("provider")), "*")["breaker_openings"] += 1
            continue
        if rec.get("kind") != "attempt":
            continue
        r = row(line_mode(rec), str(rec.get("provider")), str(rec.get("model")))
        outcome, decision = rec.get("outcome"), rec.get("decision")
        if outcome == "skipped":
            r["skips"] += 1
        else:
            r["calls"] += 1
            if outcome == "success":
                r["successes"] += 1
            elif rec.get("error_class") == "transient":
                r["transient_failures"] += 1
            elif rec.get("error_class") == "permanent":
                r["permanent_failures"] += 1
            elif rec.get("error_class") == "provider_unavailable":
                r["provider_unavailable"] += 1
        if decision == "retry_same_model":
            r["retries"] += 1
        elif decision in ("fallback_next_model", "fallback_next_provider") or (
            decision == "skip_provider" and outcome != "skipped"
        ):
            r["fallbacks"] += 1
        r["time_lost_waiting_s"] += float(rec.get("delay_s") or 0.0)
    frame = pd.DataFrame(list(rows.values()), columns=REPORT_COLUMNS)
    frame["time_lost_waiting_s"] = frame["time_lost_waiting_s"].astype(float).round(3)
    rank = frame["mode"].map(lambda mode: MODE_ORDER.get(mode, len(MODE_ORDER)))
    order = frame.assign(_rank=rank).sort_values(["_rank", "mode", "provider", "model"]).index
    return frame.loc[order].reset_index(drop=True)


def mode_totals(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per mode: the table's counts summed over its providers and models."""
    if frame.empty:
        return {}
    sums = frame.drop(columns=["provider", "model"]).groupby("mode").sum(numeric_only=True)
    return {
        str(mode): {column: (float(v) if column == "time_lost_waiting_s" else int(v)) for column, v in row.items()}
        for mode, row in sums.iterrows()
    }


def run_mode(run_config: Mapping[str, Any] | None, default: str) -> str:
    """The provider mode a run's config gives the ``ai`` resource; ``default`` (the mode the code location
    runs in) when it sets none."""
    ai = ((run_config or {}).get("resources") or {}).get("ai") or {}
    mode = (ai.get("config") or {}).get("mode") if isinstance(ai, Mapping) else None
    return str(mode or default)


def run_counts_by_mode(
    runs: Iterable[tuple[str, bool, bool]], step_retry_modes: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Per mode: ``runs``, ``failed_runs``, ``runs_resumed`` from ``(mode, failed, resumed)`` per run, and
    ``step_retries`` from the mode of each retried step's run: a drill's failed run is no live failure."""
    counts: dict[str, dict[str, int]] = {}

    def of(mode: str) -> dict[str, int]:
        return counts.setdefault(mode, {"runs": 0, "failed_runs": 0, "runs_resumed": 0, "step_retries": 0})

    for mode, failed, resumed in runs:
        row = of(mode)
        row["runs"] += 1
        row["failed_runs"] += int(failed)
        row["runs_resumed"] += int(resumed)
    for mode in step_retry_modes:
        of(mode)["step_retries"] += 1
    return counts


def report_markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no provider attempts recorded in the window_"
    header = "| " + " | ".join(REPORT_COLUMNS) + " |"
    lines = [header, "|" + "---|" * len(REPORT_COLUMNS)]
    for rec in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in rec) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ the operator's view (issue 15 item 7)

OUTCOMES = ("ok", "transient", "permanent", "skipped")
OUTCOME_COLORS = {"ok": "#27ae60", "transient": "#f39c12", "permanent": "#c0392b", "skipped": "#95a5a6"}
# A window up to two days is drawn in hourly buckets, a longer one in daily buckets.
HOURLY_UP_TO_HOURS = 48.0


@dataclass(frozen=True)
class ReportWindow:
    """The span the report covers, ``[start, end)``, cut into ``bucket``-wide buckets (UTC)."""

    start: pd.Timestamp
    end: pd.Timestamp
    bucket: str  # pandas frequency: "1h" or "1D"

    @property
    def since(self) -> float:
        return float(self.start.timestamp())

    def buckets(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, self.end, freq=self.bucket, inclusive="left")


def report_window(now: float, window_hours: float) -> ReportWindow:
    """The last ``window_hours`` up to ``now``: the end rounded up to a whole bucket so buckets align with
    the clock (hours, or UTC days for a window longer than two days)."""
    bucket = "1h" if window_hours <= HOURLY_UP_TO_HOURS else "1D"
    end = pd.Timestamp(now, unit="s", tz="UTC").ceil(bucket)
    if end.timestamp() == now:  # exactly on a boundary: the bucket now starting holds nothing yet
        end = end + pd.Timedelta(bucket)
    width = pd.Timedelta(bucket)
    count = max(1, math.ceil(pd.Timedelta(hours=window_hours) / width))
    return ReportWindow(start=end - count * width, end=end, bucket=bucket)


def attempt_outcome(record: dict[str, Any]) -> str:
    """``ok`` / ``transient`` / ``permanent`` / ``skipped``: what the operator's chart stacks.
    Provider-level failures (auth, billing, unknown model) are permanent for the call that met them."""
    outcome = record.get("outcome")
    if outcome == "success":
        return "ok"
    if outcome == "skipped":
        return "skipped"
    return "transient" if record.get("error_class") == "transient" else "permanent"


def _in_window(ts: float, window: ReportWindow) -> bool:
    return window.start.timestamp() <= ts < window.end.timestamp()


def attempts_by_bucket(records: Iterable[dict[str, Any]], window: ReportWindow) -> pd.DataFrame:
    """Attempt counts per bucket (rows: every bucket of the window, empty ones too) and per
    ``(provider, outcome)`` (columns)."""
    rows = [
        {
            "bucket": pd.Timestamp(float(rec["ts"]), unit="s", tz="UTC").floor(window.bucket),
            "provider": str(rec.get("provider")),
            "outcome": attempt_outcome(rec),
        }
        for rec in records
        if rec.get("kind") == "attempt" and rec.get("ts") is not None and _in_window(float(rec["ts"]), window)
    ]
    index = window.buckets()
    if not rows:
        return pd.DataFrame(index=index)
    counts = pd.DataFrame(rows).groupby(["bucket", "provider", "outcome"]).size().unstack(["provider", "outcome"])
    return counts.reindex(index, fill_value=0).fillna(0).astype(int).sort_index(axis=1)


def breaker_open_intervals(
    records: Iterable[dict[str, Any]], window: ReportWindow
) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """``(provider, opened, closed)`` for every span a breaker was not closed (open or probing), clipped to
    the window; one still open at the end of the window runs to its end."""
    transitions = sorted(
        (float(rec.get("at", rec.get("ts", 0.0)) or 0.0), str(rec.get("provider")), str(rec.get("to_state")))
        for rec in records
        if rec.get("kind") == "breaker_transition"
    )
    opened: dict[str, float] = {}
    spans: list[tuple[str, float, float]] = []
    for at, provider, state in transitions:
        if state == "open":
            opened.setdefault(provider, at)
        elif state == "closed" and provider in opened:
            spans.append((provider, opened.pop(provider), at))
    end = window.end.timestamp()
    spans.extend((provider, start, end) for provider, start in opened.items())
    start = window.start.timestamp()
    return [
        (provider, pd.Timestamp(max(a, start), unit="s", tz="UTC"), pd.Timestamp(min(b, end), unit="s", tz="UTC"))
        for provider, a, b in sorted(spans, key=lambda span: span[1])
        if b > start and a < end
    ]


def _priced_attempts(records: Iterable[dict[str, Any]], window: ReportWindow) -> pd.DataFrame:
    rows = [
        {
            "ts": pd.Timestamp(float(rec["ts"]), unit="s", tz="UTC"),
            "mode": line_mode(rec),
            "provider": str(rec.get("provider")),
            "model": str(rec.get("model")),
            "stage": str(rec.get("stage")),
            "cost_usd": float(rec["cost_usd"]),
            "premium_usd": float(rec["cost_usd"]) - float(rec["first_model_cost_usd"])
            if rec.get("first_model_cost_usd") is not None
            else 0.0,
        }
        for rec in records
        if rec.get("kind") == "attempt"
        and rec.get("ts") is not None
        and rec.get("cost_usd") is not None
        and _in_window(float(rec["ts"]), window)
    ]
    return pd.DataFrame(rows, columns=["ts", "mode", "provider", "model", "stage", "cost_usd", "premium_usd"])


@dataclass(frozen=True)
class SpendSummary:
    """USD spent live in the window, and where; ``unpriced_calls``: answered live calls on a model without a
    price. ``other_modes_usd``: the list price of other modes' usage (simulated, offline, unknown), which is
    no live money and is in none of the other figures."""

    total_usd: float
    fallback_premium_usd: float
    by_day: dict[str, float]
    by_provider: dict[str, float]
    by_model: dict[str, float]
    by_stage: dict[str, float]
    unpriced_calls: int
    daily_budget_usd: float | None = None
    spent_today_usd: float = 0.0
    other_modes_usd: dict[str, float] = field(default_factory=dict)

    @property
    def budget_headroom_usd(self) -> float | None:
        """What today's cap still allows (negative: over it); ``None`` without a cap."""
        if self.daily_budget_usd is None:
            return None
        return round(self.daily_budget_usd - self.spent_today_usd, 6)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "spend_usd": round(self.total_usd, 6),
            "fallback_premium_usd": round(self.fallback_premium_usd, 6),
            "spend_by_day": self.by_day,
            "spend_by_provider": self.by_provider,
            "spend_by_model": self.by_model,
            "spend_by_stage": self.by_stage,
            "unpriced_calls": self.unpriced_calls,
            "daily_budget_usd": self.daily_budget_usd,
            "spent_today_usd": round(self.spent_today_usd, 6),
            "budget_headroom_usd": self.budget_headroom_usd,
            "other_modes_usd": self.other_modes_usd,
        }


def _by(frame: pd.DataFrame, column: str) -> dict[str, float]:
    if frame.empty:
        return {}
    return {str(k): round(float(v), 6) for k, v in frame.groupby(column)["cost_usd"].sum().items()}


def spend_summary(
    records: Iterable[dict[str, Any]],
    window: ReportWindow,
    *,
    now: float,
    daily_budget_usd: float | None = None,
    spent_today_usd: float | None = None,
) -> SpendSummary:
    """Live spend by day, provider, model and stage, the premium fallbacks paid, and today's budget headroom
    (against ``spent_today_usd``, the fleet's figure, when given; else today's live spend in ``records``);
    other modes' list-priced usage apart, per mode."""
    everything = list(records)
    records = of_mode(everything, LIVE)
    priced = _priced_attempts(everything, window)
    frame = priced[priced["mode"] == LIVE].copy()
    other_modes_usd = _by(priced[priced["mode"] != LIVE], "mode")
    frame["day"] = frame["ts"].dt.strftime("%Y-%m-%d") if len(frame) else pd.Series(dtype=str)
    today = pd.Timestamp(now, unit="s", tz="UTC").strftime("%Y-%m-%d")
    unpriced = sum(
        1
        for rec in records
        if rec.get("kind") == "attempt"
        and rec.get("outcome") == "success"
        and "cost_usd" in rec
        and rec.get("cost_usd") is None
        and rec.get("ts") is not None
        and _in_window(float(rec["ts"]), window)
    )
    by_day = _by(frame, "day")
    return SpendSummary(
        total_usd=float(frame["cost_usd"].sum()) if len(frame) else 0.0,
        fallback_premium_usd=float(frame["premium_usd"].sum()) if len(frame) else 0.0,
        by_day=by_day,
        by_provider=_by(frame, "provider"),
        by_model=_by(frame, "model"),
        by_stage=_by(frame, "stage"),
        unpriced_calls=unpriced,
        daily_budget_usd=daily_budget_usd,
        spent_today_usd=spent_today_usd if spent_today_usd is not None else by_day.get(today, 0.0),
        other_modes_usd=other_modes_usd,
    )


def spend_by_bucket(records: Iterable[dict[str, Any]], window: ReportWindow) -> pd.Series:
    """USD per bucket of the window (every bucket, empty ones at 0)."""
    frame = _priced_attempts(records, window)
    index = window.buckets()
    if frame.empty:
        return pd.Series(0.0, index=index)
    spent = frame.assign(bucket=frame["ts"].dt.floor(window.bucket)).groupby("bucket")["cost_usd"].sum()
    return spent.reindex(index, fill_value=0.0).astype(float)


def build_operator_chart(records: Iterable[dict[str, Any]], window: ReportWindow, title: str) -> Any:
    """The matplotlib ``Figure`` of the live lines: attempts stacked per provider by outcome (one bar group
    per bucket, a bar per provider), breaker-open spans shaded; spend per bucket in a second panel. The x
    axis is exactly the report's window. Other modes' attempts are not drawn; the chart says how many."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    everything = list(records)
    records = of_mode(everything, LIVE)
    not_drawn = sum(
        1
        for rec in everything
        if rec.get("kind") == "attempt"
        and line_mode(rec) != LIVE
        and rec.get("ts") is not None
        and _in_window(float(rec["ts"]), window)
    )
    counts = attempts_by_bucket(records, window)
    spend = spend_by_bucket(records, window)
    spans = breaker_open_intervals(records, window)
    fig, (ax, ax_spend) = plt.subplots(
        2, 1, figsize=(10, 5.5), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    width_days = pd.Timedelta(window.bucket) / pd.Timedelta(days=1)
    providers = sorted({provider for provider, _ in counts.columns}) if len(counts.columns) else []
    hatches = dict(zip(providers, ("", "///", "...", "xxx", "\\\\", "ooo") * 4, strict=False))
    slot = width_days * 0.8 / max(1, len(providers))
    left_edges = mdates.date2num(counts.index.to_pydatetime()) if len(counts.index) else []
    for position, provider in enumerate(providers):
        bottom = [0] * len(counts.index)
        for outcome in OUTCOMES:
            if (provider, outcome) not in counts.columns:
                continue
            heights = counts[(provider, outcome)].tolist()
            ax.bar(
                [x + width_days * 0.1 + position * slot for x in left_edges],
                heights,
                width=slot,
                bottom=bottom,
                align="edge",
                color=OUTCOME_COLORS[outcome],
                edgecolor="white",
                linewidth=0.3,
                hatch=hatches[provider],
                gid=f"attempts:{provider}:{outcome}",
            )
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for provider, opened, closed in spans:
        ax.axvspan(opened, closed, color="#7f8c8d", alpha=0.18, gid=f"breaker_open:{provider}")
    handles = [Patch(color=OUTCOME_COLORS[o], label=o) for o in OUTCOMES]
    handles += [Patch(facecolor="white", edgecolor="#555", hatch=hatches[p], label=p) for p in providers]
    if spans:
        handles.append(Patch(color="#7f8c8d", alpha=0.3, label="breaker open"))
    ax.legend(handles=handles, loc="upper left", fontsize=7, ncols=min(len(handles), 6))
    if not providers:
        ax.text(0.5, 0.5, "no live provider attempts in the window", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("attempts per " + ("hour" if window.bucket == "1h" else "day"))
    tallest = int(counts.T.groupby(level=0).sum().max().max()) if len(counts.columns) else 1
    ax.set_ylim(0, max(1, tallest) * 1.4)  # room above the bars for the legend
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    aside = f" ({not_drawn} simulated/offline/unknown-mode attempts not drawn)" if not_drawn else ""
    ax.set_title(f"{title}: live attempts per provider by outcome{aside}", fontsize=10 if aside else None)
    ax_spend.bar(
        mdates.date2num(spend.index.to_pydatetime()),
        spend.tolist(),
        width=width_days * 0.8,
        align="edge",
        color="#2471a3",
        gid="spend",
    )
    ax_spend.set_ylabel("USD spent live")
    ax_spend.set_xlim(window.start.to_pydatetime(), window.end.to_pydatetime())
    locator = mdates.AutoDateLocator()
    ax_spend.xaxis.set_major_locator(locator)
    ax_spend.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fig.tight_layout()
    return fig


def figure_png(fig: Any) -> bytes:
    """The figure as PNG bytes; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
