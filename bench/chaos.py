"""Chaos benchmark: our resilience layer against the peers a user would pick instead, under outages.

    .venv/bin/python bench/chaos.py                 # the issue's numbers (several minutes)
    .venv/bin/python bench/chaos.py --quick         # 64 requests, fault windows x0.4 (retry-after stays 5 s)
    .venv/bin/python bench/chaos.py --scenarios 1,5 --contenders ours,naive --layouts 4x4 --no-write

A fixed workload (``bench/workload.py``: N normalize-sized requests, 5 % of them refusal candidates) is
served at concurrency 16 against the loopback simulator (``bench/simserver.py``, its own process, every
call taking ``--latency`` seconds) under five scenarios, by each contender (``bench/contenders.py``), in
two layouts: one process x 16 threads and 4 processes x 4 threads (the second is where a breaker shared
across processes counts). The simulator is reset just before each run is released, so every fault window
starts with the run.

Metrics per scenario, contender and layout: completion time and its ratio to the oracle (every request
sent straight to a healthy primary, same layout); calls the simulator answered with a fault (from
``/_sim/stats``, summed over all worker processes); provider calls per served request; retries of a
permanent error (calls made for a request after it had been refused, from the per-request trace); p50/p95
request latency; requests failed. ``--quick`` scales the workload and every fault window (not the
latency, the per-call timeout or the breaker's cooldown) and is labelled as such in the output.
Results replace the ``chaos`` section of BENCHMARKS.md and the charts in ``bench/charts/``.

The long scenarios (6, brownout; 7, outage then recovery) run *open loop*: their requests arrive at a fixed
pace, 75 % of what the 16 workers serve against a healthy primary (60 a second at 0.2 s a call), whether or
not earlier ones were served, and each request's latency counts from its scheduled arrival (time queued
for a free worker included). In a closed loop a contender that is slow during the fault serves fewer
requests inside it and more after it, which flatters its calls per served request and the share served
by the preferred model; open loop, every contender faces the same requests on the same time line. Their
workload keeps the closed loop's request count (``span_s`` at the oracle's pace), so it arrives over
``span_s / 0.75`` seconds; their *x oracle* compares with the last arrival plus one call, what a contender
that never waits or fails would take. A request still queued 10 s after its arrival is shed and counted
failed (``queue_timeout``): a caller gives up, and a contender that falls behind cannot stretch the run
without bound (tenacity's backoff of up to 20 s per retry did: one brownout run took 10 minutes).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.attempt_trace import TRACE_DIR_ENV  # noqa: E402
from bench.contenders import CONTENDERS, SHARED_STATE_CONTENDERS, BenchConfig, ours_breaker_policy  # noqa: E402
from bench.harness import (  # noqa: E402
    RequestResult,
    RunSpec,
    SimulatorProcess,
    WorkerPool,
    machine,
    percentile,
    write_section,
)
from bench.workload import chaos_item, is_refusal_candidate  # noqa: E402
from resources.providers import offline  # noqa: E402
from resources.providers.limits import estimate_prompt_tokens, estimate_tokens  # noqa: E402
from resources.providers.prices import PriceTable, TokenUsage, price_table  # noqa: E402
from resources.resilience.breaker import BreakerPolicy  # noqa: E402

START, END = "<!-- chaos:start -->", "<!-- chaos:end -->"
CHARTS = REPO / "bench" / "charts"
RESULTS = REPO / "bench" / "results"
FAULT_OUTCOMES = frozenset({"overloaded", "rate_limit", "server_error", "timeout", "reset", "malformed_json"})
PERMANENT_OUTCOMES = frozenset({"safety", "bad_request", "invalid_output"})
# Answers that came back as HTTP 200 with a body: the provider bills them (a refusal bills the prompt only, its
# answer is empty). Error statuses, timeouts and resets are not billed.
BILLED_OUTCOMES = frozenset({"ok", "malformed_json", "invalid_output"})
PROMPT_ONLY_OUTCOMES = frozenset({"safety"})
PRIMARY = "anthropic"
REDIS_URL = os.environ.get("CINEFORGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# Every Redis key this invocation's contenders write starts with this (one sub-prefix per run).
REDIS_PREFIX = f"cineforge-bench-{uuid.uuid4().hex[:10]}"


def redis_available(url: str = REDIS_URL) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def drop_redis_keys(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every key the run's shared-state contenders wrote (they all start with ``prefix``)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    profile: Callable[[float], str]
    down_provider: str | None = None
    # Workload length in seconds of the oracle's pace (None: ``Settings.requests``): scenarios whose fault
    # window must be spanned, or followed by a recovery, run long enough for it (scaled like the windows).
    span_s: float | None = None
    # When the primary recovers, in seconds from the start at window scale 1 (the recovery scenario).
    recovers_at_s: float | None = None
    # Requests arrive at a fixed pace (``arrival_interval``) instead of a closed loop (module docstring).
    open_loop: bool = False


SCENARIOS: dict[str, Scenario] = {
    "1": Scenario(
        "1",
        "primary answers 529 for the first 20 s, fallback healthy",
        lambda k: f"overload-storm:provider=anthropic,duration={20 * k:g}",
        PRIMARY,
    ),
    "2": Scenario(
        "2",
        "primary answers 429 + retry-after: 5 for 30 s",
        lambda k: f"rate-limit:provider=anthropic,duration={30 * k:g},retry_after=5",
        PRIMARY,
    ),
    "3": Scenario("3", "10 % timeouts and connection resets on every provider", lambda k: "flaky:rate=0.1,hold=30"),
    "4": Scenario(
        "4",
        "5 % of requests refused for safety (permanent) by every provider",
        lambda k: "fault:kind=safety,rate=1,tasks=project_insights",
    ),
    "5": Scenario("5", "primary down (529) for the whole run", lambda k: "primary-down:provider=anthropic", PRIMARY),
    "6": Scenario(
        "6",
        "brownout: every provider answers 30 % of calls with an overload (503; Anthropic's 529) for 30 s",
        lambda k: f"fault:kind=overloaded,provider=*,rate=0.3,duration={30 * k:g}",
        span_s=36.0,
        open_loop=True,
    ),
    "7": Scenario(
        "7",
        "outage then recovery: the primary answers 529 for 20 s, then is healthy (a 60 s workload)",
        lambda k: f"overload-storm:provider=anthropic,duration={20 * k:g}",
        PRIMARY,
        span_s=60.0,
        recovers_at_s=20.0,
        open_loop=True,
    ),
}
# Open-loop arrivals: this share of what the workers serve against a healthy primary (module docstring).
UTILISATION = 0.75
# Open loop: a request not started within this many seconds of its arrival is shed (failed, queue_timeout).
QUEUE_TIMEOUT_S = 10.0
# Scenarios whose own measures (below) are reported beside the common columns.
HEDGE_SCENARIO, BROWNOUT_SCENARIO, RECOVERY_SCENARIO = "3", "6", "7"


@dataclass(frozen=True)
class Layout:
    processes: int
    threads: int

    @property
    def label(self) -> str:
        return f"{self.processes}x{self.threads}"


@dataclass
class RunMetrics:
    scenario: str
    contender: str
    layout: str
    requests: int
    completion_s: float
    oracle_s: float
    fault_calls: int
    down_provider_calls: int
    down_calls_after_first_fault: int
    total_calls: int
    succeeded: int
    failed: int
    permanent_retries: int
    p50_s: float
    p95_s: float
    served_by: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    # Scenario-specific measures (``scenario_measures``): hedges, recovery time, preferred-model share.
    extras: dict[str, float] = field(default_factory=dict)

    @property
    def usd_per_success(self) -> float:
        """Dollars per served request: everything billed, failed requests' calls included."""
        return self.cost_usd / self.succeeded if self.succeeded else float("inf")

    @property
    def ratio(self) -> float:
        return self.completion_s / self.oracle_s if self.oracle_s else float("nan")

    @property
    def calls_per_success(self) -> float:
        return self.total_calls / self.succeeded if self.succeeded else float("inf")


