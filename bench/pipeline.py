"""Pipeline benchmark: what Dagster costs end to end, how close scene fan-out gets to ideal, and what the
resilience layer adds to one call.

    .venv/bin/python bench/pipeline.py            # default: 5 Dagster runs, 3 fan-out runs, 20k + 5k overhead calls
    .venv/bin/python bench/pipeline.py --quick    # 2 / 1 / 3k
    .venv/bin/python bench/pipeline.py --no-write # print only

1. **Dagster vs direct.** Big Fish (``$CINEFORGE_CORPUS/Big-Fish.fountain``) through the
   ``screenplay_pipeline`` job's four ingest assets (``raw_input`` -> ``canonical_script`` -> ``scenes`` ->
   ``project_config``), ``execute_in_process`` on a temporary instance (offline provider mode, so no
   network), against the same domain functions and the same ``AIProviderResource.run_task`` calls made
   directly in a plain loop. One warm-up of each is not counted; medians of the rest.
2. **Scene fan-out.** One ``enrich_scenes`` call per Big Fish scene (N), C at a time on a thread pool,
   through ``ResilientCaller`` (SQLite breaker store, default chain) against the loopback simulator
   answering every call after L seconds; against the ideal ``ceil(N/C) * L``.
3. **Per-call overhead.** (a) In process: ``ResilientCaller.call`` over an adapter that returns a canned
   completion, against calling that adapter directly, in interleaved batches; (b) on loopback: bare
   ``httpx`` POST + JSON decode, our Anthropic adapter, and ``ResilientCaller`` over that adapter, against
   the simulator with no added latency, interleaved call by call. Medians per call.

4. **Stages that split their work** (``--parts split``, not in the default set: it runs for minutes, as
   the answers it times would). Big Fish's four ingest assets through Dagster in simulated mode against
   the project's simulator with the model limits on, each answer paced at a time to first token plus its
   tokens at a fixed rate (``--ttft``, ``--tokens-per-second``): ``enrich_scenes`` split to the default
   per-call ceiling, against one call with the ceiling raised to the model's limit. Reports calls per stage,
   input/output tokens, wall time and the minimum number of calls the ceiling allows.

Results replace the ``pipeline`` section of BENCHMARKS.md (parts 1-3) and the ``pipeline-split`` section
(part 4).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.harness import SimulatorProcess, machine, write_section  # noqa: E402

START, END = "<!-- pipeline:start -->", "<!-- pipeline:end -->"
INGEST_ASSETS = ("raw_input", "canonical_script", "scenes", "project_config")
OVERHEAD_TARGET_US = 50.0


def corpus_dir() -> Path:
    return Path(os.environ.get("CINEFORGE_CORPUS", REPO.parent / "shared" / "corpus")).resolve()


# ------------------------------------------------------------------------------------------ 1. Dagster


@dataclass
class DagsterResult:
    dagster_s: list[float]
    direct_s: list[float]
    scenes: int
    step_ms: dict[str, float]  # the last Dagster run's step durations, as its event log reports them

    @property
    def ratio(self) -> float:
        return statistics.median(self.dagster_s) / statistics.median(self.direct_s)


def _direct_pipeline(path: Path, ai: Any) -> int:
    """The four assets' domain work and AI calls, in a plain function (no Dagster, no artifacts)."""
    import pandas as pd

    from cineforge_assets.screenplay.formats.reader import read_source
    from cineforge_assets.screenplay.fountain import parse_fountain, write_fountain
    from cineforge_assets.screenplay.payloads import enrich_scenes_payload, project_insights_payload
    from cineforge_assets.screenplay.project import build_project_config
    from cineforge_assets.screenplay.scenes import scenes_dataframe, split_scenes

    raw = read_source(path)
    script = parse_fountain(raw.text)
    fountain = write_fountain(script)
    script = parse_fountain(fountain)
    # scenes
    records = split_scenes(parse_fountain(fountain), fountain)
    df = scenes_dataframe(records)
    payload = enrich_scenes_payload(script.title or raw.file_name, records)
    enriched = ai.run_task(stage="extract_scenes", task="enrich_scenes", payload=payload)
    by_number = {s.scene_number: s for s in enriched.value.scenes}
    df["summary"] = [by_number[n].summary if n in by_number else "" for n in df["scene_number"]]
    # project_config
    script = parse_fountain(fountain)
    records = split_scenes(script, fountain)
    base = build_project_config(script, records, source_format=raw.format, page_count=raw.page_count)
    insights = project_insights_payload(base, records, df.get("summary", pd.Series(dtype=str)))
    ai.run_task(stage="project_config", task="project_insights", payload=insights)
    return len(df)


