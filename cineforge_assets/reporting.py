"""Reliability report: what failed, where, and what the system did about it (pure, no Dagster).

Inputs are the telemetry JSONL lines (one per provider attempt or breaker transition, written by
``JsonlTelemetrySink`` in every process) and a few run-level counts read from Dagster's event log.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from resources.resilience.telemetry import window_files

REPORT_COLUMNS = [
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


def reliability_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per provider/model with the counts the on-call engineer asks for."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(provider: str, model: str) -> dict[str, Any]:
        key = (provider, model)
        if key not in rows:
            rows[key] = {c: 0 for c in REPORT_COLUMNS[2:]} | {"provider": provider, "model": model}
            rows[key]["time_lost_waiting_s"] = 0.0
        return rows[key]

    for rec in records:
        if rec.get("kind") == "breaker_transition":
            if rec.get("to_state") == "open":
                row(str(rec.get("provider")), "*")["breaker_openings"] += 1
            continue
        if rec.get("kind") != "attempt":
            continue
        r = row(str(rec.get("provider")), str(rec.get("model")))
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
    return frame.sort_values(["provider", "model"]).reset_index(drop=True)


def failures_over_time(records: Iterable[dict[str, Any]], *, bucket: str = "1min") -> pd.DataFrame:
    """Failures and fallbacks per time bucket (for the chart)."""
    points = [
        {
            "ts": pd.to_datetime(float(rec["ts"]), unit="s", utc=True),
            "failures": int(rec.get("outcome") == "error"),
            "fallbacks": int(str(rec.get("decision", "")).startswith("fallback")),
        }
        for rec in records
        if rec.get("kind") == "attempt" and rec.get("ts") is not None
    ]
    if not points:
        return pd.DataFrame(columns=["failures", "fallbacks"])
    frame = pd.DataFrame(points).set_index("ts").sort_index()
    return frame.resample(bucket).sum()


def render_chart(series: pd.DataFrame, title: str) -> bytes:
    """A PNG of failures and fallbacks over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    if len(series):
        ax.plot(series.index, series["failures"], label="failed attempts", color="#c0392b", marker="o")
        ax.plot(series.index, series["fallbacks"], label="fallbacks taken", color="#2471a3", marker="s")
        ax.legend(loc="upper right")
    else:
        ax.text(
            0.5, 0.5, "no provider attempts in the window", ha="center", va="center", transform=ax.transAxes
        )
    ax.set_title(title)
    ax.set_ylabel("per bucket")
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def report_markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no provider attempts recorded in the window_"
    header = "| " + " | ".join(REPORT_COLUMNS) + " |"
    lines = [header, "|" + "---|" * len(REPORT_COLUMNS)]
    for rec in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in rec) + " |")
    return "\n".join(lines)
