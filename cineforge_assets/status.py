"""``cineforge status``: the breakers, the last runs, the inbox, and spend, without opening the UI.

Pure functions turn what the stores hold (breaker snapshots, transitions from the telemetry file, run
records, the inbox scan) into ``StatusReport`` rows and words; ``collect_status`` is the thin part that
reads them (Dagster instance, breaker store, inbox folder).

The store keeps a breaker per provider, mode and endpoint, and never forgets one: every drill on a fresh
simulator port leaves its breakers behind. ``pick_breakers`` shows the breakers of the mode runs use here
(``--mode``; offline mode calls no provider, so its view is the live breakers): those at the endpoints this
configuration calls, and any other of that mode still in use (calls in its window, or open, probing or
parked now). The rest (other modes', and idle ones at endpoints no longer called: stale) are summed up
in one line per mode; ``--all-breakers`` lists them, the chosen mode first.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from resources.resilience.breaker_state import BreakerSnapshot

TRANSITION_WORDS: Mapping[str, str] = {
    "consecutive_failures": "consecutive transient failures reached the threshold",
    "failure_rate": "the failure rate in the window reached the threshold",
    "probe_failed": "the half-open probe failed",
    "warm_up_failed": "every warm-up call failed (provider down at start)",
}
INBOX_SENSOR = "screenplay_inbox"


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """One breaker as ``status`` shows it. ``key`` is the stored identity (provider@mode:url)."""

    key: str
    provider: str
    mode: str
    endpoint: str
    state: str  # closed | open | half-open | warming | parked
    until: float | None = None
    reason: str = ""
    consecutive_failures: int = 0
    recent_calls: int = 0  # calls in the breaker's window


@dataclass(frozen=True, slots=True)
class HiddenBreakers:
    """The breakers of one mode ``status`` did not list: how many, how many of them are open, probing or
    parked now, and how many are stale (of the listed mode, at an endpoint no longer called, idle)."""

    mode: str
    count: int
    pending: int = 0
    stale: int = 0


@dataclass(frozen=True, slots=True)
class RunStatus:
    run_id: str
    job: str
    status: str
    partition: str | None
    started: float | None
    ended: float | None
    failure_class: str | None = None
    failed_stage: str | None = None
    resumed_from: str | None = None


@dataclass(frozen=True, slots=True)
class InboxStatus:
    name: str
    state: str  # waiting | refused
    reason: str


@dataclass(frozen=True, slots=True)
class SpendStatus:
    today_usd: float
    daily_budget_usd: float | None


@dataclass(frozen=True, slots=True)
class StatusReport:
    breakers: list[BreakerStatus]
    runs: list[RunStatus]
    inbox: list[InboxStatus]
    spend: SpendStatus | None = None
    notes: list[str] = field(default_factory=list)
    breaker_mode: str = ""  # whose breakers ``breakers`` lists ("" : every mode's)
    hidden_breakers: list[HiddenBreakers] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def split_identity(key: str) -> tuple[str, str, str]:
    """``anthropic@simulated:http://127.0.0.1:8099/anthropic`` -> (provider, mode, endpoint)."""
    provider, _, rest = key.partition("@")
    mode, _, endpoint = rest.partition(":")
    return provider, mode, endpoint


def opening_reasons(transitions: Iterable[Mapping[str, Any]]) -> dict[tuple[str, float], str]:
    """(provider, time) -> why the breaker opened then, from ``breaker_transition`` telemetry lines."""
    out: dict[tuple[str, float], str] = {}
    for line in transitions:
        if line.get("kind") == "breaker_transition" and line.get("to_state") == "open":
            out[(str(line.get("provider")), round(float(line.get("at") or 0.0), 3))] = str(line.get("reason"))
    return out