@dataclass(frozen=True)
class Settings:
    requests: int = 200
    concurrency: int = 16
    latency_s: float = 0.2
    window_scale: float = 1.0
    quick: bool = False
    seed: int = 0


Trace = Sequence[tuple[int, str, str, str, float]]


def failures_with_calls_left(results: Sequence[RequestResult], trace: Trace, max_calls: int) -> int:
    """Failed requests that had calls left: fewer than ``max_calls`` calls reached a provider, or one of them
    was answered (the layer gave up, or shed the request, while a provider could still have served it). A
    request whose every allowed call drew a fault had nothing left to try within the cap every contender
    shares; those are the rest of ``failed``."""
    calls: Counter[int] = Counter()
    answered: set[int] = set()
    for number, _provider, _model, outcome, _arrival in trace:
        calls[number] += 1
        if outcome not in FAULT_OUTCOMES:
            answered.add(number)
    return sum(1 for r in results if not r.ok and (calls[r.number] < max_calls or r.number in answered))


def permanent_retries(trace: Trace) -> int:
    """Calls made for a request after it had already been answered with a permanent error."""
    refused: set[int] = set()
    retries = 0
    for number, _provider, _model, outcome, _arrival in trace:
        if number in refused:
            retries += 1
        if outcome in PERMANENT_OUTCOMES:
            refused.add(number)
    return retries


@functools.cache
def request_usage(number: int) -> TokenUsage:
    """What one answered call for workload request ``number`` uses: its prompt, and the simulator's answer
    (the offline engine's, counted as the simulator counts it)."""
    item = chaos_item(number)
    request = item.request
    answer = offline.answer(item.task, dict(request.payload or {}))
    return TokenUsage(
        input_tokens=estimate_prompt_tokens(request.system, request.prompt),
        output_tokens=estimate_tokens(json.dumps(answer, ensure_ascii=False)),
    )


def trace_cost(trace: Trace, table: PriceTable | None = None) -> float:
    """USD the providers would bill for every call of ``trace`` at list price (``resources.providers.prices``):
    answered calls in full, refusals for their prompt, failed calls nothing. NaN if a called model is unpriced."""
    prices = table or price_table()
    total = 0.0
    for number, provider, model, outcome, _arrival in trace:
        if outcome not in BILLED_OUTCOMES and outcome not in PROMPT_ONLY_OUTCOMES:
            continue
        usage = request_usage(number)
        if outcome in PROMPT_ONLY_OUTCOMES:
            usage = TokenUsage(input_tokens=usage.input_tokens)
        cost = prices.cost_of(provider, model, usage).usd
        if cost is None:
            return float("nan")
        total += cost
    return total


