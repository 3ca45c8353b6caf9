"""The provider simulator as the benchmarks run it: a separate process, plus a per-request trace.

    .venv/bin/python -m bench.simserver [--port 0]      # first stdout line: the base URL

Why a separate process: the simulator's threads would otherwise share a GIL with the contender they
are measuring. Why a subclass: ``/_sim/stats`` counts calls per (provider, model, outcome), which is what
"calls to the down provider, across all worker processes" needs, but "retries of a permanent error" needs
to know which *request* each call belonged to. Every benchmark request carries a tag ``BENCHREQ-<n>`` in
its prompt, whoever sends it (our adapters, LiteLLM, ...); the trace records (request, provider, model,
outcome, arrival) per call, server side, so every contender is counted by the same code; arrival is
seconds since the last reset, taken when the request is read (before the simulated latency).
``GET /_bench/trace`` returns it; ``POST /_sim/reset`` clears it with the counters.

Two socket settings are changed for the benchmark process only (both are reported to the simulator's
owner as fixes to make there):

* ``TCP_NODELAY`` on accepted connections. ``http.server`` writes the headers and the body in two
  ``send`` calls; with Nagle on, the body waits for the client's delayed ACK (40 ms on Linux), which put
  a ~44 ms floor under every loopback call (measured: 45 ms -> 1.5 ms per call).
* a listen backlog of 128 instead of ``socketserver``'s 5, so 16 clients connecting at the same instant
  are not dropped into a 1 s SYN retransmit.
"""

from __future__ import annotations

import argparse
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from resources.simulator import server as sim_server
from resources.simulator.routing import SimRequest, SimResponse
from resources.simulator.server import ProviderSimulator

REQUEST_TAG = re.compile(rb"BENCHREQ-(\d+)")
sim_server._Handler.disable_nagle_algorithm = True  # now the simulator's own default too
sim_server._SimHTTPServer.request_queue_size = 128


def request_tag(number: int) -> str:
    """The tag a benchmark request carries in its prompt so the trace can attribute calls to it."""
    return f"BENCHREQ-{number:05d}"


class TracingSimulator(ProviderSimulator):
    """``ProviderSimulator`` that also records (request number, provider, model, outcome, arrival) per call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._current = threading.local()
        self._trace: list[tuple[int, str, str, str, float]] = []
        self._trace_lock = threading.Lock()
        self._trace_epoch = time.monotonic()
        super().__init__(*args, **kwargs)
        self.add_route("GET", r"/_bench/trace", self._trace_route, name="bench-trace")

    def handle(self, request: SimRequest) -> SimResponse:
        match = REQUEST_TAG.search(request.body)
        self._current.number = int(match.group(1)) if match else None
        try:
            return super().handle(request)
        finally:
            self._current.number = None

    def record(self, provider: str, model: str, outcome: str) -> None:
        super().record(provider, model, outcome)
        number = getattr(self._current, "number", None)
        if number is not None:
            with self._trace_lock:
                self._trace.append((number, provider, model, outcome, time.monotonic() - self._trace_epoch))

    def reset(self) -> None:
        with self._trace_lock:
            self._trace.clear()
            self._trace_epoch = time.monotonic()
        super().reset()

    def trace(self) -> list[tuple[int, str, str, str, float]]:
        with self._trace_lock:
            return list(self._trace)

    def _trace_route(self, _: SimRequest) -> SimResponse:
        return SimResponse.json(200, {"calls": [list(row) for row in self.trace()]})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    simulator = TracingSimulator(args.host, args.port, latency_s=args.latency, extensions=())
    print(simulator.base_url, flush=True)

    simulator.serve_until_signalled()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
