"""Hedged calls: when a call is slow, race the same request on the next healthy provider; first valid wins.

Why: a call that hangs costs the whole per-call timeout before any retry or fallback starts, which is what
sets a stage's tail latency when a few percent of calls time out. Polly and Envoy hedge; the rules here:

* **When.** After ``hedge_after``: a fixed delay, or a quantile (default p95) of the model's recent
  latencies for the stage, learned in this process (``LatencyTracker``), never later than ``timeout_share``
  (half) of the call's own timeout, and clamped to ``[min_after_seconds, max_after_seconds]``. Until
  ``min_samples`` latencies of the model are known, the quantile of every model's latencies for the stage
  stands in (a fallback model, or the hedge's own model when the hedge is late itself, is called too
  rarely to learn its own: the task's size is the stage's whatever the model); until even those are
  known the delay is that half of the timeout: a process that just started knows nothing of the model,
  but a call that has used half its timeout is late by the operator's own measure, and waiting the other
  half for a hung call is what hedging is for. The same bound keeps a few slow first calls (a process's
  first imports, a contended GIL) from pushing the learned quantile past the timeout, where no call would
  ever be hedged. ``min_samples`` defaults to 20: the nearest-rank p95 of fewer samples is their maximum,
  so one slow call would set it. A latency is counted from when the request went out, not from before
  its client was leased.
* **How often.** At most ``max_share`` of calls (default 10 %) are hedged (``HedgeQuota``, a token bucket
  of 10 filled by every call): a brownout must not double the fleet's load.
* **Where to.** The executor picks the next entry of the chain whose provider is another one, is not
  excluded for this request, and whose breaker grants a permit (never an open breaker); the hedge counts
  against the stage's attempt budget like any call. A hedge that fails, or is late itself, while the
  race still has a call out is followed by the next one (``ResilientCaller._settle_race``).
* **Cancelling the loser.** Each racing call runs on a pool thread with an httpx client of its own
  (``CancellableClients``); the loser's sockets are shut down (``shutdown(SHUT_RDWR)``: closing the client
  alone does not wake a thread blocked in ``recv``, and the peer would not see the connection end until the
  blocked read timed out) and its client is discarded, so the provider sees the connection close at once.

Hand-written: no Python HTTP or resilience library races two calls and closes the loser's connection
(tenacity and httpx-retries retry one callable in sequence). The sockets are found through httpcore's
public ``trace`` request extension (``connection.connect_tcp.complete`` hands over the network stream),
set by a request event hook, so no httpx internals are touched.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import certifi
import httpx

from resources.providers.base import ProviderAdapter
from resources.resilience.latency_store import LATENCY_TABLE, FleetLatencies
from resources.resilience.record_table import record_store_from_url

R = TypeVar("R")

_SAMPLES = 256  # latencies kept per (provider, model, stage): enough for a p95 that follows the last minutes


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """When and how often to hedge (see the module docstring). ``after_seconds=None``: the learned quantile."""

    after_seconds: float | None = None
    quantile: float = 0.95
    min_after_seconds: float = 0.05
    max_after_seconds: float = 30.0
    min_samples: int = 20
    max_share: float = 0.1
    timeout_share: float = 0.5

    def __post_init__(self) -> None:
        if self.after_seconds is not None and self.after_seconds < 0:
            raise ValueError("after_seconds must be >= 0")
        if not 0.0 < self.quantile < 1.0:
            raise ValueError("quantile must be in (0, 1)")
        if not 0.0 <= self.min_after_seconds <= self.max_after_seconds:
            raise ValueError("need 0 <= min_after_seconds <= max_after_seconds")
        if self.min_samples < 1:
            raise ValueError("min_samples must be >= 1")
        if not 0.0 <= self.max_share <= 1.0:
            raise ValueError("max_share must be in [0, 1]")
        if not 0.0 < self.timeout_share <= 1.0:
            raise ValueError("timeout_share must be in (0, 1]")


def stage_key(key: tuple[str, str, str]) -> tuple[str, str, str]:
    """The key under which every model's latencies for ``key``'s stage are also kept."""
    return ("", "", key[2])


class LatencyTracker:
    """Recent successful-call latencies per (provider, model, stage), for this process; each also goes into
    its stage's pool (``stage_key``), which stands in for a model without enough history of its own. With
    ``fleet``, every latency is also shared with the fleet, and a key this process knows too few latencies
    of is answered from the fleet's (``latency_store.py``)."""

    def __init__(self, samples: int = _SAMPLES, fleet: FleetLatencies | None = None) -> None:
        self._samples = samples
        self._latencies: dict[tuple[str, str, str], deque[float]] = {}
        self._lock = threading.Lock()
        self.fleet = fleet

    def observe(self, key: tuple[str, str, str], seconds: float) -> None:
        with self._lock:
            for each in (key, stage_key(key)):
                window = self._latencies.get(each)
                if window is None:
                    window = self._latencies[each] = deque(maxlen=self._samples)
                window.append(seconds)
        if self.fleet is not None:
            self.fleet.note(key, seconds)
            self.fleet.note(stage_key(key), seconds)

    def quantile(self, key: tuple[str, str, str], q: float, min_samples: int) -> float | None:
        """The ``q`` quantile (nearest rank) of the kept latencies, or None with fewer than ``min_samples``
        (this process's, else the fleet's)."""
        with self._lock:
            window = self._latencies.get(key)
            known = list(window) if window is not None else []
        if len(known) < min_samples and self.fleet is not None:
            known = self.fleet.samples(key)
        if len(known) < min_samples:
            return None
        ordered = sorted(known)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def flush(self) -> None:
        """Write this process's unwritten latencies to the fleet's store (no-op without one)."""
        if self.fleet is not None:
            self.fleet.flush()


