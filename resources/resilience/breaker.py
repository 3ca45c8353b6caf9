"""Per-provider circuit breakers whose state is shared by every process of a deployment.

Why not pybreaker: it keeps breaker state in process memory (or Redis, one key per counter, without an
atomic half-open probe count), while a Dagster deployment runs each step in its own process: a provider
that is down would be re-discovered by every step, each paying the full failure threshold. Here the state
lives in a ``BreakerStore`` (``breaker_store.py``: SQLite beside the Dagster instance by default,
PostgreSQL for multi-host deployments) and every state change is one read-modify-write transaction.

State machine (all transitions are decided in ``_on_acquire`` / ``_on_record``, pure functions of the
stored ``BreakerRecord`` (``breaker_state.py``); stores only make them atomic)::

    closed --(failure rate >= R over >= M calls in the window, or a failure streak the provider's
              observed failure rate would not explain: see "degraded, not down" below)--> open
    open --(its open period elapsed; the first acquire after it)--> half_open
    half_open --(a probe succeeds)--> closed
    half_open --(a probe fails)--> open (a longer open period, see below)

Open periods (issue 18's return to the primary): the first open of an episode lasts
``first_cooldown_seconds`` (5 s), each failed half-open probe multiplies the next one by
``cooldown_multiplier`` (1.5) up to ``cooldown_seconds`` (30 s), and a successful probe closes the breaker and
starts the next episode at the first length again (Resilience4j's exponential wait in open state, Polly's
``BreakDurationGenerator``). A short outage is thus noticed as over within seconds, a long one is probed
ever more rarely; still one probe fleet-wide per open period (the half-open permit below). The current
period's length is kept on the record (``cooldown_s``), so every process and host extends the same one.

Cold start ("warming"): a closed breaker whose provider has *no proven health* -- no successful call in
the stored failure window, i.e. a provider never called yet, or one nobody called for ``window_seconds``
(its health is news from more than a window ago) -- lets a bounded number of calls through, the way
half-open bounds its probes::

    closed, warming --(in-flight warm-up calls + consecutive failures < warm-up budget)--> call, leased
    closed, warming --(budget taken)--> denied with ``ProviderWarmingError`` (not an outage: no wait)
    closed, warming --(a call succeeds)--> closed, proven (the normal fast paths, no per-call writes)
    closed, warming --(the whole warm-up budget failed)--> open ("warm_up_failed", a first open period)

* The warm-up budget is ``min(warm_up_calls, failure_threshold)`` calls (default 2) *in flight plus failed
  so far*, counted inside the store transaction (so across processes). A cold provider is treated like a
  half-open one -- its health is unknown -- except that it gets two tries instead of one, so one unlucky
  timeout on a healthy provider does not cost a whole cooldown. If all of them fail, the breaker opens: a
  provider that is down when a fleet starts sees 2 calls, not one per worker, nor ``failure_threshold``.
  Warm-up calls hold leases of ``probe_lease_seconds`` (in ``BreakerRecord.probes``, like probes) so a
  crashed process cannot pin the budget. The executor treats a denial as a skip and goes on down its
  fallback chain at once; for the chain's last usable real provider it asks ``acquire(...,
  last_resort=True)``, which lets the call through over budget (warming never fails a request, nor hands
  it to the offline engine, on its own).
* Degraded, not down (issue 18's brownout): the window's failure rate is the rule (resilience4j's
  failure-rate threshold over a minimum number of calls, Polly's failure ratio over a minimum throughput);
  ``failure_threshold`` consecutive failures is only a fast path for a provider that fails *everything*.
  A provider answering 30 % of calls with 503 produces 5 failures in a row every few hundred calls by
  chance, so the streak needed grows with the failure ratio the newest buckets showed besides the streak
  (its upper confidence bound, as a few dozen calls are a noisy sample): the shortest streak that a
  provider failing at that ratio would produce by chance with probability at most ``streak_chance_limit``
  (``ratio ** streak <= limit``), never shorter than ``failure_threshold``.
  A healthy provider that goes down (no earlier failures), or one with fewer than
  ``min_calls_in_window`` calls before the streak (no evidence either way), opens after
  ``failure_threshold`` failures as before; a 30 % brownout needs 12 in a row (0.3 ** 12 ~ 5e-7).
* A half-open probe's success closes the breaker *proven* (the probe's success goes into the window).
* At most ``half_open_max_probes`` calls are let through in half-open, counted inside the store
  transaction, so the bound holds across processes. A probe holds a lease of ``probe_lease_seconds``: a
  probe whose process died frees its slot when the lease runs out instead of wedging the breaker.
* Every transition bumps ``generation``; a ``Permit`` remembers the generation it was issued in and its
  outcome is ignored if the breaker moved on meanwhile (a late failure from before the breaker opened
  must not extend the cooldown; a late success must not close an open breaker).
* What counts: the caller reports ``record(permit, success=False)`` only for *transient* failures.
  Permanent errors (bad request, safety refusal, invalid output) prove the provider is up and answering,
  so they are recorded as successes. ``ProviderUnavailableError`` (401/403/404, billing) is neither: the
  caller ``release``\\ s the permit, the breaker does not move, and the fallback chain skips that provider
  for the call. Opening the breaker on a bad key would hide the configuration error behind "provider
  down" and would only be noticed after a cooldown; skipping per call costs one fast 401 per call.
* Clocks: ``clock`` must be wall-clock epoch seconds (``time.time``): timestamps are compared across
  processes, where ``time.monotonic`` values mean nothing. Every decision uses the *store's* time
  (``BreakerStore.now``): on SQLite (one host) that is the local clock; on PostgreSQL it is the database's
  ``clock_timestamp()``, read inside the transaction that decides, so hosts whose clocks disagree still
  see one cooldown and one probe per cooldown fleet-wide. Times handed to callers (``reopens_at``) are
  converted back to the caller's clock.
* Identity: a record is stored under ``CircuitBreaker.key(provider)``. ``AIProviderResource`` keys each
  provider by its mode and base URL (``breaker_identity``), so a simulated fault drill, or a live run
  through a proxy, never opens the breakers that live calls to the real endpoint obey.
* Parking: ``park(permit, seconds, reason)`` skips a provider for every caller until a given time without
  opening the breaker or counting a failure (a daily quota until its reset); ``acquire`` raises
  ``ProviderParkedError`` meanwhile.

Performance trade-off: a SQLite write transaction costs far more than the layer's per-call budget, so the
hot path (breaker closed, calls succeeding) does not touch the store. Each ``CircuitBreaker`` caches the
record it last read or wrote for ``cache_ttl_seconds`` (default 1 s):

* ``acquire`` on a cached CLOSED, proven record without a failure streak grants without I/O (a warming
  record always goes to the store: its budget is a write); a cached OPEN record
  denies without I/O until its ``reopens_at`` (an open breaker cannot change state before then); a cached
  CLOSED record *with* a failure streak is not trusted: the provider is failing right now and another
  process may be the one to open the breaker, so every acquire re-reads the store (a read, no write lock)
  until a success clears the streak;
* ``record(success=True)`` in CLOSED with no failure in the window and no failure streak only increments
  an in-process counter; the counted successes are written with the next write (a failure, a transition,
  or the first success after the cache expires), so the window's denominator lags by at most one TTL.

* ``record`` of an outcome whose permit is older than the cached record's generation does no I/O: the
  breaker has moved on (opened, say) since the permit was issued, and ``_on_record`` would ignore it. When a
  provider goes down under load, the calls already in flight all fail together; only the ones that can
  still change the state take the store's write lock.

The cost: after another process opens a breaker, a process that has seen no failure of that provider may
keep calling it for up to ``cache_ttl_seconds``, and a failure streak interleaved with another process's
unwritten successes may look up to one TTL longer than it was. A failure in *this* process is always
written at once (unless stale, above), and the write returns the fresh shared record.

If the store itself fails (database locked past the busy timeout, PostgreSQL down) the breaker fails open:
it logs a warning and grants an untracked permit. The breaker is advisory; it must not turn a storage
hiccup into a failed pipeline run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from resources.resilience.breaker_state import (
    BreakerListener,
    BreakerRecord,
    BreakerSnapshot,
    BreakerState,
    BreakerTransition,
    Permit,
    TransitionReason,
)
from resources.resilience.breaker_store import BreakerStore
from resources.resilience.errors import BreakerOpenError, ProviderParkedError, ProviderWarmingError

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

# The failure-rate window is kept as this many fixed-width buckets (resilience4j's time-based sliding
# window does the same): the stored state stays bounded whatever the call rate, at the price of
# forgetting calls in bucket-width steps (1 s for the default 60 s window) rather than one by one.
WINDOW_BUCKETS = 60
_UNTRACKED_GENERATION = -1
# How far above the observed earlier failure ratio a streak is judged against (about 98 % one-sided).
_RATIO_BOUND_Z = 2.0
# Calls besides a streak its earlier failure ratio is read from (newest first, whole buckets): a dozen
# calls of a 30 % brownout show no failure at all 1-2 % of the time, a hundred practically never.
_RATIO_SAMPLE_CALLS = 100


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a provider's breaker opens and how it recovers.

    Defaults: open when >= 50 % of >= 10 calls in the last 60 s failed, or after 5 consecutive transient
    failures of a provider that had no failures before them (a longer streak for one that was already
    failing some calls: ``streak_chance_limit``, see "degraded, not down" in the module docstring); stay
    open 5 s, then 1.5x longer after each failed probe up to 30 s; each open period lets 1 probe through
    (its lease expires after 120 s if its process never reports back).
    A cold provider (see "warming" in the module docstring) gets 2 warm-up calls, and opens if both fail.
    Closed-state reads are cached in-process for 1 s.
    """

    failure_threshold: int = 5
    warm_up_calls: int = 2
    window_seconds: float = 60.0
    failure_rate_threshold: float = 0.5
    min_calls_in_window: int = 10
    # The most a failure streak may be explained by chance, at the window's earlier failure ratio, and
    # still open the breaker (0 would turn the streak rule off for a provider with any earlier failure).
    streak_chance_limit: float = 1e-6
    # The longest an open breaker stays open; its first open period is shorter and grows with each
    # failed probe (see "open periods" in the module docstring). first == cooldown: a fixed period.
    cooldown_seconds: float = 30.0
    first_cooldown_seconds: float = 5.0
    cooldown_multiplier: float = 1.5
    half_open_max_probes: int = 1
    probe_lease_seconds: float = 120.0
    cache_ttl_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if self.warm_up_calls < 1:
            raise ValueError("warm_up_calls must be >= 1")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be > 0")
        if not 0.0 < self.failure_rate_threshold <= 1.0:
            raise ValueError("failure_rate_threshold must be in (0, 1]")
        if self.min_calls_in_window < 1:
            raise ValueError("min_calls_in_window must be >= 1")
        if not 0.0 <= self.streak_chance_limit < 1.0:
            raise ValueError("streak_chance_limit must be in [0, 1)")
        if self.cooldown_seconds < 0:
            raise ValueError("cooldown_seconds must be >= 0")
        if self.first_cooldown_seconds < 0:
            raise ValueError("first_cooldown_seconds must be >= 0")
        if self.cooldown_multiplier < 1.0:
            raise ValueError("cooldown_multiplier must be >= 1")
        if self.half_open_max_probes < 1:
            raise ValueError("half_open_max_probes must be >= 1")
        if self.probe_lease_seconds <= 0:
            raise ValueError("probe_lease_seconds must be > 0")
        if self.cache_ttl_seconds < 0:
            raise ValueError("cache_ttl_seconds must be >= 0")

    @property
    def bucket_seconds(self) -> float:
        return self.window_seconds / WINDOW_BUCKETS

    def open_period(self, previous: float | None) -> float:
        """How long the breaker stays open: the first period of an episode (``previous`` None), else the
        failed probe's period times the multiplier; never longer than ``cooldown_seconds``."""
        length = self.first_cooldown_seconds if previous is None else previous * self.cooldown_multiplier
        return min(length, self.cooldown_seconds)

    @property
    def warm_up_budget(self) -> int:
        """Calls a cold provider gets (in flight plus failed) before one of them must succeed."""
        return min(self.warm_up_calls, self.failure_threshold)