def calls_after_first_fault(trace: Trace, provider: str, latency_s: float) -> int:
    """Faulted calls to ``provider`` that reached it after its first fault answer had been sent back.

    The first answer leaves the simulator ``latency_s`` after its request arrived; a call arriving later
    was made by a client that could have known (itself, or through a shared breaker) the provider was down.
    """
    arrivals = sorted(t for _n, p, _m, o, t in trace if p == provider and o in FAULT_OUTCOMES)
    if not arrivals:
        return 0
    first_answer = arrivals[0] + latency_s
    return sum(1 for t in arrivals if t > first_answer)


def overlapping_calls(trace: Trace, latency_s: float, timeout_s: float) -> int:
    """Calls sent for a request while its previous call was still in flight: hedges (a retry or fallback
    starts only after the previous call ended). A call is in flight ``latency_s`` after its arrival, or
    ``timeout_s`` when the simulator held it (``timeout``); a reset ends it at once."""
    last: dict[int, tuple[float, str]] = {}
    count = 0
    for number, _provider, _model, outcome, arrival in sorted(trace, key=lambda row: row[4]):
        previous = last.get(number)
        if previous is not None:
            prev_arrival, prev_outcome = previous
            busy = timeout_s if prev_outcome == "timeout" else 0.0 if prev_outcome == "reset" else latency_s
            count += arrival < prev_arrival + busy * 0.95
        last[number] = (arrival, outcome)
    return count


