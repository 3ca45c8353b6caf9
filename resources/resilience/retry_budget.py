"""A fleet-wide retry budget: retries and fallback calls limited to a share of first attempts.

Why: attempt budgets are per request. When every provider degrades at once, N workers each spend their
whole budget and multiply the load on the providers that are struggling (a retry storm). Envoy caps
retries per cluster to a share of active requests (20 %, minimum 3); no LLM gateway does. Here:

* every request's first provider call is a *first attempt* (counted fleet-wide, per budget scope);
* every further call of a request (a retry of the same model, another model, another provider) is an
  *extra call*, charged to the provider it goes to;
* a provider may take ``max(min_per_window, ratio * first attempts)`` extra calls per sliding window.
  Over that, the executor does not make the call: a transient failure falls through to the next provider
  of the chain (logged as ``retry_budget_exhausted``), so a struggling provider is not retried by the fleet.

The counts live in the breakers' store (same SQLite file or PostgreSQL database, own table
``cineforge_retry_budget``), so every process and host sees one budget. The window is kept as fixed-width
buckets (like the breaker's failure window): bounded state whatever the call rate.

Hot path: a first attempt is only counted in process memory; the counts are written with the next extra
call's transaction, or at most every ``flush_seconds`` (one write per process per second under steady
traffic, none while the fleet is idle). An extra call is always one write transaction (it happens after a
failure, which already cost far more). Store failures fail open (the call goes ahead, a warning is
logged): the budget is advisory and must not turn a storage hiccup into a failed run.

Hand-written rather than a library: no rate limiter on PyPI counts "extra calls against a share of other
events" across processes in the store the breakers already use.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from resources.resilience.record_table import (
    MemoryRecordStore,
    PostgresRecordStore,
    RecordStore,
    SQLiteRecordStore,
)
from resources.resilience.store_url import parse_store_url

logger = logging.getLogger(__name__)

RETRY_BUDGET_EXHAUSTED = "retry_budget_exhausted"
DEFAULT_TABLE = "cineforge_retry_budget"
WINDOW_BUCKETS = 10


@dataclass(frozen=True, slots=True)
class RetryBudgetPolicy:
    """How many extra calls the fleet may send one provider.

    Defaults: 20 % of the fleet's first attempts over the last 10 s, at least 10 per window. The minimum
    is larger than Envoy's 3 because a worker pool starts all its requests at once: when the primary fails
    the first wave (before its breaker opens), each of the 16 in-flight requests needs one fallback call,
    and the window holds only those 16 first attempts.
    """

    ratio: float = 0.2
    min_per_window: int = 10
    window_seconds: float = 10.0
    flush_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio <= 10.0:
            raise ValueError("ratio must be in [0, 10]")
        if self.min_per_window < 0:
            raise ValueError("min_per_window must be >= 0")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be > 0")
        if self.flush_seconds < 0:
            raise ValueError("flush_seconds must be >= 0")

    @property
    def bucket_seconds(self) -> float:
        return self.window_seconds / WINDOW_BUCKETS


Buckets = tuple[tuple[int, int], ...]  # (bucket index, count), oldest first


@dataclass(frozen=True, slots=True)
class BudgetRecord:
    """One scope's counts: first attempts, and extra calls per provider, in window buckets."""

    first: Buckets = ()
    extra: tuple[tuple[str, Buckets], ...] = ()

    def extra_for(self, provider: str) -> Buckets:
        return next((b for p, b in self.extra if p == provider), ())

    def to_json(self) -> str:
        return json.dumps(
            {"first": [list(b) for b in self.first], "extra": {p: [list(b) for b in bs] for p, bs in self.extra}},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> BudgetRecord:
        data = json.loads(text)
        first = tuple((int(b), int(n)) for b, n in data.get("first", ()))
        extra = tuple(
            (str(p), tuple((int(b), int(n)) for b, n in bs)) for p, bs in sorted(data.get("extra", {}).items())
        )
        return cls(first, extra)


@dataclass(frozen=True, slots=True)
class Spend:
    """What a request for one extra call decided."""

    allowed: bool
    extra_calls: int  # in the window, this one included when allowed
    allowance: int


# ----------------------------------------------------------------------------------------- pure logic


def bucket_of(now: float, policy: RetryBudgetPolicy) -> int:
    return int(now // policy.bucket_seconds)


def _live(buckets: Buckets, now: float, policy: RetryBudgetPolicy) -> Buckets:
    oldest = bucket_of(now, policy) - WINDOW_BUCKETS + 1
    return tuple(b for b in buckets if b[0] >= oldest)


def _add(buckets: Buckets, bucket: int, count: int) -> Buckets:
    if count == 0:
        return buckets
    if buckets and buckets[-1][0] == bucket:
        return (*buckets[:-1], (bucket, buckets[-1][1] + count))
    merged = dict(buckets)
    merged[bucket] = merged.get(bucket, 0) + count
    return tuple(sorted(merged.items()))


def allowance(first_attempts: int, policy: RetryBudgetPolicy) -> int:
    """Extra calls one provider may take in a window that holds ``first_attempts``."""
    return max(policy.min_per_window, math.floor(policy.ratio * first_attempts))


def add_first_attempts(
    record: BudgetRecord, pending: dict[int, int], now: float, policy: RetryBudgetPolicy
) -> BudgetRecord:
    """``record`` with a process's counted first attempts (bucket -> count) added and old buckets dropped."""
    first = _live(record.first, now, policy)
    for bucket, count in sorted(pending.items()):
        first = _add(first, bucket, count)
    extra = tuple((p, live) for p, bs in record.extra if (live := _live(bs, now, policy)))
    return BudgetRecord(_live(first, now, policy), extra)


def spend_extra_call(
    record: BudgetRecord, provider: str, pending: dict[int, int], now: float, policy: RetryBudgetPolicy
) -> tuple[BudgetRecord, Spend]:
    """Charge one extra call to ``provider`` if the window's budget has room (pending first attempts first)."""
    record = add_first_attempts(record, pending, now, policy)
    limit = allowance(sum(n for _, n in record.first), policy)
    used = sum(n for _, n in record.extra_for(provider))
    if used >= limit:
        return record, Spend(False, used, limit)
    charged = _add(record.extra_for(provider), bucket_of(now, policy), 1)
    extra = tuple(sorted([*((p, b) for p, b in record.extra if p != provider), (provider, charged)]))
    return replace(record, extra=extra), Spend(True, used + 1, limit)


# --------------------------------------------------------------------------------------------- stores


class BudgetStore(Protocol):
    """Atomic read-modify-write of one scope's ``BudgetRecord``."""

    def update(self, scope: str, change: Callable[[BudgetRecord], tuple[BudgetRecord, Any]]) -> Any: ...

    def read(self, scope: str) -> BudgetRecord: ...

    def close(self) -> None: ...


class _RecordBudgetStore:
    """The budget records in a ``RecordStore`` (``record_table.py``), as JSON."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def read(self, scope: str) -> BudgetRecord:
        text = self.records.read(scope)
        return BudgetRecord.from_json(text) if text else BudgetRecord()

    def update(self, scope: str, change: Callable[[BudgetRecord], tuple[BudgetRecord, Any]]) -> Any:
        def on_text(text: str | None) -> tuple[str, Any]:
            new, result = change(BudgetRecord.from_json(text) if text else BudgetRecord())
            return new.to_json(), result

        return self.records.update(scope, on_text)

    def close(self) -> None:
        self.records.close()


class MemoryBudgetStore(_RecordBudgetStore):
    """One process's budget (tests, and a resource without a shared store)."""

    def __init__(self) -> None:
        super().__init__(MemoryRecordStore())


class SQLiteBudgetStore(_RecordBudgetStore):
    """The budget table in the breakers' SQLite file; ``BEGIN IMMEDIATE`` makes each update atomic across
    the host's processes (the breaker store's reasoning, see ``SQLiteBreakerStore``)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_seconds: float = 30.0) -> None:
        records = SQLiteRecordStore(path, DEFAULT_TABLE, busy_timeout_seconds=busy_timeout_seconds)
        super().__init__(records)
        self.path = records.path


class PostgresBudgetStore(_RecordBudgetStore):
    """The budget table in the breakers' PostgreSQL database; one ``SELECT ... FOR UPDATE`` transaction per
    update, so hosts spending the same scope's budget serialize on its row."""

    def __init__(self, dsn: str, table: str = DEFAULT_TABLE) -> None:
        records = PostgresRecordStore(dsn, table)
        super().__init__(records)
        self.dsn, self.table = dsn, records.table


def budget_store_from_url(url: str) -> BudgetStore:
    """The budget store beside the breakers': the same ``sqlite:///``, ``postgresql://`` or ``memory:`` URL
    the breaker store is built from (``breaker.store_from_url``)."""
    kind, location = parse_store_url(url, "retry-budget")
    if kind == "sqlite":
        return SQLiteBudgetStore(location)
    if kind == "postgresql":
        return PostgresBudgetStore(location)
    return MemoryBudgetStore()


# ---------------------------------------------------------------------------------------------- budget


class RetryBudget:
    """The fleet's retry budget for one ``scope`` (e.g. a mode and its providers' endpoints).

    ``note_first_attempt()`` on every request's first call (in-process; flushed every ``flush_seconds``);
    ``try_extra_call(provider)`` before every further call: True if the call may go, False if the fleet
    spent ``provider``'s budget for this window. ``clock`` is epoch seconds (the window is compared across
    processes).
    """

    def __init__(
        self,
        store: BudgetStore,
        policy: RetryBudgetPolicy | None = None,
        *,
        scope: str = "default",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.policy = policy or RetryBudgetPolicy()
        self.scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}
        self._pending_since = math.inf

    def note_first_attempt(self) -> None:
        now = self._clock()
        with self._lock:
            bucket = int(now // self.policy.bucket_seconds)
            self._pending[bucket] = self._pending.get(bucket, 0) + 1
            if self._pending_since == math.inf:
                self._pending_since = now
            if now - self._pending_since < self.policy.flush_seconds:
                return
            pending = self._take_pending()
        self._write(lambda record: (add_first_attempts(record, pending, now, self.policy), None), pending)

    def try_extra_call(self, provider: str) -> bool:
        now = self._clock()
        with self._lock:
            pending = self._take_pending()
        spend = self._write(
            lambda record: spend_extra_call(record, provider, pending, now, self.policy), pending
        )
        return spend is None or spend.allowed

    def flush(self) -> None:
        """Write the first attempts counted in this process (e.g. before it exits)."""
        now = self._clock()
        with self._lock:
            pending = self._take_pending()
        if pending:
            self._write(lambda record: (add_first_attempts(record, pending, now, self.policy), None), pending)

    def _take_pending(self) -> dict[int, int]:
        pending, self._pending, self._pending_since = self._pending, {}, math.inf
        return pending

    def _write(self, change: Callable[[BudgetRecord], tuple[BudgetRecord, Any]], pending: dict[int, int]) -> Any:
        try:
            return self.store.update(self.scope, change)
        except Exception:
            logger.warning("retry-budget store failed; letting the call through", exc_info=True)
            with self._lock:  # keep the counts for the next write
                for bucket, count in pending.items():
                    self._pending[bucket] = self._pending.get(bucket, 0) + count
                self._pending_since = min(self._pending_since, self._clock())
            return None