# --------------------------------------------------------------------------------------------------
# The state machine: pure functions of (record, now, policy). Every transition happens in one of these.


def _bucket(now: float, policy: BreakerPolicy) -> int:
    return int(now // policy.bucket_seconds)


def _live_window(
    window: tuple[tuple[int, int, int], ...], now: float, policy: BreakerPolicy
) -> tuple[tuple[int, int, int], ...]:
    oldest = _bucket(now, policy) - WINDOW_BUCKETS + 1
    return tuple(b for b in window if b[0] >= oldest)


def _add_calls(
    window: tuple[tuple[int, int, int], ...], bucket: int, calls: int, failures: int
) -> tuple[tuple[int, int, int], ...]:
    if calls == 0:
        return window
    counts = {b: (c, f) for b, c, f in window}
    c, f = counts.get(bucket, (0, 0))
    counts[bucket] = (c + calls, f + failures)
    return tuple((b, c, f) for b, (c, f) in sorted(counts.items()))


def _window_totals(window: tuple[tuple[int, int, int], ...]) -> tuple[int, int]:
    return sum(c for _, c, _ in window), sum(f for _, _, f in window)


def _opened(record: BreakerRecord, now: float, policy: BreakerPolicy) -> BreakerRecord:
    # From half-open (a failed probe) the episode goes on and its open period grows; from closed it starts.
    period = policy.open_period(record.cooldown_s if record.state == "half_open" else None)
    return BreakerRecord(
        state="open",
        generation=record.generation + 1,
        opened_at=now,
        reopens_at=now + period,
        cooldown_s=period,
        next_probe_token=record.next_probe_token,
        parked_until=record.parked_until,
        parked_reason=record.parked_reason,
    )


def _closed(record: BreakerRecord, now: float, policy: BreakerPolicy) -> BreakerRecord:
    # The probe's success goes into the fresh window: the provider is proven, not warming again.
    return BreakerRecord(
        state="closed",
        generation=record.generation + 1,
        window=_add_calls((), _bucket(now, policy), 1, 0),
        next_probe_token=record.next_probe_token,
        parked_until=record.parked_until,
        parked_reason=record.parked_reason,
    )


def _is_parked(record: BreakerRecord, now: float) -> bool:
    return record.parked_until is not None and now < record.parked_until


def _last_success_bucket(window: tuple[tuple[int, int, int], ...]) -> int | None:
    """The newest window bucket holding a success (None: no success in the stored window)."""
    return max((b for b, c, f in window if c > f), default=None)


def _is_warming(record: BreakerRecord, now: float, policy: BreakerPolicy) -> bool:
    """Closed without proven health: no successful call in the live window (never called, or idle)."""
    if record.state != "closed":
        return False
    last = _last_success_bucket(record.window)
    return last is None or last < _bucket(now, policy) - WINDOW_BUCKETS + 1


def _failure_ratio_upper_bound(failures: int, calls: int) -> float:
    """Wilson score upper bound (z = ``_RATIO_BOUND_Z``) of a failure ratio seen as ``failures`` of ``calls``.

    Why an upper bound and not ``failures / calls``: a few dozen calls of a 30 % brownout often show 10-15 %
    by chance, which would make a chance streak look like an outage; erring high only lengthens the streak
    a degraded provider needs, while a provider with no earlier failure never gets here.
    """
    ratio = failures / calls
    z2 = _RATIO_BOUND_Z * _RATIO_BOUND_Z
    spread = _RATIO_BOUND_Z * math.sqrt(ratio * (1.0 - ratio) / calls + z2 / (4.0 * calls * calls))
    return min(1.0, (ratio + z2 / (2.0 * calls) + spread) / (1.0 + z2 / calls))


def streak_to_open(
    window: tuple[tuple[int, int, int], ...], streak: int, policy: BreakerPolicy
) -> int | None:
    """Consecutive failures that open a closed breaker, given the live ``window`` (the streak's own
    ``streak`` failures included, as its newest failures); None: no streak does, the failure rate alone
    decides (the provider fails some calls, and ``streak_chance_limit`` is 0).

    The streak is the outage fast path: it must be unlikely for a provider that is only degraded at the
    failure ratio it showed just before the streak (see "degraded, not down" in the module docstring).
    That ratio is read from the newest buckets holding ``_RATIO_SAMPLE_CALLS`` calls besides the streak
    (or all the window has; fewer than ``min_calls_in_window`` is no evidence), not the whole window: a
    brownout that began a second ago must not be diluted by a healthy minute.
    """
    unattributed, earlier_calls, earlier_failures = streak, 0, 0
    for _, calls, failures in reversed(window):
        of_streak = min(failures, unattributed)
        unattributed -= of_streak
        earlier_calls += calls - of_streak
        earlier_failures += failures - of_streak
        if earlier_calls >= max(policy.min_calls_in_window, _RATIO_SAMPLE_CALLS):
            break
    if earlier_failures == 0 or earlier_calls < policy.min_calls_in_window:
        return policy.failure_threshold
    if policy.streak_chance_limit <= 0.0:
        return None
    ratio = _failure_ratio_upper_bound(earlier_failures, earlier_calls)
    if ratio >= 1.0:
        return policy.failure_threshold
    unexplained = math.ceil(math.log(policy.streak_chance_limit) / math.log(ratio) - 1e-9)
    return max(policy.failure_threshold, unexplained)


@dataclass(frozen=True, slots=True)
class _Decision:
    """What an acquire decided: a permit, or the time the caller may try again."""

    permit: Permit | None
    reopens_at: float
    transitions: tuple[BreakerTransition, ...] = ()
    warming: bool = False  # denied because the warm-up budget is taken (not because it is open)
    parked: str = ""  # denied because the provider is parked (its reason), not because it is open


def _on_acquire(
    provider: str, record: BreakerRecord, now: float, policy: BreakerPolicy, last_resort: bool = False
) -> tuple[BreakerRecord, _Decision]:
    transitions: list[BreakerTransition] = []
    if record.parked_until is not None and now < record.parked_until:
        return record, _Decision(None, record.parked_until, parked=record.parked_reason or "parked")
    if record.state == "closed":
        if not _is_warming(record, now, policy):
            return record, _Decision(Permit(provider, record.generation, "closed"), now)
        leases = tuple(p for p in record.probes if p[1] > now)
        if len(leases) + record.consecutive_failures >= policy.warm_up_budget:
            if last_resort:  # nothing left to fall back on: let it through, outside the budget
                return replace(record, probes=leases), _Decision(Permit(provider, record.generation, "closed"), now)
            retry_at = min((p[1] for p in leases), default=now)
            return replace(record, probes=leases), _Decision(None, retry_at, warming=True)
        token = record.next_probe_token
        record = replace(
            record, probes=(*leases, (token, now + policy.probe_lease_seconds)), next_probe_token=token + 1
        )
        return record, _Decision(Permit(provider, record.generation, "closed", probe_token=token), now)
    if record.state == "open":
        reopens_at = record.reopens_at if record.reopens_at is not None else now
        if now < reopens_at:
            return record, _Decision(None, reopens_at)
        record = replace(record, state="half_open", generation=record.generation + 1, probes=())
        transitions.append(BreakerTransition(provider, "open", "half_open", "cooldown_elapsed", now))
    live_probes = tuple(p for p in record.probes if p[1] > now)
    if len(live_probes) >= policy.half_open_max_probes:
        # A probe is in flight: its answer comes by its lease expiry at the latest, and if it fails the
        # breaker re-opens for a longer open period; suggest the sooner of the two.
        retry_at = min(min(p[1] for p in live_probes), now + policy.cooldown_seconds)
        return replace(record, probes=live_probes), _Decision(None, retry_at, tuple(transitions))
    token = record.next_probe_token
    record = replace(
        record,
        probes=(*live_probes, (token, now + policy.probe_lease_seconds)),
        next_probe_token=token + 1,
    )
    permit = Permit(provider, record.generation, "half_open", probe_token=token)
    return record, _Decision(permit, now, tuple(transitions))


def _on_record(
    record: BreakerRecord,
    permit: Permit,
    success: bool,
    now: float,
    policy: BreakerPolicy,
    earlier_successes: Mapping[int, int],
) -> tuple[BreakerRecord, tuple[BreakerTransition, ...]]:
    """Apply one call's outcome (plus this process's not-yet-written successes) to the record."""
    if permit.generation != record.generation:
        return record, ()  # the breaker moved on since the permit was issued: stale news
    provider = permit.provider
    if record.state == "half_open":
        if permit.probe_token is None:
            return record, ()
        if success:
            return _closed(record, now, policy), (
                BreakerTransition(provider, "half_open", "closed", "probe_succeeded", now),
            )
        return _opened(record, now, policy), (
            BreakerTransition(provider, "half_open", "open", "probe_failed", now),
        )
    if record.state != "closed":
        return record, ()
    if permit.probe_token is not None:  # a warm-up call came back: its lease is free again
        record = replace(record, probes=tuple(p for p in record.probes if p[0] != permit.probe_token))
    window = _live_window(record.window, now, policy)
    for bucket, count in earlier_successes.items():
        window = _add_calls(window, bucket, count, 0)
    window = _live_window(_add_calls(window, _bucket(now, policy), 1, 0 if success else 1), now, policy)
    if success:
        # Proven now (a success is in the window): warm-up leases still out no longer matter.
        return replace(record, consecutive_failures=0, window=window, probes=()), ()
    streak = 1 if earlier_successes else record.consecutive_failures + 1
    calls, failures = _window_totals(window)
    reason: TransitionReason | None = None
    needed = streak_to_open(window, streak, policy)
    if needed is not None and streak >= needed:
        reason = "consecutive_failures"
    elif streak >= policy.warm_up_budget and _last_success_bucket(window) is None:
        # Nothing has succeeded in the window and the whole warm-up budget failed: what half-open does
        # when its probe fails, for a provider whose health was never shown.
        reason = "warm_up_failed"
    elif calls >= policy.min_calls_in_window and failures >= policy.failure_rate_threshold * calls:
        reason = "failure_rate"
    if reason is None:
        return replace(record, consecutive_failures=streak, window=window), ()
    return _opened(record, now, policy), (BreakerTransition(provider, "closed", "open", reason, now),)


def _on_park(record: BreakerRecord, permit: Permit, until: float, reason: str) -> BreakerRecord:
    """Park the provider until ``until`` (never shortening a longer parking) and free the permit's lease."""
    if record.parked_until is None or record.parked_until < until:
        record = replace(record, parked_until=until, parked_reason=reason)
    return _on_release(record, permit)


def _on_release(record: BreakerRecord, permit: Permit) -> BreakerRecord:
    """Free a half-open probe's or a warm-up call's lease without deciding anything."""
    if record.state == "open" or permit.generation != record.generation or permit.probe_token is None:
        return record
    return replace(record, probes=tuple(p for p in record.probes if p[0] != permit.probe_token))


def _last_failure_bucket(record: BreakerRecord) -> int | None:
    """The newest window bucket holding a failure (None: no failure in the stored window)."""
    return max((b for b, _, f in record.window if f), default=None)


# --------------------------------------------------------------------------------------------------
# The breaker: store + policy + in-process cache.


@dataclass(slots=True)
class _LocalView:
    record: BreakerRecord
    fetched_at: float
    # Both fast paths ask these on every call, so they are worked out once per cached record:
    # acquire grants without I/O while now < grant_until (closed, no failure streak, within the TTL);
    # a success is buffered only from quiet_from on, when no failure is left in the window.
    grant_until: float = -math.inf
    quiet_from: float = -math.inf
    # What the grant fast path hands out: permits are immutable, so one per cached record does.
    granted: Permit | None = None
    pending_generation: int = _UNTRACKED_GENERATION
    # successes granted the fast path and not yet written: bucket index -> count
    pending: dict[int, int] = field(default_factory=dict)
    pending_since: float = 0.0

    def refresh(self, record: BreakerRecord, now: float, policy: BreakerPolicy) -> None:
        self.record, self.fetched_at = record, now
        healthy = record.state == "closed" and not record.consecutive_failures and not _is_parked(record, now)
        last_success = _last_success_bucket(record.window) if healthy else None
        if last_success is None:  # not closed, failing, or warming: every acquire asks the store
            self.grant_until = -math.inf
        else:  # proven until the newest success leaves the window (then warming again)
            proven_until = (last_success + WINDOW_BUCKETS) * policy.bucket_seconds
            self.grant_until = min(now + policy.cache_ttl_seconds, proven_until)
        last = _last_failure_bucket(record)
        # The newest failure leaves the window when _bucket(now) reaches last + WINDOW_BUCKETS.
        self.quiet_from = -math.inf if last is None else (last + WINDOW_BUCKETS) * policy.bucket_seconds

    def buffer_success(self, generation: int, bucket: int, now: float) -> None:
        if self.pending_generation != generation or not self.pending:
            self.pending, self.pending_generation, self.pending_since = {}, generation, now
        self.pending[bucket] = self.pending.get(bucket, 0) + 1

    def take_pending(self, generation: int) -> dict[int, int]:
        taken = self.pending if self.pending_generation == generation else {}
        self.pending = {}
        return taken


def breaker_identity(provider: str, mode: str, base_url: str) -> str:
    """The key a provider's breaker is stored under: the provider *and* where its calls go.

    A fault drill against the simulator (mode ``simulated``) or a live run through a proxy must never open
    the breaker that production's live calls to the real endpoint obey, even when they share one store.
    """
    return f"{provider}@{mode}:{base_url.rstrip('/')}"


class CircuitBreaker:
    """Per-provider breakers over a shared ``BreakerStore``.

    ``acquire(provider)`` returns a ``Permit`` or raises ``BreakerOpenError``; hand every permit back
    with ``record(permit, success=...)`` (the provider answered / failed transiently) or ``release(permit)``
    (the outcome says nothing about the provider's health). Transitions go to ``listeners`` in the process
    that made them, once per transition across all processes.

    ``identities`` maps a provider name to the key its record is stored under (see ``breaker_identity``);
    a provider without one is stored under its name. Callers always speak provider names; ``snapshot``
    shows only this breaker's own identities when it has any.

    Time: decisions use the store's clock (``BreakerStore.now``; the database's for PostgreSQL). The
    difference to the local ``clock`` is remembered from every store round trip, so the in-process fast
    paths compare like with like, and every ``reopens_at`` handed to a caller is on the caller's clock.
    """

    def __init__(
        self,
        store: BreakerStore,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock = time.time,
        listeners: Sequence[BreakerListener] = (),
        identities: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._listeners = tuple(listeners)
        self._identities = dict(identities or {})
        self._local: dict[str, _LocalView] = {}
        self._lock = threading.Lock()
        self._skew = 0.0  # store clock minus local clock, as of the last round trip

    def key(self, provider: str) -> str:
        """Where ``provider``'s record is stored."""
        return self._identities.get(provider, provider)

    def _now(self) -> tuple[float, float]:
        """(local time, best estimate of the store's time)."""
        local = self._clock()
        return local, local + self._skew

    def _learn(self, local: float, store_now: float) -> None:
        self._skew = store_now - local

    def _on_local_clock(self, store_time: float) -> float:
        return store_time - self._skew

    def acquire(self, provider: str, *, last_resort: bool = False) -> Permit:
        """A permit to call ``provider``, or ``BreakerOpenError`` (``ProviderWarmingError`` when only the
        warm-up budget is taken, ``ProviderParkedError`` while it is parked). ``last_resort``: the caller
        has nowhere else to go, so a warming provider lets the call through over its budget (an open or
        parked one still denies)."""
        local, now = self._now()
        with self._lock:
            view = self._local.get(provider)
            if view is not None:
                cached = view.record
                if now < view.grant_until and view.granted is not None:  # closed, no failure streak, fresh
                    return view.granted
                if cached.state == "open" and cached.reopens_at is not None and now < cached.reopens_at:
                    raise BreakerOpenError(provider, self._on_local_clock(cached.reopens_at))

        def change(
            current: BreakerRecord, store_now: float
        ) -> tuple[BreakerRecord, tuple[BreakerRecord, _Decision, float]]:
            new, decision = _on_acquire(provider, current, store_now, self.policy, last_resort)
            return new, (new, decision, store_now)

        key = self.key(provider)
        try:
            record, now = self.store.read_at(key, local)
            self._learn(local, now)
            if (
                _is_parked(record, now)
                or (record.state == "closed" and not _is_warming(record, now, self.policy))
                or (record.state == "open" and record.reopens_at is not None and now < record.reopens_at)
            ):
                # Nothing to change: a parked breaker denies until its time, a proven closed one grants, an
                # open one denies until reopens_at.
                record, decision = _on_acquire(provider, record, now, self.policy)
            else:
                record, decision, now = self.store.update_at(key, change, local)
                self._learn(local, now)
        except Exception:
            logger.warning("breaker store failed; letting the %s call through", provider, exc_info=True)
            return Permit(provider, _UNTRACKED_GENERATION, "closed")
        self._cache(provider, record, now)
        self._emit(decision.transitions)
        if decision.permit is None:
            reopens_at = self._on_local_clock(decision.reopens_at)
            if decision.parked:
                raise ProviderParkedError(provider, reopens_at, decision.parked)
            if decision.warming:
                raise ProviderWarmingError(provider, reopens_at)
            raise BreakerOpenError(provider, reopens_at)
        return decision.permit

    def record(self, permit: Permit, *, success: bool) -> None:
        """Report a call's outcome: ``success=False`` only for transient failures."""
        if permit.generation == _UNTRACKED_GENERATION:
            return
        local, now = self._now()
        provider = permit.provider
        with self._lock:
            view = self._local.get(provider)
            if (
                success
                and view is not None
                and permit.state == "closed"
                and view.record.generation == permit.generation
                and view.quiet_from <= now < view.grant_until
                and not (view.pending and now - view.pending_since >= self.policy.cache_ttl_seconds)
            ):
                view.buffer_success(permit.generation, _bucket(now, self.policy), now)
                return
            if view is not None and view.record.generation > permit.generation:
                return  # stale: generations only grow, so the stored record has moved on too
            earlier = view.take_pending(permit.generation) if view is not None else {}

        def change(
            current: BreakerRecord, store_now: float
        ) -> tuple[BreakerRecord, tuple[BreakerRecord, tuple[BreakerTransition, ...], float]]:
            new, transitions = _on_record(current, permit, success, store_now, self.policy, earlier)
            return new, (new, transitions, store_now)

        try:
            new, transitions, now = self.store.update_at(self.key(provider), change, local)
        except Exception:
            logger.warning("breaker store failed; %s outcome not recorded", provider, exc_info=True)
            return
        self._learn(local, now)
        self._cache(provider, new, now)
        self._emit(transitions)

    def release(self, permit: Permit) -> None:
        """Hand back a permit whose outcome says nothing about health (frees its probe / warm-up lease)."""
        if permit.probe_token is None or permit.generation == _UNTRACKED_GENERATION:
            return
        try:
            self.store.update_at(
                self.key(permit.provider), lambda current, _now: (_on_release(current, permit), None), self._clock()
            )
        except Exception:
            logger.warning("breaker store failed; %s probe not released", permit.provider, exc_info=True)

    def park(self, permit: Permit, seconds: float, reason: str) -> None:
        """Skip the provider for every caller for ``seconds`` from now, without opening the breaker or
        counting a failure (a daily quota until its reset), and hand back ``permit``."""
        if permit.generation == _UNTRACKED_GENERATION:
            return

        def change(current: BreakerRecord, store_now: float) -> tuple[BreakerRecord, BreakerRecord]:
            new = _on_park(current, permit, store_now + seconds, reason)
            return new, new

        local = self._clock()
        try:
            new = self.store.update_at(self.key(permit.provider), change, local)
        except Exception:
            logger.warning("breaker store failed; %s not parked", permit.provider, exc_info=True)
            return
        self._cache(permit.provider, new, local + self._skew)

    def state(self, provider: str) -> BreakerState:
        """The provider's stored state, read fresh (no cache)."""
        return self.store.read(self.key(provider)).state

    def snapshot(self) -> dict[str, BreakerSnapshot]:
        """Every known provider's breaker (only this breaker's identities when it has any), read fresh from
        the store, for health probes."""
        now = self.store.now(self._clock())
        records = self.store.read_all()
        if self._identities:
            records = {p: records[key] for p, key in self._identities.items() if key in records}
        result: dict[str, BreakerSnapshot] = {}
        for provider, record in sorted(records.items()):
            calls, failures = _window_totals(_live_window(record.window, now, self.policy))
            result[provider] = BreakerSnapshot(
                provider=provider,
                state=record.state,
                consecutive_failures=record.consecutive_failures,
                window_calls=calls,
                window_failures=failures,
                opened_at=record.opened_at,
                reopens_at=record.reopens_at,
                reopens_in_seconds=(
                    max(0.0, (record.reopens_at or now) - now) if record.state == "open" else 0.0
                ),
                probes_in_flight=sum(1 for _, expiry in record.probes if expiry > now),
                warming=_is_warming(record, now, self.policy),
                parked_until=record.parked_until if _is_parked(record, now) else None,
                parked_reason=record.parked_reason if _is_parked(record, now) else "",
            )
        return result

    def _cache(self, provider: str, record: BreakerRecord, now: float) -> None:
        # Always safe to cache the latest record: the fast paths only trust a CLOSED record younger than
        # the TTL and an OPEN record before its reopens_at; a HALF_OPEN record always goes to the store.
        with self._lock:
            view = self._local.get(provider)
            if view is None:
                view = self._local[provider] = _LocalView(record, now)
            view.refresh(record, now, self.policy)
            view.granted = Permit(provider, record.generation, "closed")

    def _emit(self, transitions: Sequence[BreakerTransition]) -> None:
        for transition in transitions:
            logger.info(
                "breaker %s: %s -> %s (%s)",
                transition.provider,
                transition.from_state,
                transition.to_state,
                transition.reason,
            )
            for listener in self._listeners:
                try:
                    listener.on_breaker_transition(transition)
                except Exception:
                    logger.warning("breaker listener %r failed", listener, exc_info=True)
