"""Hedged calls: when a call is slow, race the same request on the next healthy provider; first valid wins.

Why: a call that hangs costs the whole per-call timeout before any retry or fallback starts, which is what
sets a stage's tail latency when a few percent of calls time out. Polly and Envoy hedge; the rules here:

* **When.** After ``hedge_after``: a fixed delay, or a quantile (default p95) of the model's recent
  latencies for the stage (``LatencyTracker``; and at least ``over_median`` (1.1) times their median, so
  that narrow latencies' jitter is not hedged), never later than ``timeout_share``
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
* **Cancelling the loser.** Each racing call has an httpx client of its own (``CancellableClients``): the
  slow-call candidate runs on the caller's thread (``Hedger.run_inline``; one timer thread per process,
  ``HedgeTimer``, starts the race on a pool thread only once it is late), a hedge on a pool thread; the loser's
  sockets are shut down (``shutdown(SHUT_RDWR)``: closing the client
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
    # A call is late only once it is also this much slower than the median call: where latencies are
    # narrow (0.200-0.210 s) the p95 is a few ms above a typical call, and hedging on that jitter spent the
    # hedge quota on calls about to answer (chaos scenario 3, one process: 1 run in 3 left a hung call to
    # wait out its whole timeout because the quota had gone to them). 1.1 rather than more: every hung call
    # waits the margin too (1.25 cost 45 ms a hedged request, and scenario 3 0.05x oracle in completion).
    over_median: float = 1.1

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
        if self.over_median < 1.0:
            raise ValueError("over_median must be >= 1")


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
        # key -> latencies observed so far; (key, q) -> (that count when computed, the quantile): a hedged
        # call asks for its delay every time, and sorting 256 latencies per call cost more than the rest of
        # its hedging bookkeeping; a quantile is recomputed once 1/32 of the window is new.
        self._observed: dict[tuple[str, str, str], int] = {}
        self._computed: dict[tuple[tuple[str, str, str], float], tuple[int, float]] = {}
        self._lock = threading.Lock()
        self.fleet = fleet

    def observe(self, key: tuple[str, str, str], seconds: float) -> None:
        with self._lock:
            for each in (key, stage_key(key)):
                window = self._latencies.get(each)
                if window is None:
                    window = self._latencies[each] = deque(maxlen=self._samples)
                window.append(seconds)
                self._observed[each] = self._observed.get(each, 0) + 1
        if self.fleet is not None:
            self.fleet.note(key, seconds)
            self.fleet.note(stage_key(key), seconds)

    def quantile(self, key: tuple[str, str, str], q: float, min_samples: int) -> float | None:
        """The ``q`` quantile (nearest rank) of the kept latencies, or None with fewer than ``min_samples``
        (this process's, else the fleet's)."""
        with self._lock:
            window = self._latencies.get(key)
            size = len(window) if window is not None else 0
            if window is not None and size >= min_samples:
                observed = self._observed[key]
                computed = self._computed.get((key, q))
                if computed is not None and observed - computed[0] < max(1, size // 32):
                    return computed[1]
                value = _nearest_rank(sorted(window), q)
                self._computed[(key, q)] = (observed, value)
                return value
        known = self.fleet.samples(key) if self.fleet is not None else []
        return _nearest_rank(sorted(known), q) if len(known) >= min_samples else None

    def flush(self) -> None:
        """Write this process's unwritten latencies to the fleet's store (no-op without one)."""
        if self.fleet is not None:
            self.fleet.flush()


def _nearest_rank(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


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
    known = key
    learned = tracker.quantile(key, policy.quantile, policy.min_samples)
    if learned is None:
        known = stage_key(key)
        learned = tracker.quantile(known, policy.quantile, policy.min_samples)
    if learned is not None:
        median = tracker.quantile(known, 0.5, policy.min_samples)
        learned = max(learned, policy.over_median * median) if median is not None else learned
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


class Armed:
    """A slow call's alarm: ``on_late(entrant)`` runs on a race-pool thread once the delay passes, unless
    ``disarm`` came first; the two are decided under one lock, so exactly one of them wins. The call's
    future (and the alarm's own) are made only when it fires: the calls that answer in time need neither."""

    def __init__(self, entrant: Entrant[Any], on_late: Callable[[Entrant[Any]], Any], when: float, timer: HedgeTimer):
        self.when = when
        self.entrant = entrant
        self.future: Future[Any] = _NOT_RACED
        self._on_late = on_late
        self._timer = timer
        self._lock = threading.Lock()
        self._state = "armed"

    def disarm(self) -> bool:
        """True if the alarm will never fire (the call answered in time); False if it fired already."""
        with self._lock:
            if self._state != "armed":
                return False
            self._state = "disarmed"
        self._timer.forget(self)
        return True

    def try_fire(self) -> bool:
        with self._lock:
            if self._state != "armed":
                return False
            self._state = "fired"
            self.future, self.entrant.future = Future(), Future()
            return True

    def run(self) -> None:
        try:
            self.future.set_result(self._on_late(self.entrant))
        except BaseException as exc:  # handed to the caller waiting in result()
            self.future.set_exception(exc)

    def result(self) -> Any:
        """What ``on_late`` returned (or raised); waits for it. Only for an alarm that fired (``disarm``
        answered False): before, there is nothing to wait for."""
        if self.future is _NOT_RACED:
            raise RuntimeError("the alarm has not fired")
        return self.future.result()


# The future of a call whose alarm has not fired: nothing waits on it or sets it.
_NOT_RACED: Future[Any] = Future()


@dataclass(slots=True)
class InlineCall(Generic[R]):
    """A slow-call candidate run on the caller's thread: its answer or error, and the alarm if it fired
    (then the race owns the outcome, and the call's answer is in ``entrant.future``)."""

    entrant: Entrant[R]
    fired: Armed | None
    result: R | None = None
    error: BaseException | None = None


class HedgeTimer:
    """One thread per process that fires the alarms of slow calls (``Armed``) when their hedge delay passes.

    Why a thread of its own: a hedged stage's call runs on the caller's thread, so nothing else would notice
    it is late; running every call on a pool thread instead (the caller only waiting) cost two thread
    switches per call, ~130-300 us on this project's 2-core machines, for the few calls in ten that are ever
    hedged. The thread sleeps until the earliest armed alarm: under steady traffic it wakes about once per
    hedge delay, not once per call (an alarm disarmed before it is due is only forgotten), and arming wakes
    it only when the new alarm is due before the one it sleeps for. A forked child gets its own thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, Armed] = {}
        self._target = math.inf
        self._pid = 0

    def arm(self, delay: float, entrant: Entrant[Any], on_late: Callable[[Entrant[Any]], Any]) -> Armed:
        armed = Armed(entrant, on_late, time.monotonic() + delay, self)
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: its parent's thread is not here
                self._pid, self._armed, self._target = os.getpid(), {}, math.inf
                threading.Thread(target=self._loop, name="cineforge-hedge-timer", daemon=True).start()
            self._armed[id(armed)] = armed
            if armed.when < self._target:
                self._target = armed.when
                self._cond.notify()
        return armed

    def forget(self, armed: Armed) -> None:
        with self._cond:
            self._armed.pop(id(armed), None)

    def _loop(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for armed in [a for a in self._armed.values() if a.when <= now]:
                    del self._armed[id(armed)]
                    if armed.try_fire():
                        race_pool().submit(armed.run)
                self._target = min((a.when for a in self._armed.values()), default=math.inf)
                self._cond.wait(None if self._target == math.inf else self._target - now)


_TIMER = HedgeTimer()


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
        """A racing call on a pool thread (a hedge)."""
        lease = self.clients.lease(provider)
        return Entrant(lease, race_pool().submit(call, lease.adapter), self._clock())

    def run_inline(
        self, provider: str, call: Callable[[ProviderAdapter], R], delay: float, on_late: Callable[[Entrant[R]], Any]
    ) -> InlineCall[R]:
        """The slow-call candidate: ``call`` on this thread with a cancellable client, ``on_late(entrant)``
        started on a pool thread if it has not returned after ``delay`` s (see ``InlineCall``)."""
        lease = self.clients.lease(provider)
        entrant: Entrant[R] = Entrant(lease, _NOT_RACED, self._clock())
        armed = _TIMER.arm(delay, entrant, on_late) if delay < math.inf else None
        result: R | None = None
        error: BaseException | None = None
        try:
            result = call(lease.adapter)
        except BaseException as exc:  # the walk (or the race) decides what it means
            error = exc
        if armed is None or armed.disarm():
            self.clients.give_back(lease)
            return InlineCall(entrant, None, result, error)
        if error is None:
            entrant.future.set_result(result)  # type: ignore[arg-type]
        else:
            entrant.future.set_exception(error)
        return InlineCall(entrant, armed)

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