def breaker_statuses(
    snapshots: Mapping[str, BreakerSnapshot], reasons: Mapping[tuple[str, float], str]
) -> list[BreakerStatus]:
    """A row per stored breaker. An open breaker's reason is the transition that opened it: the record keeps
    ``opened_at``, the telemetry line of the transition carries the same time and the reason."""
    rows: list[BreakerStatus] = []
    for key, snap in sorted(snapshots.items()):
        provider, mode, endpoint = split_identity(key)
        calls = snap.window_calls
        if snap.parked_until is not None:
            rows.append(
                BreakerStatus(
                    key, provider, mode, endpoint, "parked", snap.parked_until, snap.parked_reason, recent_calls=calls
                )
            )
        elif snap.state == "open":
            cause = reasons.get((provider, round(snap.opened_at or 0.0, 3)))
            reason = TRANSITION_WORDS.get(cause or "", cause or "reason not in the telemetry file")
            rows.append(
                BreakerStatus(
                    key, provider, mode, endpoint, "open", snap.reopens_at, reason, snap.consecutive_failures, calls
                )
            )
        elif snap.state == "half_open":
            rows.append(BreakerStatus(key, provider, mode, endpoint, "half-open", reason="probing", recent_calls=calls))
        elif snap.warming:
            rows.append(
                BreakerStatus(
                    key,
                    provider,
                    mode,
                    endpoint,
                    "warming",
                    reason="no recent success; warm-up calls limited",
                    recent_calls=calls,
                )
            )
        else:
            rows.append(
                BreakerStatus(
                    key,
                    provider,
                    mode,
                    endpoint,
                    "closed",
                    consecutive_failures=snap.consecutive_failures,
                    recent_calls=calls,
                )
            )
    return rows


MODE_ORDER = ("live", "simulated", "offline")


def breaker_mode(mode: str) -> str:
    """Whose breakers a run in ``mode`` obeys: offline runs call no provider, so the live ones matter."""
    return "live" if mode == "offline" else mode


def is_pending(row: BreakerStatus, now: float) -> bool:
    """Open or parked until a time still to come, or probing: the breaker is deciding something now."""
    if row.state == "half-open":
        return True
    return row.state in ("open", "parked") and row.until is not None and row.until > now


def is_stale(row: BreakerStatus, current: Iterable[str], now: float) -> bool:
    """At an endpoint this configuration does not call, with no call in its window and nothing pending: a
    breaker of a finished drill (each on its own simulator port) or of an endpoint since changed."""
    return row.key not in set(current) and row.recent_calls == 0 and not is_pending(row, now)


def pick_breakers(
    rows: Iterable[BreakerStatus], *, mode: str, current: Iterable[str], now: float, show_all: bool = False
) -> tuple[list[BreakerStatus], list[HiddenBreakers]]:
    """The breakers ``status`` lists for a run in ``mode`` whose breakers are stored under ``current``
    (identity keys; empty when unknown, e.g. a simulator started per run), and a summary per mode of the
    rest. ``show_all``: every breaker, that mode's first; nothing hidden."""
    shown_mode = breaker_mode(mode)
    current = set(current)

    def rank(row: BreakerStatus) -> tuple[int, int, int, str]:
        order = MODE_ORDER.index(row.mode) if row.mode in MODE_ORDER else len(MODE_ORDER)
        return (row.mode != shown_mode, order, row.key not in current, row.key)

    ordered = sorted(rows, key=rank)
    if show_all:
        return ordered, []
    shown = [r for r in ordered if r.mode == shown_mode and not is_stale(r, current, now)]
    hidden: dict[str, list[BreakerStatus]] = {}
    for row in ordered:
        if row not in shown:
            hidden.setdefault(row.mode, []).append(row)
    summary = [
        HiddenBreakers(
            mode,
            len(group),
            pending=sum(1 for r in group if is_pending(r, now)),
            stale=sum(1 for r in group if r.mode == shown_mode),
        )
        for mode, group in hidden.items()
    ]
    return shown, summary


def hidden_line(hidden: Sequence[HiddenBreakers]) -> str:
    parts = []
    for group in hidden:
        words = f"{group.count} stale {group.mode}" if group.stale == group.count else f"{group.count} {group.mode}"
        if group.pending:
            words += f" ({group.pending} open, probing or parked)"
        parts.append(words)
    return "not shown: " + ", ".join(parts) + " (`cineforge status --all-breakers` lists them)"