def hedge_delay(
    policy: HedgePolicy, tracker: LatencyTracker, key: tuple[str, str, str], timeout: float | None = None
) -> float:
    """How long to wait for ``key``'s call (timing out after ``timeout`` s; None: no bound of its own) before
    hedging it: the fixed delay, else the learned quantile, never past ``timeout_share`` of the timeout and
    that share until the quantile is known (see the module docstring)."""
    if policy.after_seconds is not None:
        return policy.after_seconds
    latest = policy.max_after_seconds
    if timeout is not None:
        latest = min(latest, policy.timeout_share * timeout)
    learned = tracker.quantile(key, policy.quantile, policy.min_samples)
    if learned is None:
        learned = tracker.quantile(stage_key(key), policy.quantile, policy.min_samples)
    return max(policy.min_after_seconds, latest if learned is None else min(latest, learned))


class HedgeQuota:
    """At most ``share`` of calls hedged: each call adds ``share`` of a token (up to ``burst``), a hedge takes
    one. A token bucket rather than a ratio of totals, so a quiet hour cannot save up a storm; ``burst`` lets
    the slow calls that come together all be hedged. Hung calls do come together: at 5 % of calls hung, the
    chaos benchmark's traces showed clusters of 4-5 hedges within a few hundred ms, and a 5-token bucket,
    drained by them while its 10 % refill barely outpaced the need, left the next hung call to wait out its
    whole timeout (1 s against a 0.2 s call) in two runs of three; hence 10. The bucket starts full: a
    process that just started is no more of a storm risk than one after a quiet spell, and a short-lived one
    (a Dagster step in its own process makes a handful of calls) would otherwise hedge only its first slow
    call."""

    def __init__(self, share: float, burst: float = 10.0) -> None:
        self.share = share
        self.burst = max(1.0, burst)
        self._tokens = self.burst if share > 0 else 0.0
        self._lock = threading.Lock()

    def note_call(self) -> None:
        with self._lock:
            self._tokens = min(self.burst, self._tokens + self.share)

    def try_take(self) -> bool:
        with self._lock:
            if self._tokens < 1.0 - 1e-9:  # ten additions of 0.1 make 0.999...9
                return False
            self._tokens -= 1.0
            return True


