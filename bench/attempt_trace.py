"""Per-request attempt traces of the chaos benchmark's ``ours`` contender, and where a faulted request's time went.

    .venv/bin/python bench/chaos.py --scenarios 3 --contenders ours --layouts 1x16 --no-write --trace /tmp/t
    .venv/bin/python -m bench.attempt_trace /tmp/t

With ``--trace DIR`` every worker process appends one JSON line per request to ``DIR/<run>/<contender>-<pid>.jsonl``
(``<run>``: the run's breaker folder name, shared by its processes; warm-up runs are named ``...warm-...``):
the request's number, start and end (epoch s), whether it was served, the hedge delay the hedger would use for
the primary when the request began (``None``: hedging off) and the layer's own ``AttemptRecord`` list
(each step's time, provider, outcome, error code, decision, wait and latency). The report groups the requests
whose first call failed or was hedged by what happened first (a timeout, a connection reset, a hedge) and
says how long each path took and where: time to the hedge, backoff waits, calls after the first.

Why: the simulator's server-side trace (``bench/simserver.py``) sees calls, not the client's waits; the
attempt records say what the layer decided and for how long it slept, which is what a slow path is made of.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resources.resilience.telemetry import AttemptRecord

TRACE_DIR_ENV = "CINEFORGE_BENCH_TRACE_DIR"


class ThreadLog(logging.Handler):
    """Keeps the layer's debug lines (why a hedge was not sent, ...) per thread, for the request in flight."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self._local, "lines", None)
        if lines is not None:
            lines.append(record.getMessage())

    def begin(self) -> None:
        self._local.lines = []

    def take(self) -> list[str]:
        lines: list[str] = getattr(self._local, "lines", None) or []
        self._local.lines = None
        return lines


class RequestTraceWriter:
    """Appends one JSON line per served or failed request to this process's file under ``directory``."""

    def __init__(self, directory: str, run: str, contender: str) -> None:
        (Path(directory) / run).mkdir(parents=True, exist_ok=True)
        self._path = Path(directory) / run / f"{contender}-{os.getpid()}.jsonl"
        self._lock = threading.Lock()
        self.log = ThreadLog()
        logger = logging.getLogger("resources.resilience")
        logger.addHandler(self.log)
        logger.setLevel(logging.DEBUG)

    def write(
        self,
        number: int,
        start: float,
        end: float,
        served: bool,
        hedge_delay: float | None,
        attempts: Sequence[AttemptRecord],
    ) -> None:
        line = json.dumps(
            {
                "number": number,
                "start": start,
                "end": end,
                "served": served,
                "hedge_delay": hedge_delay,
                "attempts": [record.model_dump(mode="json", exclude_defaults=True) for record in attempts],
                "log": self.log.take(),
            }
        )
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


@dataclass(frozen=True)
class TracedRequest:
    number: int
    start: float
    end: float
    served: bool
    hedge_delay: float | None
    attempts: tuple[dict[str, Any], ...]
    log: tuple[str, ...] = ()

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def path(self) -> str:
        """What happened to the first call: ``timeout``, ``connection_reset``, ``hedged`` (raced and another
        call won, or cancelled), another error code, or ``ok``."""
        first = self.attempts[0] if self.attempts else {}
        if first.get("decision") == "hedge_sent":
            return "hedged"
        if first.get("outcome") == "error":
            return str(first.get("error_code") or "error")
        return "ok"

    def steps(self) -> str:
        """The request's steps, each at its offset from the request's start."""
        parts = []
        for record in self.attempts:
            offset = record["ts"] - self.start
            detail = record.get("error_code") or record["outcome"]
            wait = f" wait {record['delay_s']:.2f}" if record.get("delay_s") else ""
            took = f" took {record['latency_s']:.2f}" if record.get("latency_s") is not None else ""
            parts.append(f"+{offset:.2f} {record['provider']}:{detail}->{record['decision']}{took}{wait}")
        return "; ".join(parts)


def load(directory: str | Path) -> list[TracedRequest]:
    out = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            out.append(
                TracedRequest(
                    row["number"],
                    row["start"],
                    row["end"],
                    row["served"],
                    row["hedge_delay"],
                    tuple(row["attempts"]),
                    tuple(row.get("log", ())),
                )
            )
    return sorted(out, key=lambda r: r.start)


def report(requests: Sequence[TracedRequest], detail: bool = True) -> list[str]:
    """Per path: how many requests, their latency (mean / max), backoff waited; then each faulted request."""
    if not requests:
        return ["no traced requests"]
    began = requests[0].start
    ok = [r.latency for r in requests if r.path == "ok"]
    lines = [f"{len(requests)} requests; healthy first call: {len(ok)}, mean {statistics.fmean(ok or [0]):.3f} s"]
    by_path: dict[str, list[TracedRequest]] = defaultdict(list)
    for r in requests:
        if r.path != "ok":
            by_path[r.path].append(r)
    for path, rows in sorted(by_path.items()):
        waits = [sum(a.get("delay_s", 0.0) for a in r.attempts) for r in rows]
        lines.append(
            f"{path}: {len(rows)} requests, latency mean {statistics.fmean(r.latency for r in rows):.3f} s "
            f"max {max(r.latency for r in rows):.3f} s; backoff waited mean {statistics.fmean(waits):.3f} s"
        )
    unhedged = sum(1 for r in requests if _unhedged_timeouts(r.attempts))
    if unhedged:
        lines.append(f"timeouts waited out without a hedge: {unhedged} requests (the debug lines say why)")
    if detail:
        for r in requests:
            if r.path != "ok":
                delay = "-" if r.hedge_delay is None else f"{r.hedge_delay:.3f}"
                lines.append(
                    f"  #{r.number} at +{r.start - began:.2f} s took {r.latency:.2f} s (hedge delay {delay}): "
                    f"{r.steps()}" + "".join(f" [{line}]" for line in r.log)
                )
    return lines


def _unhedged_timeouts(attempts: Iterable[dict[str, Any]]) -> bool:
    previous: dict[str, Any] | None = None
    for record in attempts:
        if record.get("error_code") == "timeout" and (previous is None or previous.get("decision") != "hedge_sent"):
            return True
        previous = record
    return False


def main(argv: Sequence[str]) -> int:
    """Report every measured run under the trace folder (warm-up runs left out), oldest first."""
    runs = [d for d in Path(argv[0]).iterdir() if d.is_dir() and "warm-" not in d.name]
    for run in sorted(runs, key=lambda d: d.stat().st_mtime):
        print(f"== {run.name}")
        print("\n".join(report(load(run), detail="--summary" not in argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
