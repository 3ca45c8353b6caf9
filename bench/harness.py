"""What the benchmarks share: the simulator process, worker processes, the markdown section writer.

Workers are spawned (not forked: LiteLLM and httpx may hold threads and locks) once per contender and
process layout, and reused for every scenario: each run sends them a ``RunSpec``, they build a fresh
contender (fresh breaker state), report ready, wait on a barrier with the parent, serve their share of
the requests on their own thread pool and send back one ``RequestResult`` per request.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "BENCHMARKS.md"


# ------------------------------------------------------------------------------------------ simulator


class SimulatorProcess:
    """``python -m bench.simserver`` on a free loopback port, driven over its control routes."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.simserver", "--port", "0"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"simulator did not start (said {self.url!r})")

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def configure(self, profile: str | dict[str, Any], latency_s: float, seed: int = 0) -> None:
        body: dict[str, Any]
        if isinstance(profile, dict):
            self._request("PUT", "/_sim/faults", {"profile": "none", "latency_s": latency_s, "seed": seed})
            body = profile
        else:
            body = {"profile": profile, "latency_s": latency_s, "seed": seed}
        self._request("PUT", "/_sim/faults", body)

    def reset(self) -> None:
        """Zero the counters and the trace; the profile's fault windows start now."""
        self._request("POST", "/_sim/reset", {})

    def stats(self) -> dict[str, Any]:
        return dict(self._request("GET", "/_sim/stats"))

    def trace(self) -> list[tuple[int, str, str, str, float]]:
        """(request number, provider, model, outcome, arrival s since reset) per call, in arrival order."""
        rows = self._request("GET", "/_bench/trace")["calls"]
        return [(int(n), str(p), str(m), str(o), float(t)) for n, p, m, o, t in rows]

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------ workers


@dataclass(frozen=True)
class RunSpec:
    """One run of one contender, as one worker process sees it."""

    contender: str
    config: Any  # bench.contenders.BenchConfig (kept Any so this module does not import the contenders)
    numbers: tuple[int, ...]
    threads: int
    workload: str = "chaos"
    options: dict[str, Any] = field(default_factory=dict)
    # Open loop: request ``n`` arrives ``n * arrival_interval_s`` after the run is released, whether or not
    # earlier ones were served, and its latency counts from then (queueing included). 0: closed loop, each
    # thread takes the next request when it is done with the last.
    arrival_interval_s: float = 0.0
    # Open loop: a request still waiting for a free thread this long after its arrival is shed, failed as
    # ``queue_timeout`` (a caller gives up; and a contender that falls behind cannot stretch the run without
    # bound). 0: never.
    queue_timeout_s: float = 0.0


@dataclass(frozen=True)
class RequestResult:
    number: int
    ok: bool
    provider: str
    error: str
    start: float  # when it was sent (closed loop) or scheduled to arrive (open loop)
    end: float

    @property
    def latency(self) -> float:
        return self.end - self.start


def _serve_all(spec: RunSpec, contender: Any, items: Sequence[Any]) -> list[RequestResult]:
    from bench.contenders import classify_failure

    def one(item: Any, arrival: float | None = None) -> RequestResult:
        start = time.time() if arrival is None else arrival
        if arrival is not None and spec.queue_timeout_s and time.time() - arrival > spec.queue_timeout_s:
            return RequestResult(item.number, False, "", "queue_timeout", start, time.time())
        try:
            provider = contender.serve(item)
        except Exception as error:  # a failed request is a measurement, not a crash
            return RequestResult(item.number, False, "", classify_failure(error), start, time.time())
        return RequestResult(item.number, True, provider, "", start, time.time())

    with ThreadPoolExecutor(max_workers=spec.threads) as pool:
        if not spec.arrival_interval_s:
            return list(pool.map(one, items))
        released = time.time()  # every worker leaves the barrier together: one time line for the run
        futures = []
        for item in items:
            arrival = released + item.number * spec.arrival_interval_s
            wait = arrival - time.time()
            if wait > 0:  # a real-time pace: this is the benchmark's load generator, not a test
                time.sleep(wait)
            futures.append(pool.submit(one, item, arrival))
        return [future.result() for future in futures]


def worker_main(conn: Connection, barrier: Any) -> None:
    """Loop: RunSpec in -> build contender -> "ready" -> barrier -> results out; None ends it."""
    from bench.contenders import BUILDERS
    from bench.workload import build_items

    while True:
        spec = conn.recv()
        if spec is None:
            return
        items = build_items(spec.workload, spec.numbers, spec.options)
        try:
            contender = BUILDERS[spec.contender](spec.config, spec.threads)
        except Exception as error:
            conn.send(("error", f"{type(error).__name__}: {error}"))
            barrier.wait()
            continue
        conn.send(("ready", os.getpid()))
        barrier.wait()
        try:
            results = _serve_all(spec, contender, items)
        finally:
            contender.close()
        conn.send(("done", results))


class WorkerPool:
    """``processes`` spawned workers, kept for several runs of one contender."""

    def __init__(self, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.processes = processes
        self.barrier = ctx.Barrier(processes + 1)
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, self.barrier), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)

    def run(self, specs: Sequence[RunSpec], before_start: Any = None) -> tuple[float, list[RequestResult]]:
        """Run one spec per worker together; return (start epoch, results). ``before_start()`` runs after
        every worker is ready and just before they are released (e.g. to reset the simulator)."""
        for conn, spec in zip(self._conns, specs, strict=True):
            conn.send(spec)
        errors = []
        for conn in self._conns:
            kind, detail = conn.recv()
            if kind == "error":
                errors.append(detail)
        if before_start is not None and not errors:
            before_start()
        start = time.time()
        self.barrier.wait()
        if errors:
            raise RuntimeError("; ".join(errors))
        results: list[RequestResult] = []
        for conn in self._conns:
            kind, payload = conn.recv()
            results.extend(payload)
        return start, results

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(None)
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------ report


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) // (1024 * 1024)} GiB RAM"
                break
    except (OSError, ValueError):
        pass
    uname = platform.platform()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{uname}; CPU: {cpu} ({os.cpu_count()} cores{mem}); Python {platform.python_version()}; "
        f"load average at start {load} (shared machine)"
    )


def write_section(section: str, start: str, end: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the text between ``start`` and ``end`` (markers included) or append it; others untouched."""
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start in current and end in current:
        before = current[: current.index(start)]
        after = current[current.index(end) + len(end) :].lstrip("\n")
        updated = before + section.rstrip("\n") + "\n" + ("\n" + after if after else "")
    else:
        updated = current.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(updated, encoding="utf-8")
    tmp.replace(path)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]
