"""``ProviderSimulator``: Anthropic, OpenAI and Gemini on one loopback HTTP server, with injected faults.

Why the stdlib ``http.server.ThreadingHTTPServer``: the faults we need are below HTTP. A connection
reset needs the raw socket (``SO_LINGER`` 0 then close, so the kernel sends RST instead of FIN), and a
timeout needs a handler that simply does not answer; ASGI servers hide the socket and answer for us.
The threaded server also gives one thread per connection, so a held (timeout) response never blocks
other clients, and it needs no dependency. HTTP/1.1 keep-alive is on, like the real endpoints, so
clients reuse pooled connections exactly as they do in production.

Routes (answers through the offline engine, ``resources.providers.offline``):

* ``POST /anthropic/v1/messages``                            (SDK/adapters base URL: ``{base}/anthropic``)
* ``POST /openai/v1/chat/completions``                       (base URL: ``{base}/openai/v1``)
* ``POST /gemini/v1beta/models/{model}:generateContent``     (base URL: ``{base}/gemini``)
* ``GET /_sim/health``, ``GET /_sim/stats``, ``POST /_sim/reset``, ``GET|PUT /_sim/faults``

Extending: ``sim.add_route(method, regex, handler)`` with ``handler(SimRequest) -> SimResponse``; use
``sim.decide_fault``/``sim.record``/``sim.wire(provider)`` to share the fault clock, the counters and
the providers' error formats. By default the simulator loads ``resources.simulator.veo`` if that module
exists and calls its ``register(sim)``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import json
import logging
import signal
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from resources.providers import offline
from resources.providers.limits import estimate_tokens, limits_for
from resources.providers.prompts import extract_task_and_input
from resources.simulator.faults import Clock, FaultInjector, FaultProfile, FaultRule
from resources.simulator.routing import RouteHandler, Router, SimRequest, SimResponse
from resources.simulator.wire import (
    WIRE_FORMATS,
    ChatCall,
    GeminiWire,
    WireFormat,
    cdn_error_page,
    garble_gzip_body,
    invalid_output_text,
    truncate_body,
)

log = logging.getLogger(__name__)

Extension = Callable[["ProviderSimulator"], None]
DEFAULT_EXTENSION_MODULES: tuple[str, ...] = ("resources.simulator.veo",)
PROVIDER_ROUTES: dict[str, tuple[str, str]] = {
    "anthropic": ("POST", r"/anthropic/v1/messages"),
    "openai": ("POST", r"/openai/v1/chat/completions"),
    "gemini": ("POST", r"/gemini/v1(?:beta)?/models/(?P<model>[^/:]+):generateContent"),
}
MAX_BODY_BYTES = 64 * 1024 * 1024


class SimulatorStats:
    """Call counts per (provider, model, outcome). Outcomes: ``ok``, a fault kind, or ``rejected``
    (the request itself was malformed/unauthenticated)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def record(self, provider: str, model: str, outcome: str) -> None:
        with self._lock:
            self._counts[(provider, model, outcome)] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
        by_provider: dict[str, dict[str, int]] = {}
        by_model: dict[str, dict[str, dict[str, int]]] = {}
        by_outcome: dict[str, int] = {}
        for (provider, model, outcome), n in sorted(counts.items()):
            prov = by_provider.setdefault(provider, {"total": 0})
            prov["total"] += n
            prov[outcome] = prov.get(outcome, 0) + n
            per_model = by_model.setdefault(provider, {}).setdefault(model, {})
            per_model[outcome] = per_model.get(outcome, 0) + n
            by_outcome[outcome] = by_outcome.get(outcome, 0) + n
        return {
            "total": sum(counts.values()),
            "by_provider": by_provider,
            "by_model": by_model,
            "by_outcome": by_outcome,
        }