def clock_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def breaker_line(row: BreakerStatus, now: float) -> str:
    where = f"{row.provider} ({row.mode} {row.endpoint})" if row.mode else row.provider
    if row.state in ("open", "parked") and row.until is not None:
        if row.until <= now:  # the store moves it on at the next call, not by itself
            after = "half-open at the next call" if row.state == "open" else "usable at the next call"
            return f"{where}: {row.state}, time over since {clock_time(row.until)} ({after}): {row.reason}"
        return f"{where}: {row.state} until {clock_time(row.until)} (in {row.until - now:.0f} s): {row.reason}"
    if row.reason:
        return f"{where}: {row.state}: {row.reason}"
    return f"{where}: {row.state}"


def run_line(run: RunStatus) -> str:
    when = clock_time(run.started) if run.started else "not started"
    line = f"{run.run_id[:8]}  {run.status:<9} {run.partition or '-':<32} {when}"
    if run.failure_class or run.failed_stage:
        line += f"  [{run.failure_class or '?'} at {run.failed_stage or '?'}]"
    if run.resumed_from:
        line += f"  (resumes {run.resumed_from[:8]})"
    return line


def inbox_statuses(skipped: Iterable[Any], accepted: Iterable[Any]) -> list[InboxStatus]:
    """Files still to run (accepted by the scan, or settling) and files refused, with why."""
    from cineforge_assets.inbox import REFUSALS

    rows = [InboxStatus(a.name, "waiting", "new or changed; the next sensor tick runs it") for a in accepted]
    for skip in skipped:
        if skip.kind == "settling":
            rows.append(InboxStatus(skip.name, "waiting", skip.reason))
        elif skip.kind in REFUSALS or skip.kind == "superseded":
            rows.append(InboxStatus(skip.name, "refused", skip.reason))
    return sorted(rows, key=lambda r: (r.state, r.name))


def render(report: StatusReport, now: float) -> list[str]:
    lines = [f"breakers ({report.breaker_mode}):" if report.breaker_mode else "breakers:"]
    if report.breakers:
        lines += [f"  {breaker_line(b, now)}" for b in report.breakers]
    elif report.hidden_breakers:
        lines.append(f"  none in use in {report.breaker_mode} mode")
    else:
        lines.append("  none recorded yet (no provider called)")
    if report.hidden_breakers:
        lines.append(f"  {hidden_line(report.hidden_breakers)}")
    lines.append("last runs:")
    lines += [f"  {run_line(r)}" for r in report.runs] or ["  none"]
    lines.append("inbox:")
    lines += [f"  {i.name}: {i.state}: {i.reason}" for i in report.inbox] or ["  nothing waiting or refused"]
    if report.spend is not None:
        budget = f" of ${report.spend.daily_budget_usd:.2f} daily budget" if report.spend.daily_budget_usd else ""
        lines.append(f"spend today: ${report.spend.today_usd:.2f}{budget}")
    lines += [f"note: {n}" for n in report.notes]
    return lines


# ------------------------------------------------------------------------------------ reading the stores