def _step_durations(instance: Any, run_id: str) -> dict[str, float]:
    from dagster import DagsterEventType

    durations: dict[str, float] = {}
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_SUCCESS).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.step_key:
            durations[event.step_key] = float(event.event_specific_data.duration_ms)
    return durations


def bench_dagster(path: Path, runs: int, log: Callable[[str], None]) -> DagsterResult:
    workdir = Path(tempfile.mkdtemp(prefix="cineforge-pipeline-"))
    try:
        home, data = workdir / "dagster_home", workdir / "data"
        home.mkdir()
        data.mkdir()
        shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
        os.environ.update(
            {"DAGSTER_HOME": str(home), "CINEFORGE_DATA": str(data), "CINEFORGE_PROVIDER_MODE": "offline"}
        )
        from dagster import AssetKey, DagsterInstance

        from cineforge_assets.definitions import defs
        from cineforge_assets.sources import register_source
        from resources.ai import AIProviderResource

        run_config = {"resources": {"ai": {"config": {"mode": "offline"}}}}
        # The four ingest assets, whose domain work _direct_pipeline repeats (the job's b-roll step has
        # no counterpart there, so it is left out of both sides).
        selection = [AssetKey(name) for name in INGEST_ASSETS]
        job = defs.resolve_job_def("screenplay_pipeline")
        dagster_s: list[float] = []
        step_ms: dict[str, float] = {}
        with DagsterInstance.get() as instance:
            key = register_source(path)
            instance.add_dynamic_partitions("screenplays", [key])
            for i in range(runs + 1):
                # Dagster's console logger still formats every event; only its output is dropped.
                with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
                    start = time.perf_counter()
                    result = job.execute_in_process(
                        instance=instance,
                        partition_key=key,
                        run_config=run_config,
                        raise_on_error=True,
                        asset_selection=selection,
                    )
                    elapsed = time.perf_counter() - start
                if not result.success:
                    raise RuntimeError("the screenplay_pipeline run failed")
                if i:
                    dagster_s.append(elapsed)
                log(f"dagster run {i}: {elapsed:.2f}s{' (warm-up)' if i == 0 else ''}")
            step_ms = _step_durations(instance, result.run_id)
        ai = AIProviderResource(
            mode="offline",
            telemetry_path=str(data / "telemetry" / "direct.jsonl"),
            breaker_store_url=f"sqlite:///{workdir / 'direct-breakers.sqlite'}",
        )
        direct_s: list[float] = []
        scenes = 0
        for i in range(runs + 1):
            start = time.perf_counter()
            scenes = _direct_pipeline(path, ai)
            elapsed = time.perf_counter() - start
            if i:
                direct_s.append(elapsed)
            log(f"direct run {i}: {elapsed:.2f}s{' (warm-up)' if i == 0 else ''}")
        return DagsterResult(dagster_s, direct_s, scenes, step_ms)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------------------------------ 2. fan-out


@dataclass
class FanoutResult:
    scenes: int
    concurrency: int
    latency_s: float
    wall_s: list[float]
    failed: int
    calls: int
    bare_wall_s: list[float]

    @property
    def ideal_s(self) -> float:
        return math.ceil(self.scenes / self.concurrency) * self.latency_s

    @property
    def ratio(self) -> float:
        return statistics.median(self.wall_s) / self.ideal_s

    @property
    def bare_ratio(self) -> float:
        return statistics.median(self.bare_wall_s) / self.ideal_s


def scene_requests(path: Path) -> list[Any]:
    from cineforge_assets.screenplay.formats.reader import read_source
    from cineforge_assets.screenplay.fountain import parse_fountain
    from cineforge_assets.screenplay.payloads import enrich_scenes_payload
    from cineforge_assets.screenplay.scenes import split_scenes
    from resources.providers.prompts import build_request

    raw = read_source(path)
    script = parse_fountain(raw.text)
    records = split_scenes(script, raw.text)
    title = script.title or raw.file_name
    return [build_request("enrich_scenes", enrich_scenes_payload(title, [r]), stage="extract_scenes") for r in records]