# ------------------------------------------------------------------------------------ cancellable calls


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every lease: building one loads the CA bundle (tens of ms of CPU), which a fresh
    client per racing call would otherwise pay each time."""
    return ssl.create_default_context(cafile=certifi.where())


class _Lease:
    """One client (and the adapter bound to it) lent to one call at a time; knows the sockets it opened."""

    def __init__(self, provider: str, make_adapter: Callable[[str, httpx.Client], ProviderAdapter]) -> None:
        self.provider = provider
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.cancelled = False
        self.client = httpx.Client(
            transport=httpx.HTTPTransport(retries=0, verify=_tls_context()),
            follow_redirects=False,
            timeout=None,
            event_hooks={"request": [self._trace_request]},
        )
        self.adapter = make_adapter(provider, self.client)

    def _trace_request(self, request: httpx.Request) -> None:
        request.extensions["trace"] = self._trace

    def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        # TLS wraps (and detaches) the TCP socket: the socket to shut down is then the TLS stream's.
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sockets = [s for s in self._sockets if s.fileno() != -1]
                    self._sockets.append(sock)

    def cancel(self) -> None:
        """Abort the call in flight: shut its sockets down (wakes the blocked read, the peer sees the close)."""
        self.cancelled = True
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


class CancellableClients:
    """Leases of per-call clients per provider; a lease that finished normally is kept for reuse (its
    keep-alive connection included), a cancelled one is closed."""

    def __init__(self, make_adapter: Callable[[str, httpx.Client], ProviderAdapter], keep: int = 32) -> None:
        self._make_adapter = make_adapter
        self._keep = keep
        self._idle: dict[str, list[_Lease]] = {}
        self._lock = threading.Lock()

    def lease(self, provider: str) -> _Lease:
        with self._lock:
            idle = self._idle.get(provider)
            if idle:
                return idle.pop()
        return _Lease(provider, self._make_adapter)

    def give_back(self, lease: _Lease) -> None:
        if lease.cancelled:
            lease.close()
            return
        with self._lock:
            idle = self._idle.setdefault(lease.provider, [])
            if len(idle) < self._keep:
                idle.append(lease)
                return
        lease.close()

    def close(self) -> None:
        with self._lock:
            leases = [lease for idle in self._idle.values() for lease in idle]
            self._idle.clear()
        for lease in leases:
            lease.close()


# ------------------------------------------------------------------------------------------------ race


@dataclass(slots=True)
class Entrant(Generic[R]):
    """One racing call: its lease, its future, and (once done) its result or error."""

    lease: _Lease
    future: Future[R]
    started: float


@dataclass(slots=True)
class RaceResult(Generic[R]):
    """How a race ended. ``winner`` is ``"primary"``, ``"hedge"`` or None (no hedge was sent)."""

    primary: Entrant[R]
    hedge: Entrant[R] | None = None
    winner: str | None = None
    losers: list[Entrant[R]] = field(default_factory=list)


_POOL_LOCK = threading.Lock()
_POOL: tuple[int, ThreadPoolExecutor] | None = None


def race_pool() -> ThreadPoolExecutor:
    """The process's threads for racing calls (two per hedged call in flight; idle threads are reused). A
    forked child gets its own: the parent's threads do not exist in it."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=256, thread_name_prefix="cineforge-hedge"))
        return _POOL[1]


class Hedger:
    """Races a slow call against a hedge (see the module docstring); the executor decides where the hedge goes.

    ``tracker`` and ``quota`` default to this process's shared ones (latencies are learned per process).
    ``clock`` must be the executor's (a hedge's latency is its clock's now minus the entrant's start).
    """

    def __init__(
        self,
        policy: HedgePolicy,
        clients: CancellableClients,
        *,
        stages: frozenset[str] | None = None,
        tracker: LatencyTracker | None = None,
        quota: HedgeQuota | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.clients = clients
        self.stages = stages
        self.tracker = tracker if tracker is not None else PROCESS_TRACKER
        self.quota = quota if quota is not None else process_quota(policy.max_share)
        self._clock = clock

    def hedges(self, stage: str) -> bool:
        return self.stages is None or stage in self.stages

    def delay(self, provider: str, model: str, stage: str, timeout: float | None = None) -> float:
        return hedge_delay(self.policy, self.tracker, (provider, model, stage), timeout)

    def start(self, provider: str, call: Callable[[ProviderAdapter], R]) -> Entrant[R]:
        lease = self.clients.lease(provider)
        return Entrant(lease, race_pool().submit(call, lease.adapter), self._clock())

    def finish(self, entrant: Entrant[R]) -> None:
        """Hand the entrant's client back once its call has returned (cancelled ones are closed)."""
        entrant.future.add_done_callback(lambda _f: self.clients.give_back(entrant.lease))

    def cancel(self, entrant: Entrant[R]) -> None:
        entrant.lease.cancel()
        self.finish(entrant)

    def close(self) -> None:
        """Close the idle clients and write the latencies learned to the fleet's store."""
        self.clients.close()
        self.tracker.flush()


PROCESS_TRACKER = LatencyTracker()
_FLEET_TRACKERS: dict[tuple[int, str, str], LatencyTracker] = {}


def fleet_tracker(store_url: str, scope: str) -> LatencyTracker:
    """This process's tracker for ``scope``, sharing latencies through the store ``store_url`` names (the
    breakers'); one per process, so callers built per call keep what was learned."""
    key = (os.getpid(), store_url, scope)
    with _POOL_LOCK:
        tracker = _FLEET_TRACKERS.get(key)
        if tracker is None:
            store = record_store_from_url(store_url, LATENCY_TABLE, "latency")
            tracker = _FLEET_TRACKERS[key] = LatencyTracker(fleet=FleetLatencies(store, scope))
        return tracker
_QUOTAS: dict[float, HedgeQuota] = {}


def process_quota(share: float) -> HedgeQuota:
    """This process's hedge quota for ``share`` (callers built per call, like the resource's, share it)."""
    with _POOL_LOCK:
        quota = _QUOTAS.get(share)
        if quota is None:
            quota = _QUOTAS[share] = HedgeQuota(share)
        return quota