def read_transitions(path: Path, *, max_bytes: int = 4 * 1024 * 1024) -> list[dict[str, Any]]:
    """Breaker transitions from the tail of the telemetry file (the file only grows; the tail is recent)."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - max_bytes))
        tail = handle.read().decode("utf-8", errors="replace").splitlines()
    out: list[dict[str, Any]] = []
    for line in tail:
        if '"breaker_transition"' not in line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # the first line of the tail may be cut
            continue
    return out


def read_breakers(store_url: str, telemetry: Path) -> list[BreakerStatus]:
    from resources.resilience.breaker import CircuitBreaker
    from resources.resilience.breaker_store import store_from_url

    store = store_from_url(store_url)
    try:
        snapshots = CircuitBreaker(store).snapshot()
    finally:
        store.close()
    return breaker_statuses(snapshots, opening_reasons(read_transitions(telemetry)))


def read_runs(instance: Any, limit: int) -> list[RunStatus]:
    from cineforge_assets.run_tags import FAILED_STAGE_TAG, FAILURE_CLASS_TAG, PARTITION_TAG, RESUMED_FROM_TAG

    rows: list[RunStatus] = []
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        rows.append(
            RunStatus(
                run_id=run.run_id,
                job=run.job_name,
                status=run.status.value.lower(),
                partition=run.tags.get(PARTITION_TAG),
                started=record.start_time,
                ended=record.end_time,
                failure_class=run.tags.get(FAILURE_CLASS_TAG),
                failed_stage=run.tags.get(FAILED_STAGE_TAG),
                resumed_from=run.tags.get(RESUMED_FROM_TAG),
            )
        )
    return rows


def read_inbox(instance: Any, now: float) -> list[InboxStatus]:
    """The inbox as the sensor will see it at its next tick (its cursor read, nothing written)."""
    from cineforge_assets.inbox import InboxCursor, InboxPolicy, scan_inbox
    from cineforge_assets.paths import inbox_dir

    cursor_text: str | None = None
    for state in instance.all_instigator_state():
        if state.name == INBOX_SENSOR and state.instigator_data is not None:
            cursor_text = getattr(state.instigator_data, "cursor", None)
    scan = scan_inbox(inbox_dir(), InboxCursor.from_json(cursor_text), now=now, policy=InboxPolicy.from_env())
    return inbox_statuses(scan.skipped, scan.accepted)


def read_spend(store_url: str, now: float) -> tuple[SpendStatus | None, list[str]]:
    """Live spend today (UTC) from the fleet-wide ledger beside the breakers, against the daily cap.

    The ledger (``resources/resilience/budget.py``) is what every worker reserves against, so this is the
    figure the next call is judged by, not one host's telemetry. Simulated drills keep their own daily key
    and are not counted here.
    """
    from resources.resilience.budget import BudgetCaps, day_key, spend_store_from_url

    try:
        store = spend_store_from_url(store_url)
        try:
            key = day_key(now)
            today = store.read([key]).get(key, 0.0)
        finally:
            store.close()
    except Exception as exc:  # a status command reports what it cannot read; it never fails on it
        return None, [f"spend: could not read the spend ledger ({type(exc).__name__})"]
    return SpendStatus(today_usd=round(today, 6), daily_budget_usd=BudgetCaps.resolve().daily_usd), []


def current_identities(mode: str) -> set[str]:
    """The breaker keys a run in ``mode`` (its breakers' mode: ``breaker_mode``) uses with this
    environment's endpoints; empty for a simulated run without ``CINEFORGE_SIMULATOR_URL`` (the
    simulator is started per run on a port of its own)."""
    from cineforge_assets.resource_config import URL_VARS
    from resources.ai import AIProviderResource

    config: dict[str, Any] = {
        name: os.environ[var]
        for name, var in URL_VARS.items()
        if (name.endswith("_base_url") or name == "simulator_url") and os.environ.get(var)
    }
    config["mode"] = breaker_mode(mode)
    try:
        return set(AIProviderResource(**config).breaker_identities().values())
    except ValueError:
        return set()


def collect_status(
    instance: Any,
    *,
    store_url: str,
    telemetry: Path,
    runs: int,
    now: float | None = None,
    mode: str | None = None,
    all_breakers: bool = False,
) -> StatusReport:
    """``mode``: whose breakers to list (default: the mode runs use here, ``provider_mode_from_env``)."""
    from cineforge_assets.resource_config import provider_mode_from_env

    moment = time.time() if now is None else now
    chosen = mode or provider_mode_from_env()
    spend, notes = read_spend(store_url, moment)
    breakers, hidden = pick_breakers(
        read_breakers(store_url, telemetry),
        mode=chosen,
        current=current_identities(chosen),
        now=moment,
        show_all=all_breakers,
    )
    return StatusReport(
        breakers=breakers,
        runs=read_runs(instance, runs),
        inbox=read_inbox(instance, moment),
        spend=spend,
        notes=notes,
        breaker_mode="" if all_breakers else breaker_mode(chosen),
        hidden_breakers=hidden,
    )