def bench_fanout(
    sim: SimulatorProcess, path: Path, concurrency: int, latency_s: float, runs: int, log: Callable[[str], None]
) -> FanoutResult:
    import httpx

    from bench.contenders import BenchConfig, _adapters
    from resources.providers.prompts import parse_response
    from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
    from resources.resilience.breaker_store import SQLiteBreakerStore
    from resources.resilience.executor import ResilientCaller

    requests = scene_requests(path)
    sim.configure("none", latency_s)
    walls: list[float] = []
    bare_walls: list[float] = []
    failed = calls = 0
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="cineforge-fanout-") as tmp:
            limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
            client = httpx.Client(transport=httpx.HTTPTransport(retries=0, limits=limits))
            adapters = _adapters(BenchConfig(sim_url=sim.url), client)
            store = SQLiteBreakerStore(Path(tmp) / "breakers.sqlite")
            caller = ResilientCaller(adapters, CircuitBreaker(store, BreakerPolicy()))
            primary = adapters["anthropic"]

            def through_layer(request: Any, caller: ResilientCaller = caller) -> bool:
                def parse(text: str) -> Any:
                    return parse_response("enrich_scenes", text, payload=request.payload)

                try:
                    caller.call("extract_scenes", request, parse)
                except Exception:
                    return False
                return True

            def bare(request: Any, primary: Any = primary) -> bool:
                completion = primary.complete("claude-sonnet-4-6", request, timeout=60.0)
                parse_response("enrich_scenes", completion.text, payload=request.payload)
                return True

            # Bare first: the breaker store is then as cold for the layer's run as in production.
            sim.reset()
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                list(pool.map(bare, requests))
            bare_walls.append(time.perf_counter() - start)

            sim.reset()
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                results = list(pool.map(through_layer, requests))
            walls.append(time.perf_counter() - start)
            failed += results.count(False)
            calls += int(sim.stats().get("total", 0))
            store.close()
            client.close()
        log(
            f"fan-out run {i}: layer {walls[-1]:.2f}s, bare {bare_walls[-1]:.2f}s for {len(requests)} scenes "
            f"(C={concurrency}, L={latency_s}s)"
        )
    return FanoutResult(len(requests), concurrency, latency_s, walls, failed, calls, bare_walls)


# ------------------------------------------------------------------------------------------ 3. overhead


@dataclass
class OverheadResult:
    rows: list[tuple[str, float]]  # (what, median microseconds per call)
    inprocess_overhead_us: float
    inprocess_overhead_sink_us: float
    loopback_overhead_us: float
    loopback_own_us: float
    loopback_own_iqr_us: tuple[float, float]
    loopback_own_block_medians_us: list[float]
    loopback_stack_overhead_us: float
    loopback_adapter_iqr_us: float
    iterations: int
    loopback_iterations: int


class _CannedAdapter:
    """An adapter that answers at once: what is left to time is the caller's own work."""

    name = "anthropic"

    def __init__(self) -> None:
        from resources.providers.base import Completion

        self._completion = Completion(provider="anthropic", model="claude-sonnet-4-6", text='{"ok": true}')

    def complete(self, model: str, request: Any, *, timeout: float) -> Any:
        return self._completion

    def close(self) -> None:
        pass


class _TimedAdapter:
    """Wraps an adapter and keeps how long each ``complete`` took, so the caller's own time is the rest."""

    name = "anthropic"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.spans: list[float] = []

    def complete(self, model: str, request: Any, *, timeout: float) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.complete(model, request, timeout=timeout)
        finally:
            self.spans.append(time.perf_counter() - start)

    def close(self) -> None:
        pass


def _litellm_call_us(sim_url: str, request: Any, calls: int) -> float | None:
    """Median time of one LiteLLM Router call to the same endpoint (None if LiteLLM is not installed)."""
    try:
        from bench.contenders import BenchConfig, LiteLLMContender
    except ImportError:
        return None
    try:
        router = LiteLLMContender(BenchConfig(sim_url=sim_url, request_timeout_s=60.0), 1).router
    except ImportError:
        return None
    messages = [{"role": "system", "content": request.system}, {"role": "user", "content": request.prompt}]
    for _ in range(10):
        router.completion(model="claude-sonnet-4-6", messages=messages, max_tokens=request.max_tokens)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        router.completion(model="claude-sonnet-4-6", messages=messages, max_tokens=request.max_tokens)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _median_per_call(batches: list[float], batch: int) -> float:
    return statistics.median(batches) / batch * 1e6