class _SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 refuses bursts of concurrent clients (benchmarks run 16+).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: ProviderSimulator) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or drop the connection are the point of this server, not errors.
        log.debug("connection from %s ended abruptly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, Nagle + delayed ACK adds ~40 ms to every small keep-alive response.
    disable_nagle_algorithm = True
    server_version = "cineforge-sim/1"
    sys_version = ""
    server: _SimHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from http.server
        if self.server.simulator.log_requests:
            log.info("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        request = SimRequest(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self._send(self.server.simulator.handle(request))

    def _send(self, response: SimResponse) -> None:
        simulator = self.server.simulator
        if response.action == "reset":
            self._reset_connection()
            return
        if response.action == "hold" and simulator.wait(response.hold_s):
            self.close_connection = True  # simulator stopping: drop the held client
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            self.close_connection = True  # the client gave up (e.g. after its own timeout)

    def _reset_connection(self) -> None:
        """Abort the TCP connection: linger 0 makes close() send RST instead of an orderly FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.close()


class ProviderSimulator:
    """Loopback HTTP server speaking the three providers' wire formats, with seedable fault profiles.

    Use as a context manager (serves in a background thread) or call ``start``/``stop``. The port is
    bound in the constructor, so ``base_url`` is known before ``start``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        profile: str | FaultProfile = "none",
        seed: int = 0,
        latency_s: float = 0.0,
        *,
        output_tokens_per_s: float | None = None,
        clock: Clock = time.monotonic,
        extensions: Iterable[Extension] | None = None,
        log_requests: bool = False,
    ) -> None:
        self.latency_s = latency_s
        # Pacing: a model writes its answer at a rate, so a long answer takes longer (None: no pacing).
        self.output_tokens_per_s = output_tokens_per_s
        self.log_requests = log_requests
        self.clock = clock
        self.faults = FaultInjector(profile, seed=seed, clock=clock)
        self.stats_counter = SimulatorStats()
        self.router = Router()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serving_in_caller = threading.Event()
        self._safety_variant = itertools.count()
        self._variant_lock = threading.Lock()
        self._server = _SimHTTPServer((host, port), self)
        self._add_builtin_routes()
        for extension in self._resolve_extensions(extensions):
            extension(self)

    # ------------------------------------------------------------ lifecycle

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def anthropic_url(self) -> str:
        return f"{self.base_url}/anthropic"

    @property
    def openai_url(self) -> str:
        return f"{self.base_url}/openai/v1"

    @property
    def gemini_url(self) -> str:
        return f"{self.base_url}/gemini"

    def start(self) -> ProviderSimulator:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="provider-simulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI); returns after ``stop`` from another thread."""
        self._serving_in_caller.set()
        try:
            self._server.serve_forever(poll_interval=0.1)
        finally:
            self._serving_in_caller.clear()

    def serve_until_signalled(self) -> None:
        """Serve in the calling thread until SIGTERM or SIGINT (standalone entry points)."""

        def stop(signum: int, frame: FrameType | None) -> None:
            # shutdown() blocks until serve_forever returns, so it must not run in the serving thread.
            threading.Thread(target=self.stop, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.serve_forever()

    def stop(self) -> None:
        self._stop.set()  # releases held (timeout) responses and latency waits
        if self._thread is not None or self._serving_in_caller.is_set():
            self._server.shutdown()  # blocks until serve_forever returns: never call from the serving thread
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ProviderSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, seconds: float) -> bool:
        """Block ``seconds`` (real time) unless the simulator stops first; True when it stopped."""
        if seconds <= 0:
            return self._stop.is_set()
        return self._stop.wait(seconds)

    # ------------------------------------------------------------ shared state for handlers

    def stats(self) -> dict[str, Any]:
        snapshot = self.stats_counter.snapshot()
        snapshot["profile"] = self.faults.profile.name
        snapshot["elapsed_s"] = round(self.faults.elapsed(), 3)
        return snapshot

    def reset(self) -> None:
        """Zero the counters and restart the fault clock and random stream."""
        self.stats_counter.reset()
        self.faults.reset()

    def set_profile(self, profile: str | FaultProfile, *, seed: int | None = None) -> FaultProfile:
        return self.faults.set_profile(profile, seed=seed)

    def decide_fault(self, provider: str, model: str, task: str | None = None) -> FaultRule | None:
        return self.faults.decide(provider, model, task)

    def record(self, provider: str, model: str, outcome: str) -> None:
        self.stats_counter.record(provider, model, outcome)

    def wire(self, provider: str) -> WireFormat:
        return WIRE_FORMATS[provider]

    def add_route(self, method: str, pattern: str, handler: RouteHandler, *, name: str = "") -> None:
        """Register an extra endpoint; ``pattern`` is a regex matched against the whole path."""
        self.router.add(method, pattern, handler, name=name)

    # ------------------------------------------------------------ dispatch

    def handle(self, request: SimRequest) -> SimResponse:
        found = self.router.match(request.method, request.path)
        if found is None:
            allowed = self.router.allowed_methods(request.path)
            if allowed:
                return SimResponse.json(
                    405, {"error": {"message": "method not allowed"}}, {"allow": ", ".join(allowed)}
                )
            return SimResponse.json(
                404, {"error": {"message": f"no route for {request.method} {request.path}"}}
            )
        route, params = found
        try:
            return route.handler(replace(request, params=params))
        except Exception as exc:  # a simulator bug must show up as a loud 500, not a hung client
            log.exception("simulator route %s failed", route.name)
            return SimResponse.json(500, {"error": {"type": "simulator_error", "message": repr(exc)}})

    def _resolve_extensions(self, extensions: Iterable[Extension] | None) -> list[Extension]:
        if extensions is not None:
            return list(extensions)
        found: list[Extension] = []
        for module_name in DEFAULT_EXTENSION_MODULES:
            if importlib.util.find_spec(module_name) is None:
                continue
            register = getattr(importlib.import_module(module_name), "register", None)
            if callable(register):
                found.append(register)
        return found

    def _add_builtin_routes(self) -> None:
        for provider, (method, pattern) in PROVIDER_ROUTES.items():
            self.add_route(method, pattern, self._chat_handler(WIRE_FORMATS[provider]), name=provider)
        self.add_route("GET", r"/_sim/health", self._health, name="health")
        self.add_route("GET", r"/_sim/stats", lambda _: SimResponse.json(200, self.stats()), name="stats")
        self.add_route("POST", r"/_sim/reset", self._reset_route, name="reset")
        self.add_route("GET", r"/_sim/faults", self._get_faults, name="faults")
        self.add_route("PUT", r"/_sim/faults", self._put_faults, name="set-faults")

    # ------------------------------------------------------------ control routes

    def _health(self, _: SimRequest) -> SimResponse:
        return SimResponse.json(
            200,
            {
                "status": "ok",
                "profile": self.faults.profile.name,
                "base_url": self.base_url,
                "providers": {
                    "anthropic": self.anthropic_url,
                    "openai": self.openai_url,
                    "gemini": self.gemini_url,
                },
                "routes": [f"{r.method} {r.name}" for r in self.router.routes()],
            },
        )

    def _reset_route(self, _: SimRequest) -> SimResponse:
        self.reset()
        return SimResponse.json(200, {"status": "reset", "profile": self.faults.profile.name})

    def _get_faults(self, _: SimRequest) -> SimResponse:
        return SimResponse.json(
            200,
            {
                "profile": self.faults.profile.model_dump(mode="json"),
                "seed": self.faults.seed,
                "latency_s": self.latency_s,
                "output_tokens_per_s": self.output_tokens_per_s,
            },
        )

    def _put_faults(self, request: SimRequest) -> SimResponse:
        """Body: ``{"profile": "overload-storm:duration=5", "seed": 1, "latency_s": 0.05}`` or a full
        ``FaultProfile`` object (``{"name": ..., "rules": [...]}``), or the spec as plain text."""
        try:
            raw = request.json() if request.body.strip().startswith(b"{") else request.body.decode().strip()
            seed = None
            if isinstance(raw, dict) and "rules" in raw:
                spec: str | FaultProfile = FaultProfile.model_validate(raw)
            elif isinstance(raw, dict):
                spec = str(raw.get("profile", "none"))
                seed = int(raw["seed"]) if raw.get("seed") is not None else None
                if raw.get("latency_s") is not None:
                    self.latency_s = float(raw["latency_s"])
                if "output_tokens_per_s" in raw:
                    rate = raw["output_tokens_per_s"]
                    self.output_tokens_per_s = float(rate) if rate else None
            else:
                spec = raw or "none"
            profile = self.set_profile(spec, seed=seed)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            return SimResponse.json(400, {"error": {"message": str(exc)}})
        return SimResponse.json(200, {"profile": profile.model_dump(mode="json"), "seed": self.faults.seed})

    # ------------------------------------------------------------ provider routes

    def _chat_handler(self, wire: WireFormat) -> RouteHandler:
        def handle(request: SimRequest) -> SimResponse:
            # ``latency_s`` is the time from the request's arrival to its answer, and the simulator's own
            # work (parsing, the offline engine's answer) happens inside it, as a real provider's compute
            # is part of its latency. Sleeping the full latency *after* that work would make each call's
            # latency depend on how many requests share the simulator's GIL at that moment, and a fan-out
            # benchmark would measure the simulator instead of the client.
            arrived = time.monotonic()
            parsed = wire.parse(request)
            if isinstance(parsed, SimResponse):
                self.record(wire.provider, request.params.get("model", "unknown"), "rejected")
                return parsed
            limits = limits_for(wire.provider, parsed.model)
            if parsed.max_tokens is None:
                parsed = replace(parsed, max_tokens=limits.max_output_tokens)
            refused = wire.refuse_beyond_limits(parsed, limits, wire.new_request_id())
            if refused is not None:
                self.record(wire.provider, parsed.model, "beyond_limits")
                return refused
            task, _ = extract_task_and_input(parsed.system, parsed.prompt)
            rule = self.decide_fault(wire.provider, parsed.model, task)
            self.record(wire.provider, parsed.model, rule.kind if rule else "ok")
            response, output_tokens = self._answer(wire, parsed, task, rule)
            self.wait(self.answer_seconds(output_tokens) - (time.monotonic() - arrived))
            return response

        return handle

    def answer_seconds(self, output_tokens: int) -> float:
        """How long an answer of ``output_tokens`` takes from the request's arrival: ``latency_s``, plus the
        tokens at ``output_tokens_per_s`` when pacing is on."""
        rate = self.output_tokens_per_s
        return self.latency_s + (output_tokens / rate if rate else 0.0)

    def _answer(
        self, wire: WireFormat, call: ChatCall, task: str | None, rule: FaultRule | None
    ) -> tuple[SimResponse, int]:
        """The answer and the output tokens it carries (what pacing waits for; 0 for a fault)."""
        request_id = wire.new_request_id()
        if rule is None:
            text = self._model_text(call)
            return wire.success(call, text, request_id), min(estimate_tokens(text), call.ceiling())
        response = self._fault_answer(wire, call, task, rule, request_id)
        if rule.headers:
            replaced = {name.lower() for name in rule.headers}
            response.headers = [h for h in response.headers if h[0].lower() not in replaced]
            response.headers += list(rule.headers.items())
        return response, 0

    def _fault_answer(
        self, wire: WireFormat, call: ChatCall, task: str | None, rule: FaultRule, request_id: str
    ) -> SimResponse:
        kind = rule.kind
        if kind in (
            "overloaded",
            "rate_limit",
            "server_error",
            "auth",
            "bad_request",
            "overloaded_no_retry",
            "daily_quota",
            "billing",
            "token_rate_limit",
            "not_found",
        ):
            return wire.error(kind, call.model, request_id, rule.retry_after)
        if kind == "proxy_html":
            return cdn_error_page(502)
        if kind == "echo_key":
            return wire.echo_key(call.api_key, request_id)
        if kind == "timeout":
            return wire.success(call, self._model_text(call), request_id).held(rule.hold_s)
        if kind == "reset":
            return SimResponse.reset()
        if kind == "garbled_gzip":
            return garble_gzip_body(wire.success(call, self._model_text(call), request_id))
        if kind == "malformed_json":
            return truncate_body(wire.success(call, self._model_text(call), request_id))
        if kind == "safety":
            with self._variant_lock:
                variant = next(self._safety_variant)
            return wire.safety(call, request_id, variant)
        if kind == "reasoning":
            return wire.reasoning(call, self._model_text(call), request_id)
        if kind == "prompt_cached":
            return wire.prompt_cached(call, self._model_text(call), request_id)
        if kind == "window_exhausted":
            return wire.window_exhausted(call, self._model_text(call), request_id)
        if kind == "candidate_stopped":
            if isinstance(wire, GeminiWire):
                return wire.blocked_candidate(call, request_id, rule.reason)
            return wire.success(call, self._model_text(call), request_id)
        if kind == "temperature_loop":
            text = self._model_text(call)
            if isinstance(wire, GeminiWire) and wire.loops_at(call):
                return wire.success(call, (text + "\n") * (call.ceiling() * 4 // max(1, len(text)) + 2), request_id)
            return wire.success(call, text, request_id)
        if kind == "request_over_tpm":
            return wire.request_over_rate_limit(call, request_id)
        if kind == "invalid_output":
            return wire.success(call, invalid_output_text(task), request_id)
        raise ValueError(f"unhandled fault kind {kind!r}")

    @staticmethod
    def _model_text(call: ChatCall) -> str:
        _, result = offline.answer_prompt(call.system, call.prompt)
        return json.dumps(result, ensure_ascii=False)