def recovery_measures(
    results: Sequence[RequestResult], start: float, trace: Trace, recovers_at: float, bin_s: float = 1.0
) -> dict[str, float]:
    """Outage-then-recovery measures: seconds from recovery to the first ``bin_s`` bin (by request start)
    in which >= 90 % of requests were served by the primary; the primary's share of all requests; calls to
    the primary while it was down."""
    bins: dict[int, list[bool]] = {}
    for r in results:
        offset = r.start - start - recovers_at
        if offset >= 0:
            bins.setdefault(int(offset // bin_s), []).append(r.ok and r.provider == PRIMARY)
    back = next(
        (index * bin_s for index in sorted(bins) if sum(bins[index]) >= 0.9 * len(bins[index])), float("nan")
    )
    primary = sum(1 for r in results if r.ok and r.provider == PRIMARY)
    in_outage = sum(1 for _n, p, _m, _o, t in trace if p == PRIMARY and t < recovers_at)
    return {
        "back_on_primary_s": back,
        "primary_share": primary / len(results) if results else 0.0,
        "primary_calls_in_outage": float(in_outage),
    }


def measure(
    scenario: str,
    contender: str,
    layout: Layout,
    start: float,
    results: Sequence[RequestResult],
    stats: dict[str, Any],
    trace: Trace,
    oracle_s: float,
    down_provider: str | None,
    latency_s: float,
    extras: dict[str, float] | None = None,
) -> RunMetrics:
    completion = max(r.end for r in results) - start
    latencies = [r.latency for r in results]
    by_outcome: dict[str, int] = stats.get("by_outcome", {})
    down = down_late = 0
    if down_provider:
        per = stats.get("by_provider", {}).get(down_provider, {})
        down = sum(n for outcome, n in per.items() if outcome in FAULT_OUTCOMES)
        down_late = calls_after_first_fault(trace, down_provider, latency_s)
    return RunMetrics(
        scenario=scenario,
        contender=contender,
        layout=layout.label,
        requests=len(results),
        completion_s=completion,
        oracle_s=oracle_s or completion,
        fault_calls=sum(n for outcome, n in by_outcome.items() if outcome in FAULT_OUTCOMES),
        down_provider_calls=down,
        down_calls_after_first_fault=down_late,
        total_calls=int(stats.get("total", 0)),
        succeeded=sum(1 for r in results if r.ok),
        failed=sum(1 for r in results if not r.ok),
        permanent_retries=permanent_retries(trace),
        p50_s=percentile(latencies, 50),
        p95_s=percentile(latencies, 95),
        served_by=dict(Counter(r.provider for r in results if r.ok)),
        failures=dict(Counter(r.error for r in results if not r.ok)),
        cost_usd=trace_cost(trace),
        extras=extras or {},
    )


def specs_for(
    contender: str, config: BenchConfig, layout: Layout, requests: int, arrival_interval_s: float = 0.0
) -> list[RunSpec]:
    return [
        RunSpec(
            contender,
            config,
            tuple(n for n in range(requests) if n % layout.processes == k),
            layout.threads,
            arrival_interval_s=arrival_interval_s,
            queue_timeout_s=QUEUE_TIMEOUT_S if arrival_interval_s else 0.0,
        )
        for k in range(layout.processes)
    ]


def arrival_interval(scenario: Scenario | None, settings: Settings) -> float:
    """Seconds between two requests' arrivals in an open-loop scenario (``UTILISATION`` of the workers'
    healthy throughput); 0 for a closed loop."""
    if scenario is None or not scenario.open_loop:
        return 0.0
    return settings.latency_s / (settings.concurrency * UTILISATION)


@contextmanager
def fresh_config(sim: SimulatorProcess, contender: str, settings: Settings, tag: str) -> Iterator[BenchConfig]:
    """A contender's config for one run: its own breaker folder and, for the shared-state contenders, its
    own Redis key prefix, both gone afterwards (the Redis keys even if the run fails)."""
    shared = contender in SHARED_STATE_CONTENDERS
    prefix = f"{REDIS_PREFIX}-{tag}{uuid.uuid4().hex[:8]}" if shared else ""
    with tempfile.TemporaryDirectory(prefix=f"cineforge-chaos-{tag}") as breaker_dir:
        try:
            yield BenchConfig(
                sim_url=sim.url,
                request_timeout_s=5 * settings.latency_s,
                breaker_dir=breaker_dir,
                seed=settings.seed,
                redis_url=REDIS_URL if shared else "",
                redis_prefix=prefix,
            )
        finally:
            if shared:
                drop_redis_keys(prefix)


def run_one(
    pool: WorkerPool,
    sim: SimulatorProcess,
    contender: str,
    scenario: Scenario | None,
    layout: Layout,
    settings: Settings,
    oracle_s: float,
) -> RunMetrics:
    requests = requests_for(scenario, settings)
    interval = arrival_interval(scenario, settings)
    with fresh_config(sim, contender, settings, "") as config:
        profile = scenario.profile(settings.window_scale) if scenario else "none"
        sim.configure(profile, settings.latency_s, settings.seed)
        specs = specs_for(contender, config, layout, requests, interval)
        start, results = pool.run(specs, before_start=sim.reset)
        stats, trace = sim.stats(), sim.trace()
    extras = {
        "hedges": float(overlapping_calls(trace, settings.latency_s, config.request_timeout_s)),
        "failed_with_calls_left": float(failures_with_calls_left(results, trace, config.max_calls)),
    }
    if scenario is not None and scenario.recovers_at_s is not None:
        extras |= recovery_measures(results, start, trace, scenario.recovers_at_s * settings.window_scale)
    if interval:  # open loop: the floor is the last arrival plus one call
        oracle_s = (requests - 1) * interval + settings.latency_s
    else:  # the oracle ran Settings.requests; a longer scenario is compared with the oracle's pace
        oracle_s *= requests / settings.requests
    return measure(
        scenario.key if scenario else "oracle",
        contender,
        layout,
        start,
        results,
        stats,
        trace,
        oracle_s,
        scenario.down_provider if scenario else None,
        settings.latency_s,
        extras,
    )


def requests_for(scenario: Scenario | None, settings: Settings) -> int:
    """Requests of one run: ``Settings.requests``, or enough to span the scenario's ``span_s`` at the pace
    of a healthy primary (one call of ``latency_s`` per request and worker), scaled like its windows."""
    if scenario is None or scenario.span_s is None:
        return settings.requests
    pace = settings.concurrency / settings.latency_s
    return max(settings.requests, math.ceil(scenario.span_s * settings.window_scale * pace))


WARM_UP_PROFILE = "fault:kind=overloaded,provider=anthropic,rate=0.5"


def warm_up(pool: WorkerPool, sim: SimulatorProcess, contender: str, layout: Layout, settings: Settings) -> None:
    """One unmeasured run per fresh worker pool, so no contender's first measured scenario pays for
    first-use costs (imports inside functions, connection pools, SQLite files, code paths of a failure
    and of a fallback). Every measured run still builds a fresh contender: no breaker state carries over."""
    requests = 2 * layout.processes * layout.threads
    with fresh_config(sim, contender, settings, "warm-") as config:
        sim.configure("none" if contender == "oracle" else WARM_UP_PROFILE, settings.latency_s, settings.seed)
        pool.run(specs_for(contender, config, layout, requests), before_start=sim.reset)


def run_all(
    settings: Settings,
    scenarios: Sequence[Scenario],
    contenders: Sequence[str],
    layouts: Sequence[Layout],
    log: Callable[[str], None] = print,
) -> list[RunMetrics]:
    out: list[RunMetrics] = []
    shared_ok = any(c in SHARED_STATE_CONTENDERS for c in contenders) and redis_available()
    if any(c in SHARED_STATE_CONTENDERS for c in contenders) and not shared_ok:
        log(f"Redis not reachable at {REDIS_URL}: skipping {', '.join(SHARED_STATE_CONTENDERS)}")
    with SimulatorProcess() as sim:
        for layout in layouts:
            with WorkerPool(layout.processes) as pool:
                warm_up(pool, sim, "oracle", layout, settings)
                oracle = run_one(pool, sim, "oracle", None, layout, settings, 0.0)
            log(f"[{layout.label}] oracle: {oracle.completion_s:.2f}s, failed {oracle.failed}")
            out.append(oracle)
            for contender in contenders:
                if contender in SHARED_STATE_CONTENDERS and (layout.processes == 1 or not shared_ok):
                    # One process has nothing to share; without Redis the contender cannot run.
                    continue
                with WorkerPool(layout.processes) as pool:
                    warm_up(pool, sim, contender, layout, settings)
                    for scenario in scenarios:
                        began = time.time()
                        metrics = run_one(pool, sim, contender, scenario, layout, settings, oracle.completion_s)
                        out.append(metrics)
                        log(
                            f"[{layout.label}] s{scenario.key} {contender:9} {metrics.completion_s:6.2f}s "
                            f"x{metrics.ratio:5.2f} fault_calls={metrics.fault_calls:4d} "
                            f"calls/ok={metrics.calls_per_success:5.2f} perm_retries={metrics.permanent_retries} "
                            f"p95={metrics.p95_s:.2f}s failed={metrics.failed} ({time.time() - began:.0f}s wall)"
                        )
                if contender in SHARED_STATE_CONTENDERS:
                    # The workers have exited: sweep what late (background) writes left behind.
                    drop_redis_keys(REDIS_PREFIX)
    return out


# ------------------------------------------------------------------------------------------ report


def _fmt_served(served: dict[str, int]) -> str:
    return ", ".join(f"{p} {n}" for p, n in sorted(served.items(), key=lambda kv: -kv[1])) or "-"


# Scenario-specific columns: (extras key, header, format).
EXTRA_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    HEDGE_SCENARIO: (("hedges", "calls sent while the request's previous call was in flight (hedges)", ".0f"),),
    BROWNOUT_SCENARIO: (
        ("failed_with_calls_left", "failed with calls left (not every allowed call drew a fault)", ".0f"),
    ),
    RECOVERY_SCENARIO: (
        ("back_on_primary_s", "s from recovery to >= 90 % served by the primary", ".1f"),
        ("primary_share", "share served by the primary", ".1%"),
        ("primary_calls_in_outage", "calls to the primary during the outage", ".0f"),
    ),
}


def scenario_table(rows: Sequence[RunMetrics], scenario: Scenario) -> list[str]:
    down_col = scenario.down_provider is not None
    extra_cols = EXTRA_COLUMNS.get(scenario.key, ())
    header = "| contender | layout | completion s | x oracle | faulted calls |"
    header += " calls to down primary | ... after its first fault answer |" if down_col else ""
    header += " calls / success | permanent retries | p50 s | p95 s | failed | $ / served request | served by |"
    header += "".join(f" {label} |" for _key, label, _fmt in extra_cols)
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for m in rows:
        line = (
            f"| {m.contender} | {m.layout} | {m.completion_s:.2f} | {m.ratio:.2f} | {m.fault_calls} |"
            + (f" {m.down_provider_calls} | {m.down_calls_after_first_fault} |" if down_col else "")
            + f" {m.calls_per_success:.2f} | {m.permanent_retries} | {m.p50_s:.2f} | {m.p95_s:.2f} | {m.failed} |"
            f" {m.usd_per_success:.6f} | {_fmt_served(m.served_by)} |"
            + "".join(f" {format(m.extras.get(key, float('nan')), fmt)} |" for key, _label, fmt in extra_cols)
        )
        lines.append(line)
    return lines


def open_periods_within(outage_s: float, breaker: BreakerPolicy) -> int:
    """Open periods of ``breaker`` that end inside an outage of ``outage_s`` (each lets one probe through),
    counted from a breaker that opens as the outage begins (the most there can be)."""
    elapsed, period, ended = 0.0, breaker.open_period(None), 0
    while elapsed + period < outage_s:
        elapsed, ended = elapsed + period, ended + 1
        period = breaker.open_period(period)
    return ended


def issue18_target_lines(metrics: Sequence[RunMetrics], breaker: BreakerPolicy, window_scale: float) -> list[str]:
    """Issue 18's targets for the hedging, brownout and recovery scenarios, checked against this run;
    ``breaker`` is the policy the contender "ours" runs with."""
    lines: list[str] = []
    by = {(m.scenario, m.contender, m.layout): m for m in metrics}
    oracle = {m.layout: m for m in metrics if m.scenario == "oracle"}
    layouts = sorted({m.layout for m in metrics if m.scenario != "oracle"})

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    def rivals(scenario: str, layout: str) -> list[RunMetrics]:
        return [m for (s, c, lay), m in by.items() if s == scenario and lay == layout and c not in ("ours", "oracle")]

    for layout in layouts:
        ours = by.get((HEDGE_SCENARIO, "ours", layout))
        if ours is not None and layout in oracle:
            p95_ratio = ours.p95_s / oracle[layout].p95_s if oracle[layout].p95_s else float("nan")
            share = ours.extras.get("hedges", 0.0) / ours.requests
            others = rivals(HEDGE_SCENARIO, layout)
            ahead = all(ours.completion_s < r.completion_s and ours.p95_s < r.p95_s for r in others)
            lines.append(
                f"- Scenario 3 with hedging, {layout}: completion {ours.ratio:.2f} x oracle (target <= 1.3): "
                f"{verdict(ours.ratio <= 1.3)}; p95 {p95_ratio:.2f} x the oracle's (target <= 2.5): "
                f"{verdict(p95_ratio <= 2.5)}; hedges {share:.1%} of requests (target <= 10 %): "
                f"{verdict(share <= 0.10)}; ahead of every contender on completion and p95: {verdict(ahead)} ("
                + ", ".join(f"{r.contender} {r.ratio:.2f}x / p95 {r.p95_s:.2f} s" for r in others)
                + ")"
            )
        ours = by.get((BROWNOUT_SCENARIO, "ours", layout))
        if ours is not None:
            others = rivals(BROWNOUT_SCENARIO, layout)
            left = ours.extras.get("failed_with_calls_left", float(ours.failed))
            lines.append(
                f"- Brownout, {layout}: calls per served request {ours.calls_per_success:.2f} (target <= 1.3): "
                f"{verdict(ours.calls_per_success <= 1.3)}; requests failed by ours {ours.failed}, of which "
                f"{left:.0f} with calls left (target 0): {verdict(ours.failed == 0 or left == 0)}; the rest drew a "
                "fault on every call the cap allows, which no contender can serve (others: "
                + ", ".join(
                    f"{r.contender} {r.calls_per_success:.2f} per served, {r.failed} failed, "
                    f"{r.extras.get('failed_with_calls_left', float('nan')):.0f} with calls left"
                    for r in others
                )
                + ")"
            )
        ours = by.get((RECOVERY_SCENARIO, "ours", layout))
        if ours is not None:
            back = ours.extras.get("back_on_primary_s", float("nan"))
            outage_s = 20.0 * window_scale
            probes_allowed = open_periods_within(outage_s, breaker)
            bound = breaker.failure_threshold + probes_allowed
            cooldown_s = breaker.cooldown_seconds
            others = rivals(RECOVERY_SCENARIO, layout)
            higher = all(ours.extras.get("primary_share", 0) > r.extras.get("primary_share", 0) for r in others)
            lines.append(
                f"- Outage then recovery, {layout}: back on the primary {back:.1f} s after recovery (target <= "
                f"cooldown + 5 = {cooldown_s + 5:.0f} s): {verdict(back <= cooldown_s + 5)}; faulted calls to the "
                f"primary during the outage {ours.down_provider_calls} (target <= threshold "
                f"{breaker.failure_threshold} + one probe per open period ({breaker.first_cooldown_seconds:g} s, "
                f"x{breaker.cooldown_multiplier:g} per failed probe, at most {cooldown_s:.0f} s: "
                f"{probes_allowed} in the {outage_s:.0f} s outage) = {bound}): "
                f"{verdict(ours.down_provider_calls <= bound)}; preferred-model share "
                f"{ours.extras.get('primary_share', 0):.1%}, higher than every contender: {verdict(higher)} ("
                + ", ".join(f"{r.contender} {r.extras.get('primary_share', 0):.1%}" for r in others)
                + ")"
            )
    return lines


def target_lines(metrics: Sequence[RunMetrics], threshold: int, probes: int) -> list[str]:
    """The issue's targets, checked against this run (each line says met / not met and the numbers)."""
    lines: list[str] = []
    by = {(m.scenario, m.contender, m.layout): m for m in metrics}
    layouts = sorted({m.layout for m in metrics if m.scenario != "oracle"})
    others = sorted({m.contender for m in metrics if m.contender not in ("ours", "oracle")})

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    def compare(ours: float, rivals: dict[str, float]) -> str:
        ties = [name for name, value in rivals.items() if value == ours]
        beaten_by = [name for name, value in rivals.items() if value < ours]
        if beaten_by:
            return f"**not met** (lower: {', '.join(beaten_by)})"
        if ties:
            return f"**not met** (tied with {', '.join(ties)})"
        return "**met**"

    bound = threshold + probes
    for layout in layouts:
        ours = by.get(("1", "ours", layout))
        if ours is None:
            continue
        lines.append(
            f"- Scenario 1, {layout}: completion {ours.ratio:.2f} x oracle (target <= 1.10): "
            f"{verdict(ours.ratio <= 1.10)}"
        )
        lines.append(
            f"- Scenario 1, {layout}: calls to the down primary {ours.down_provider_calls}, of which "
            f"{ours.down_calls_after_first_fault} after its first 529 had been answered (target <= threshold "
            f"{threshold} + probes {probes} = {bound}): {verdict(ours.down_provider_calls <= bound)}"
        )
        rivals = [by[("1", o, layout)] for o in others if ("1", o, layout) in by]
        if rivals:
            summary = ", ".join(f"{r.contender} {r.ratio:.2f}x / {r.down_provider_calls} calls" for r in rivals)
            on_time = compare(ours.completion_s, {r.contender: r.completion_s for r in rivals})
            on_calls = compare(ours.down_provider_calls, {r.contender: r.down_provider_calls for r in rivals})
            lines.append(
                f"- Scenario 1, {layout}: lower than every other contender on completion time {on_time}, "
                f"on calls to the down primary {on_calls} (others: {summary})"
            )
    for scenario in ("1", "2", "5"):
        for layout in layouts:
            ours = by.get((scenario, "ours", layout))
            rivals = [by[(scenario, o, layout)] for o in others if (scenario, o, layout) in by]
            if ours is None or not rivals:
                continue
            cheapest = compare(
                round(ours.usd_per_success, 6), {r.contender: round(r.usd_per_success, 6) for r in rivals}
            )
            listed = ", ".join(f"{r.contender} {r.usd_per_success:.6f}" for r in rivals)
            lines.append(
                f"- Scenario {scenario}, {layout}: ${ours.usd_per_success:.6f} per served request, lowest of every "
                f"contender {cheapest} (others: {listed})"
            )
    ours_runs = [m for m in metrics if m.contender == "ours"]
    if ours_runs:
        perm = sum(m.permanent_retries for m in ours_runs)
        lines.append(
            f"- Permanent errors retried by ours, all scenarios and layouts: {perm} (target 0): {verdict(perm == 0)}"
        )
        failed_13 = [m for m in ours_runs if m.scenario in ("1", "2", "3")]
        if failed_13:
            total = sum(m.failed for m in failed_13)
            lines.append(f"- Requests failed by ours in scenarios 1-3: {total} (target 0): {verdict(total == 0)}")
    return lines


# (attribute, label, relative tolerance): a rival "wins" only by more than the tolerance (times are noisy).
COMPARED: tuple[tuple[str, str, float], ...] = (
    ("completion_s", "completion time", 0.05),
    ("fault_calls", "faulted calls", 0.0),
    ("down_provider_calls", "calls to the down primary", 0.0),
    ("calls_per_success", "calls per success", 0.0),
    ("permanent_retries", "permanent retries", 0.0),
    ("p50_s", "p50 latency", 0.05),
    ("p95_s", "p95 latency", 0.05),
    ("failed", "requests failed", 0.0),
    ("usd_per_success", "dollars per served request", 0.0),
)


def rival_wins(metrics: Sequence[RunMetrics]) -> list[str]:
    """Every (scenario, layout, metric) where another contender did better than ours, beyond the tolerance."""
    lines: list[str] = []
    ours = {(m.scenario, m.layout): m for m in metrics if m.contender == "ours"}
    for m in metrics:
        if m.contender in ("ours", "oracle") or (m.scenario, m.layout) not in ours:
            continue
        mine = ours[(m.scenario, m.layout)]
        for attr, label, tolerance in COMPARED:
            theirs, our_value = float(getattr(m, attr)), float(getattr(mine, attr))
            if attr == "down_provider_calls" and SCENARIOS[m.scenario].down_provider is None:
                continue
            if theirs < our_value * (1 - tolerance) and theirs < our_value:
                digits = ".6f" if attr == "usd_per_success" else ".2f" if isinstance(getattr(m, attr), float) else "d"
                lines.append(
                    f"- scenario {m.scenario}, {m.layout}, {label}: {m.contender} {format(getattr(m, attr), digits)} "
                    f"vs ours {format(getattr(mine, attr), digits)}"
                )
    return lines


def render(
    metrics: Sequence[RunMetrics],
    settings: Settings,
    scenarios: Sequence[Scenario],
    command: str,
    host: str,
    wall_s: float,
    charts: dict[str, str],
) -> str:
    config = BenchConfig(sim_url="")
    refusals = sum(1 for n in range(settings.requests) if is_refusal_candidate(n))
    mode = "QUICK MODE (reduced workload and fault windows; not the issue's numbers)" if settings.quick else "full"
    lines = [
        START,
        "## Chaos: outage recovery and wasted calls (`bench/chaos.py`)",
        "",
        f"Command: `{command}` ({mode}; whole run {wall_s:.0f} s)  ",
        f"Machine: {host}  ",
        f"Workload: {settings.requests} requests ({refusals} "
        f"of them refusal candidates, see `bench/workload.py`), concurrency {settings.concurrency}, "
        f"{settings.latency_s * 1000:.0f} ms simulated latency per call, per-call timeout "
        f"{5 * settings.latency_s:.1f} s, fault windows x{settings.window_scale:g}. Chain "
        f"{' -> '.join(config.chain)}; at most {config.max_calls} calls per request; breakers open after "
        f"{config.failure_threshold} failures for {config.cooldown_s:.0f} s. Layouts: 1x16 = one process x 16 "
        "threads, 4x4 = 4 processes x 4 threads. Call counts come from the simulator (`/_sim/stats` and the "
        "per-request trace), summed over every worker process.",
        "",
        "Columns: *x oracle* = completion time / the oracle's (every request straight to a healthy primary, "
        "same layout); *faulted calls* = calls the simulator answered with the scenario's fault (calls to an "
        "unhealthy provider); *calls / success* = all provider calls / requests served; *permanent retries* = "
        "calls made for a request after it had been refused; p50/p95 = per-request latency; *$ / served "
        "request* = what every call of the run is billed at list price (`resources/providers/model_prices.json`: "
        "answered calls for their prompt and answer, refusals for their prompt, failed calls nothing) / requests "
        "served.",
        "",
    ]
    oracles = [m for m in metrics if m.scenario == "oracle"]
    if oracles:
        lines.append(
            "Oracle: "
            + "; ".join(f"{m.layout} {m.completion_s:.2f} s (p50 {m.p50_s:.2f} s, failed {m.failed})" for m in oracles)
            + "."
        )
        lines.append("")
    for scenario in scenarios:
        rows = [m for m in metrics if m.scenario == scenario.key]
        if not rows:
            continue
        lines += [f"### Scenario {scenario.key}: {scenario.title}", ""]
        if scenario.span_s is not None and scenario.open_loop:
            requests = requests_for(scenario, settings)
            interval = arrival_interval(scenario, settings)
            lines += [
                f"Workload: {requests} requests arriving open loop, one every {interval * 1000:.1f} ms "
                f"({1 / interval:.0f} a second, {UTILISATION:.0%} of the workers' healthy throughput) over "
                f"{requests * interval:.0f} s; latency counts from each request's scheduled arrival (queueing "
                f"included); a request still queued {QUEUE_TIMEOUT_S:g} s after its arrival is shed and counted "
                "failed (`queue_timeout`); *x oracle* compares with the last arrival plus one call.",
                "",
            ]
        elif scenario.span_s is not None:
            lines += [
                f"Workload: {requests_for(scenario, settings)} requests (about "
                f"{scenario.span_s * settings.window_scale:g} s at the oracle's pace); *x oracle* compares with the "
                "oracle's time scaled to that many requests.",
                "",
            ]
        lines += scenario_table(rows, scenario)
        if scenario.key in charts:
            lines += ["", f"![scenario {scenario.key}]({charts[scenario.key]})"]
        lines.append("")
    lines += ["### Targets (computed from this run)", ""]
    lines += target_lines(metrics, config.failure_threshold, 1)
    lines += issue18_target_lines(metrics, ours_breaker_policy(config), settings.window_scale)
    wins = rival_wins(metrics)
    lines += [
        "",
        "### Where another contender beat ours (computed; times only when more than 5 % better)",
        "",
    ]
    lines += wins or ["- nowhere in this run"]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def draw_charts(
    metrics: Sequence[RunMetrics], scenarios: Sequence[Scenario], quick: bool, section: str = "chaos"
) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    CHARTS.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    panels = (
        ("ratio", "completion / oracle"),
        ("fault_calls", "faulted calls"),
        ("calls_per_success", "calls per success"),
        ("p95_s", "p95 latency (s)"),
    )
    for scenario in scenarios:
        rows = [m for m in metrics if m.scenario == scenario.key]
        if not rows:
            continue
        contenders = list(dict.fromkeys(m.contender for m in rows))
        layouts = list(dict.fromkeys(m.layout for m in rows))
        shown = panels
        if scenario.key == "4":  # nothing faults there; what matters is what is done with a refusal
            shown = (panels[0], ("permanent_retries", "permanent retries"), panels[2], panels[3])
        fig, axes = plt.subplots(1, len(shown), figsize=(16, 3.8))
        width = 0.8 / max(1, len(layouts))
        for ax, (attr, label) in zip(axes, shown, strict=True):
            for j, layout in enumerate(layouts):
                values = []
                for c in contenders:
                    match = [m for m in rows if m.contender == c and m.layout == layout]
                    value = getattr(match[0], attr) if match else float("nan")
                    values.append(value if math.isfinite(value) else float("nan"))
                xs = [i + (j - (len(layouts) - 1) / 2) * width for i in range(len(contenders))]
                bars = ax.bar(xs, values, width, label=layout)
                ax.bar_label(bars, fmt="%.3g", fontsize=7)
            ax.set_xticks(range(len(contenders)), contenders, rotation=20, fontsize=8)
            ax.set_title(label, fontsize=10)
            if attr == "ratio":
                ax.axhline(1.10, color="grey", linestyle="--", linewidth=0.8)
        axes[0].legend(fontsize=8)
        suffix = " (quick mode)" if quick else ""
        fig.suptitle(f"Scenario {scenario.key}: {scenario.title}{suffix}", fontsize=11)
        fig.tight_layout()
        name = f"{section}-scenario-{scenario.key}.png"
        fig.savefig(CHARTS / name, dpi=110)
        plt.close(fig)
        paths[scenario.key] = f"bench/charts/{name}"
    return paths


def parse_layouts(text: str) -> list[Layout]:
    layouts = []
    for part in text.split(","):
        p, _, t = part.strip().partition("x")
        layouts.append(Layout(int(p), int(t)))
    return layouts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 requests, fault windows x0.4")
    parser.add_argument("--requests", type=int, help="override the number of requests")
    parser.add_argument("--latency", type=float, default=0.2, help="simulated seconds per call")
    parser.add_argument("--scenarios", default="1,2,3,4,5,6,7")
    parser.add_argument("--contenders", default=",".join(CONTENDERS + SHARED_STATE_CONTENDERS))
    parser.add_argument("--layouts", default="1x16,4x4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md and charts alone")
    parser.add_argument(
        "--section",
        default="chaos",
        help="BENCHMARKS.md section (markers <!-- NAME:start/end -->) and results file name; a run of some "
        "scenarios only (e.g. issue 18's 3,6,7) goes to its own section so it does not replace the full table",
    )
    parser.add_argument(
        "--trace",
        metavar="DIR",
        help="ours: write per-request attempt traces to DIR (read them with python -m bench.attempt_trace DIR)",
    )
    args = parser.parse_args(argv)
    if args.trace:
        os.environ[TRACE_DIR_ENV] = str(Path(args.trace).resolve())  # BenchConfig's default, in every run

    settings = Settings(latency_s=args.latency, seed=args.seed)
    if args.quick:
        settings = replace(settings, requests=64, window_scale=0.4, quick=True)
    if args.requests:
        settings = replace(settings, requests=args.requests)
    scenarios = [SCENARIOS[k.strip()] for k in args.scenarios.split(",") if k.strip()]
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    layouts = parse_layouts(args.layouts)
    for layout in layouts:
        if layout.processes * layout.threads != settings.concurrency:
            parser.error(f"layout {layout.label} is not {settings.concurrency} concurrent requests")
    command = "python bench/chaos.py " + " ".join(argv if argv is not None else sys.argv[1:])
    host = machine()
    began = time.time()
    metrics = run_all(settings, scenarios, contenders, layouts)
    wall = time.time() - began
    charts = {} if args.no_write else draw_charts(metrics, scenarios, settings.quick, args.section)
    section = render(metrics, settings, scenarios, command.strip(), host, wall, charts)
    start, end = START, END
    if args.section != "chaos":
        start, end = f"<!-- {args.section}:start -->", f"<!-- {args.section}:end -->"
    if args.section != "chaos":
        section = section.replace(START, start).replace(END, end).replace(
            "## Chaos: outage recovery and wasted calls", f"## Chaos ({args.section}): hedging, brownout, recovery", 1
        )
    print(section)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{args.section}.json").write_text(
            json.dumps({"settings": asdict(settings), "runs": [asdict(m) for m in metrics]}, indent=1) + "\n"
        )
        write_section(section, start, end)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