def bench_overhead(sim: SimulatorProcess, iterations: int, loopback_iterations: int) -> OverheadResult:
    import httpx

    from resources.adapters.anthropic import AnthropicAdapter
    from resources.providers.base import CompletionRequest
    from resources.resilience.breaker import CircuitBreaker
    from resources.resilience.breaker_store import SQLiteBreakerStore
    from resources.resilience.executor import ResilientCaller
    from resources.resilience.telemetry import JsonlTelemetrySink

    request = CompletionRequest(system="<task>normalize</task>", prompt='<input>{"text": "INT. ROOM - DAY"}</input>')
    chain = ["claude-sonnet-4-6"]
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="cineforge-overhead-") as tmp:
        canned = _CannedAdapter()
        chains = {"normalize": chain}  # resolved once and cached, as the default chains are in production
        caller = ResilientCaller(
            {"anthropic": canned},
            CircuitBreaker(SQLiteBreakerStore(Path(tmp) / "b.sqlite")),
            rng=random.Random(0),
            chains=chains,
        )
        sink = JsonlTelemetrySink(Path(tmp) / "events.jsonl")
        caller_sink = ResilientCaller(
            {"anthropic": canned},
            CircuitBreaker(SQLiteBreakerStore(Path(tmp) / "b2.sqlite")),
            rng=random.Random(0),
            listeners=[sink],
            chains=chains,
        )
        parse = json.loads

        def bare() -> None:
            parse(canned.complete("claude-sonnet-4-6", request, timeout=60.0).text)

        def layered() -> None:
            caller.call("normalize", request, parse)

        def layered_sink() -> None:
            caller_sink.call("normalize", request, parse)

        batch = 100
        timings: dict[str, list[float]] = {"bare": [], "layered": [], "layered_sink": []}
        funcs = {"bare": bare, "layered": layered, "layered_sink": layered_sink}
        for f in funcs.values():  # warm caches, open the SQLite files, prime the breaker's record
            for _ in range(200):
                f()
        for _ in range(max(1, iterations // batch)):
            for name, f in funcs.items():
                start = time.perf_counter()
                for _ in range(batch):
                    f()
                timings[name].append(time.perf_counter() - start)
        bare_us = _median_per_call(timings["bare"], batch)
        layered_us = _median_per_call(timings["layered"], batch)
        sink_us = _median_per_call(timings["layered_sink"], batch)
        rows += [
            ("in process: canned adapter called directly (+ json.loads)", bare_us),
            ("in process: ResilientCaller over the canned adapter (SQLite breaker store)", layered_us),
            ("in process: the same + JsonlTelemetrySink (one append per attempt)", sink_us),
        ]
        sink.close()

        # Loopback: the simulator with no added latency, call by call, interleaved.
        sim.configure("none", 0.0)
        client = httpx.Client(transport=httpx.HTTPTransport(retries=0))
        adapter = AnthropicAdapter("sim-key-not-a-secret", f"{sim.url}/anthropic", client)
        timed = _TimedAdapter(adapter)
        loop_caller = ResilientCaller(
            {"anthropic": timed},
            CircuitBreaker(SQLiteBreakerStore(Path(tmp) / "b3.sqlite")),
            rng=random.Random(0),
            chains=chains,
        )
        url = f"{sim.url}/anthropic/v1/messages"

        def raw_httpx() -> None:
            # What a caller with nothing but httpx writes: build the Messages body, POST, read the text.
            body = {
                "model": "claude-sonnet-4-6",
                "max_tokens": request.max_tokens,
                "system": request.system,
                "messages": [{"role": "user", "content": request.prompt}],
            }
            headers = {"x-api-key": "sim-key-not-a-secret", "anthropic-version": "2023-06-01"}
            response = client.post(url, json=body, headers=headers, timeout=60.0)
            response.raise_for_status()
            "".join(block["text"] for block in response.json()["content"] if block["type"] == "text")

        def via_adapter() -> None:
            adapter.complete("claude-sonnet-4-6", request, timeout=60.0)

        def via_layer() -> None:
            loop_caller.call("normalize", request, lambda text: text)

        loop = {"bare httpx": raw_httpx, "adapter": via_adapter, "layer": via_layer}
        loop_times: dict[str, list[float]] = {name: [] for name in loop}
        for f in loop.values():
            for _ in range(50):
                f()
        timed.spans.clear()
        for _ in range(loopback_iterations):
            for name, f in loop.items():
                start = time.perf_counter()
                f()
                loop_times[name].append(time.perf_counter() - start)
        loop_us = {name: statistics.median(values) * 1e6 for name, values in loop_times.items()}
        # Interleaved call by call, so the i-th calls of each kind saw the same machine: pair them.
        paired_layer_us = statistics.median(
            (b - a) * 1e6 for a, b in zip(loop_times["adapter"], loop_times["layer"], strict=True)
        )
        paired_stack_us = statistics.median(
            (b - a) * 1e6 for a, b in zip(loop_times["bare httpx"], loop_times["layer"], strict=True)
        )
        quartiles = statistics.quantiles(loop_times["adapter"], n=4)
        adapter_iqr_us = (quartiles[2] - quartiles[0]) * 1e6
        # The layer's own time inside each of its calls: the call minus the adapter's time within it.
        own = [(total - span) * 1e6 for total, span in zip(loop_times["layer"], timed.spans, strict=True)]
        own_quartiles = statistics.quantiles(own, n=4)
        block = max(1, len(own) // 5)  # the machine is shared: show how much the median moves over the run
        block_medians = [statistics.median(own[i : i + block]) for i in range(0, block * 5, block)]
        rows += [
            ("loopback: bare httpx (build the body, POST, read the text)", loop_us["bare httpx"]),
            ("loopback: AnthropicAdapter.complete", loop_us["adapter"]),
            ("loopback: ResilientCaller over AnthropicAdapter", loop_us["layer"]),
            (
                "loopback: the layer's own time inside those calls (call minus the adapter's time in it)",
                statistics.median(own),
            ),
        ]
        litellm_us = _litellm_call_us(sim.url, request, max(50, loopback_iterations // 10))
        if litellm_us is not None:
            rows.append(("loopback, for scale: LiteLLM `Router.completion` of the same request", litellm_us))
        client.close()
    return OverheadResult(
        rows=rows,
        inprocess_overhead_us=layered_us - bare_us,
        inprocess_overhead_sink_us=sink_us - bare_us,
        loopback_overhead_us=paired_layer_us,
        loopback_own_us=statistics.median(own),
        loopback_own_iqr_us=(own_quartiles[0], own_quartiles[2]),
        loopback_own_block_medians_us=block_medians,
        loopback_stack_overhead_us=paired_stack_us,
        loopback_adapter_iqr_us=adapter_iqr_us,
        iterations=iterations,
        loopback_iterations=loopback_iterations,
    )


# ------------------------------------------------------------------------------------------ 4. split stages

SPLIT_START, SPLIT_END = "<!-- pipeline-split:start -->", "<!-- pipeline-split:end -->"
# Assumed pace of a hosted model answering: time to first token, then output tokens a second (the order of
# what the providers' current mid-size models deliver; an answer's time grows with its length).
DEFAULT_TTFT_S = 0.8
DEFAULT_TOKENS_PER_S = 80.0


@dataclass
class StageTally:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cut: int = 0


@dataclass
class SplitResult:
    label: str
    success: bool
    wall_s: float
    scenes_step_s: float
    stages: dict[str, StageTally]
    ceiling: int
    served_by: dict[str, int]
    error: str = ""


def paced_simulator(ttft_s: float, tokens_per_s: float) -> Any:
    """The project's simulator, answering each call after ``ttft_s`` plus its answer's tokens at
    ``tokens_per_s`` (what the answer it sends costs, cut at the ceiling), tallying tokens per task."""
    import threading

    from resources.providers.limits import estimate_prompt_tokens, estimate_tokens
    from resources.providers.prompts import extract_task_and_input
    from resources.simulator import ProviderSimulator
    from resources.simulator.wire import cut_at_ceiling

    class PacedSimulator(ProviderSimulator):
        def __init__(self) -> None:
            self.tally: dict[str, StageTally] = {}
            self._tally_lock = threading.Lock()
            super().__init__()

        def _model_text(self, call: Any) -> str:  # type: ignore[override]
            text = ProviderSimulator._model_text(call)
            task, _ = extract_task_and_input(call.system, call.prompt)
            sent, cut = cut_at_ceiling(text, call.ceiling())
            with self._tally_lock:
                row = self.tally.setdefault(task or "other", StageTally())
                row.calls += 1
                row.input_tokens += estimate_prompt_tokens(call.system, call.prompt)
                row.output_tokens += estimate_tokens(sent)
                row.cut += int(cut)
            self.wait(ttft_s + estimate_tokens(sent) / tokens_per_s)
            return text

    return PacedSimulator()


def bench_split(path: Path, ttft_s: float, tokens_per_s: float, log: Callable[[str], None]) -> list[SplitResult]:
    """Big Fish's AI stages through Dagster in simulated mode, the stage split to the per-call ceiling
    against one call at the model's own limit."""
    from dagster import AssetKey, DagsterEventType, DagsterInstance

    from cineforge_assets.definitions import defs
    from cineforge_assets.sources import register_source

    setups: list[tuple[str, dict[str, Any]]] = [
        ("split: enrich_scenes batches at the default 4,096-token ceiling (first alone, then 4 in flight)", {}),
        (
            "one call: ceiling raised to the model's 128,000 (request timeout and deadline raised to let it finish)",
            {"call_output_tokens": 128_000, "request_timeout_seconds": 900.0, "deadline_seconds": 1200.0},
        ),
    ]
    results: list[SplitResult] = []
    for label, overrides in setups:
        workdir = Path(tempfile.mkdtemp(prefix="cineforge-split-"))
        try:
            home, data = workdir / "dagster_home", workdir / "data"
            home.mkdir()
            data.mkdir()
            shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
            os.environ.update({"DAGSTER_HOME": str(home), "CINEFORGE_DATA": str(data)})
            with paced_simulator(ttft_s, tokens_per_s) as sim, DagsterInstance.get() as instance:
                config = {
                    "mode": "simulated",
                    "simulator_url": sim.base_url,
                    "breaker_store_url": f"sqlite:///{workdir / 'breakers.sqlite'}",
                    "seed": 1,
                    **overrides,
                }
                key = register_source(path)
                instance.add_dynamic_partitions("screenplays", [key])
                selection = [AssetKey(name) for name in INGEST_ASSETS]
                with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
                    start = time.perf_counter()
                    result = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
                        instance=instance,
                        partition_key=key,
                        run_config={"resources": {"ai": {"config": config}}},
                        raise_on_error=False,
                        asset_selection=selection,
                    )
                    wall = time.perf_counter() - start
                steps = _step_durations(instance, result.run_id)
                served: dict[str, int] = {}
                error = ""
                if result.success:
                    table = __import__("pandas").read_parquet(data / "artifacts" / "scenes" / f"{key}.parquet")
                    served = {str(k): int(v) for k, v in table["enriched_by"].value_counts().items()}
                else:
                    records = instance.get_records_for_run(result.run_id, of_type=DagsterEventType.STEP_FAILURE)
                    for record in records.records:
                        event = record.event_log_entry.dagster_event
                        if event is not None:
                            data_ = event.step_failure_data.user_failure_data
                            error = f"{event.step_key}: {(data_.description if data_ else '')[:160]}"
                ceiling = int(overrides.get("call_output_tokens", 4096))
                results.append(
                    SplitResult(
                        label,
                        result.success,
                        wall,
                        steps.get("scenes", 0.0) / 1000.0,
                        dict(sim.tally),
                        ceiling,
                        served,
                        error,
                    )
                )
            log(f"split bench [{label}]: {'ok' if result.success else 'FAILED'} in {wall:.1f}s")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def render_split(results: list[SplitResult], ttft_s: float, tokens_per_s: float, command: str, host: str) -> str:
    lines = [
        SPLIT_START,
        "## Pipeline: stages that split their work (`bench/pipeline.py --parts split`)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {host}",
        "",
        "Big Fish (190 scenes) through `raw_input` -> `canonical_script` -> `scenes` -> `project_config` in "
        "simulated mode (default chains, limits on: the simulator cuts answers at the request's ceiling and "
        f"refuses what the real APIs refuse), each answer paced at {ttft_s:.1f} s to the first token plus "
        f"{tokens_per_s:.0f} output tokens a second. Tokens are the table's estimate (4 characters a token).",
        "",
        "| setup | result | wall s | `scenes` step s | calls: enrich_scenes | project_insights | "
        "input tokens | output tokens | answers cut at the ceiling | served by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        enrich = r.stages.get("enrich_scenes", StageTally())
        insights = r.stages.get("project_insights", StageTally())
        total_in = sum(t.input_tokens for t in r.stages.values())
        total_out = sum(t.output_tokens for t in r.stages.values())
        cut = sum(t.cut for t in r.stages.values())
        served = ", ".join(f"{k} {v}" for k, v in r.served_by.items()) or r.error.replace("|", "/")
        lines.append(
            f"| {r.label} | {'ok' if r.success else 'failed'} | {r.wall_s:.1f} | {r.scenes_step_s:.1f} | "
            f"{enrich.calls} | {insights.calls} | {total_in:,} | {total_out:,} | {cut} | {served} |"
        )
    split = results[0]
    enrich = split.stages.get("enrich_scenes", StageTally())
    minimum = math.ceil(enrich.output_tokens / split.ceiling) if split.ceiling else 0
    lines += [
        "",
        f"Split: {enrich.calls} `enrich_scenes` calls against a minimum of {minimum} that the "
        f"{split.ceiling:,}-token ceiling allows for the {enrich.output_tokens:,} answer tokens (target: within "
        f"10 %: **{'met' if enrich.calls <= 1.1 * minimum else 'not met'}**).",
    ]
    if len(results) > 1 and all(r.success for r in results[:2]):
        single = results[1]
        split_in = sum(t.input_tokens for t in split.stages.values())
        single_in = sum(t.input_tokens for t in single.stages.values())
        lines.append(
            f"Cost of splitting: {split_in - single_in:+,} input tokens ({(split_in / single_in - 1) * 100:+.1f} %: "
            "the instructions and schema go with every batch), the same answer tokens; the `scenes` step takes "
            f"{split.scenes_step_s:.0f} s instead of {single.scenes_step_s:.0f} s, the first batch alone and then "
            "the rest together, where one answer of the whole length is written token by token."
        )
    lines += ["", SPLIT_END]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ report


def render(
    dag: DagsterResult | None,
    fan: list[FanoutResult],
    over: OverheadResult | None,
    command: str,
    host: str,
    quick: bool,
) -> str:
    mode = "QUICK MODE (fewer repetitions; not the default run)" if quick else "default"
    lines = [
        START,
        "## Pipeline: orchestration overhead, fan-out, per-call overhead (`bench/pipeline.py`)",
        "",
        f"Command: `{command}` ({mode})  ",
        f"Machine: {host}",
        "",
    ]
    if dag is not None:
        lines += [
            "### Big Fish end to end: Dagster against the same functions called directly",
            "",
            "| path | runs | median s | min s | max s |",
            "|---|---|---|---|---|",
            "| `screenplay_pipeline` `execute_in_process`, its four ingest assets (temp instance, offline "
            f"provider mode) | "
            f"{len(dag.dagster_s)} | {statistics.median(dag.dagster_s):.3f} | {min(dag.dagster_s):.3f} | "
            f"{max(dag.dagster_s):.3f} |",
            f"| same domain functions + `AIProviderResource.run_task`, plain loop | {len(dag.direct_s)} | "
            f"{statistics.median(dag.direct_s):.3f} | {min(dag.direct_s):.3f} | {max(dag.direct_s):.3f} |",
            "",
            f"Ratio Dagster / direct: **{dag.ratio:.2f}x** ({dag.scenes} scenes; one warm-up run of each not "
            "counted). The difference is Dagster's run: run and event-log storage in SQLite, step orchestration, "
            "asset checks, and the IO manager writing each asset's artifact and reading it back in the next step "
            "(the direct path keeps everything in memory and writes nothing).",
            "",
            "Step durations of the last Dagster run, from its event log: "
            + ", ".join(f"`{step}` {ms:.0f} ms" for step, ms in dag.step_ms.items())
            + f" (sum {sum(dag.step_ms.values()):.0f} ms; the rest of the run's wall time is run set-up, "
            "launching, and event-log writes outside the steps).",
            "",
        ]
    if fan:
        lines += [
            "### Scene-level fan-out through the resilience layer",
            "",
            "| scenes N | concurrency C | latency L s | ideal ceil(N/C)*L s | through the layer: median s | "
            "x ideal | bare adapter, no layer: median s | x ideal | runs | calls per run | failed (all runs) | "
            "target <= 1.10 x ideal |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in fan:
            lines.append(
                f"| {f.scenes} | {f.concurrency} | {f.latency_s:.2f} | {f.ideal_s:.2f} | "
                f"{statistics.median(f.wall_s):.3f} | **{f.ratio:.3f}** | {statistics.median(f.bare_wall_s):.3f} | "
                f"{f.bare_ratio:.3f} | {len(f.wall_s)} | {f.calls / len(f.wall_s):.0f} | {f.failed} | "
                f"{'met' if f.ratio <= 1.10 else 'not met'} |"
            )
        lines += [
            "",
            "One `enrich_scenes` call per Big Fish scene on a thread pool of C, through `ResilientCaller` + SQLite "
            "breaker store (cold: a new store per run) and the default chain, against a healthy simulator; the "
            "*bare adapter* columns make the same calls straight to `AnthropicAdapter` with no retry, breaker or "
            "telemetry, in the same run. Where the bare column is itself far above 1.00, the client and the "
            "simulator (both Python, sharing 2 cores) cannot push N calls through in the ideal time, whatever "
            "sits in between: the layer is then measured by the gap between the two columns, not by the ideal.",
            "",
        ]
    if over is not None:
        lines += [
            "### Per-call overhead of the resilience layer",
            "",
            "| what | median us per call |",
            "|---|---|",
        ]
        lines += [f"| {what} | {us:.1f} |" for what, us in over.rows]
        met = over.loopback_own_us <= OVERHEAD_TARGET_US
        met_in_process = over.inprocess_overhead_us <= OVERHEAD_TARGET_US
        low, high = over.loopback_own_iqr_us
        lines += [
            "",
            f"**Layer overhead per call on loopback: {over.loopback_own_us:.1f} us** (median of "
            f"{over.loopback_iterations} calls; interquartile range {low:.1f}-{high:.1f} us; medians of its five "
            f"consecutive fifths {', '.join(f'{m:.1f}' for m in over.loopback_own_block_medians_us)} us): "
            "`ResilientCaller` "
            "(breaker fast path on the SQLite store, chain walk, attempt record, parse hand-off) timed around "
            "each real HTTP call, minus the adapter's own time inside it. Target <= "
            f"{OVERHEAD_TARGET_US:.0f} us: **{'met' if met else 'not met'}**. In a hot loop over an adapter that "
            f"answers at once ({over.iterations} calls, interleaved batches of 100) the same work costs "
            f"{over.inprocess_overhead_us:.1f} us ({'met' if met_in_process else 'not met'}); between real I/O "
            "calls it runs with colder caches, which is the number above. The JSONL telemetry sink adds "
            f"{over.inprocess_overhead_sink_us - over.inprocess_overhead_us:.1f} us (one `write(2)` per attempt).",
            "",
            f"Against bare httpx: medians of paired differences of interleaved calls, layer minus adapter "
            f"{over.loopback_overhead_us:.1f} us and layer + adapter minus bare httpx "
            f"{over.loopback_stack_overhead_us:.1f} us; the adapter's share is building the provider's request "
            "body and reading its answer into a `Completion`, which a bare-httpx caller does too, in its own "
            f"code. One adapter call's own spread (interquartile range) here is {over.loopback_adapter_iqr_us:.0f} "
            "us, so differences of whole calls are coarse; the subtraction inside each call is not affected.",
            "",
        ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="dagster,fanout,overhead")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--ttft", type=float, default=DEFAULT_TTFT_S, help="split part: s to first token")
    parser.add_argument("--tokens-per-second", type=float, default=DEFAULT_TOKENS_PER_S, help="split part")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",")}
    runs = 2 if args.quick else 5
    fan_runs = 1 if args.quick else 3
    iterations = 3000 if args.quick else 20000
    loop_iterations = 300 if args.quick else 5000
    path = corpus_dir() / "Big-Fish.fountain"
    if not path.exists():
        print(f"corpus not found at {path} (set CINEFORGE_CORPUS)", file=sys.stderr)
        return 2
    host = machine()
    command = "python bench/pipeline.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if "split" in parts:
        split = bench_split(path, args.ttft, args.tokens_per_second, print)
        split_section = render_split(split, args.ttft, args.tokens_per_second, command.strip(), host)
        print(split_section)
        if not args.no_write:
            write_section(split_section, SPLIT_START, SPLIT_END)
        if parts == {"split"}:
            return 0
    dag = bench_dagster(path, runs, print) if "dagster" in parts else None
    fan: list[FanoutResult] = []
    over = None
    with SimulatorProcess() as sim:
        if "fanout" in parts:
            fan.append(bench_fanout(sim, path, 16, 0.2, fan_runs, print))
            fan.append(bench_fanout(sim, path, 32, 0.2, fan_runs, print))
            fan.append(bench_fanout(sim, path, 32, 0.05, fan_runs, print))
        if "overhead" in parts:
            over = bench_overhead(sim, iterations, loop_iterations)
    section = render(dag, fan, over, command.strip(), host, args.quick)
    print(section)
    if not args.no_write:
        write_section(section, START, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
