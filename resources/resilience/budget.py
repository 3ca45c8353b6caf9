"""Spending caps (per run, per UTC day across the fleet), kept beside the circuit breakers.

The spend lives in the same store the breakers use (the SQLite file beside the Dagster instance, or the
PostgreSQL database of a multi-host deployment; same URL, read the same way), in its own table, so every
process of a deployment sees one total. Rows are keyed by scope: ``run:<run_id>`` and ``day:<YYYY-MM-DD>``
(UTC), ``run:<run_id>/stage:<stage>`` and ``run:<run_id>/premium:<stage>`` for the run's summary. (Billing
holds are breaker parkings: see ``BillingError``.)

Reserve, then settle. Before a call the executor reserves the call's *estimated* cost (the prompt's estimated
tokens plus the full output ceiling it sends, at list price) on every capped scope in one transaction; the
reservation is refused when any scope would pass its cap. After the call it settles the reservation to the
cost the provider's usage gives (zero for a failed call: providers do not bill errors). Because the output
ceiling bounds what a call can bill, the settled spend never exceeds a cap that the reservations kept.
Reserving (rather than checking the spent total and adding later) is what keeps concurrent workers from all
passing the same check with the last few cents.

A call whose model has no price cannot be bounded: under a cap it is refused, without a cap it goes ahead and
its cost is recorded as unpriced. The decisions are pure functions (``decide_reservation``); stores only make
them atomic.

Why hand-written: no library keeps a shared, transactional spend ledger in the breakers' database; the
arithmetic is a few lines and the atomicity is the stores' ``BEGIN IMMEDIATE`` / ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from resources.resilience.errors import PermanentProviderError
from resources.resilience.pg_table import PostgresTable
from resources.resilience.sqlite_table import SqliteTable
from resources.resilience.store_url import parse_store_url

logger = logging.getLogger(__name__)

RUN_BUDGET_ENV = "CINEFORGE_RUN_BUDGET_USD"
DAILY_BUDGET_ENV = "CINEFORGE_DAILY_BUDGET_USD"
BUDGET_TABLE = "cineforge_budget"
DEFAULT_BILLING_HOLD_SECONDS = 3600.0

_R = TypeVar("_R")
Values = dict[str, float]


def _cap_from_env(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number of US dollars") from exc
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")
    return value


@dataclass(frozen=True, slots=True)
class BudgetCaps:
    """USD caps; ``None`` is no cap."""

    run_usd: float | None = None
    daily_usd: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("run_usd", self.run_usd), ("daily_usd", self.daily_usd)):
            if value is not None and value < 0:
                raise ValueError(f"budget {name} must be >= 0, not {value}")

    @classmethod
    def resolve(cls, run_usd: float | None = None, daily_usd: float | None = None) -> BudgetCaps:
        """The configured caps, each falling back to ``CINEFORGE_RUN_BUDGET_USD`` / ``CINEFORGE_DAILY_BUDGET_USD``."""
        return cls(
            run_usd=run_usd if run_usd is not None else _cap_from_env(RUN_BUDGET_ENV),
            daily_usd=daily_usd if daily_usd is not None else _cap_from_env(DAILY_BUDGET_ENV),
        )

    @property
    def any(self) -> bool:
        return self.run_usd is not None or self.daily_usd is not None


@dataclass(frozen=True, slots=True)
class Scope:
    """One capped total: ``key`` in the store, ``label`` for people, ``cap_usd``."""

    key: str
    label: str
    cap_usd: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: the scope whose cap it would break and what was spent there."""

    scope: Scope
    spent_usd: float
    requested_usd: float | None

    def describe(self, call: str) -> str:
        asked = "an unpriced amount" if self.requested_usd is None else f"${self.requested_usd:.4f}"
        return (
            f"{self.scope.label} budget cap ${self.scope.cap_usd:.4f} reached: ${self.spent_usd:.4f} spent or "
            f"reserved so far; refused {call} estimated at {asked}"
        )


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money set aside for one call on ``keys``; settled once with the call's real cost.

    ``premium_key``: where the premium a fallback paid over the chain's first model is added up.
    """

    keys: tuple[str, ...]
    amount_usd: float
    premium_key: str | None = None


def run_key(run_id: str) -> str:
    return f"run:{run_id}"


def stage_key(run_id: str, stage: str) -> str:
    return f"run:{run_id}/stage:{stage}"


def premium_key(run_id: str, stage: str) -> str:
    return f"run:{run_id}/premium:{stage}"


@dataclass(frozen=True, slots=True)
class RunSpend:
    """What one run has spent (settled plus reserved in flight), in total, per stage, and in fallback premium."""

    total_usd: float
    by_stage: dict[str, float]
    premium_by_stage: dict[str, float]

    @property
    def fallback_premium_usd(self) -> float:
        return sum(self.premium_by_stage.values())


def run_spend(store: SpendStore, run_id: str) -> RunSpend:
    """The spend the ledger recorded for ``run_id`` (every process of the run, every retry of its steps)."""
    rows = store.read_prefix(run_key(run_id))
    stage_prefix, premium_prefix = stage_key(run_id, ""), premium_key(run_id, "")
    return RunSpend(
        total_usd=rows.get(run_key(run_id), 0.0),
        by_stage={k.removeprefix(stage_prefix): v for k, v in rows.items() if k.startswith(stage_prefix)},
        premium_by_stage={k.removeprefix(premium_prefix): v for k, v in rows.items() if k.startswith(premium_prefix)},
    )


def decide_reservation(spent: Mapping[str, float], scopes: Sequence[Scope], amount_usd: float | None) -> Refusal | None:
    """``None`` if ``amount_usd`` fits under every scope's cap given ``spent``, else the first refusal.

    An unpriced amount (``None``) fits no cap. A cap is inclusive: spending exactly the cap is allowed.
    """
    for scope in scopes:
        already = spent.get(scope.key, 0.0)
        if amount_usd is None or already + amount_usd > scope.cap_usd + 1e-12:
            return Refusal(scope, already, amount_usd)
    return None


class SpendStore(Protocol):
    """Named float values changed atomically together."""

    def update(self, keys: Sequence[str], change: Callable[[Values], tuple[Values, _R]]) -> _R: ...

    def read(self, keys: Sequence[str]) -> Values: ...

    def read_prefix(self, prefix: str) -> Values: ...

    def close(self) -> None: ...


class MemorySpendStore:
    """One process only (tests, offline mode)."""

    def __init__(self) -> None:
        self._values: Values = {}
        self._lock = threading.Lock()

    def update(self, keys: Sequence[str], change: Callable[[Values], tuple[Values, _R]]) -> _R:
        with self._lock:
            new, result = change({k: self._values.get(k, 0.0) for k in keys})
            self._values.update(new)
            return result

    def read(self, keys: Sequence[str]) -> Values:
        with self._lock:
            return {k: self._values.get(k, 0.0) for k in keys}

    def read_prefix(self, prefix: str) -> Values:
        with self._lock:
            return {k: v for k, v in self._values.items() if k.startswith(prefix)}

    def close(self) -> None:
        pass


class SQLiteSpendStore:
    """The budget table in the breakers' SQLite file: ``BEGIN IMMEDIATE`` makes read-decide-write atomic."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_seconds: float = 30.0) -> None:
        self._db = SqliteTable(
            path,
            f"CREATE TABLE IF NOT EXISTS {BUDGET_TABLE} (scope TEXT PRIMARY KEY, value REAL NOT NULL, "
            "updated_at REAL NOT NULL)",
            busy_timeout_seconds=busy_timeout_seconds,
        )
        self.path, self._lock = self._db.path, self._db.lock

    def _connection(self) -> sqlite3.Connection:
        return self._db.connection()

    def update(self, keys: Sequence[str], change: Callable[[Values], tuple[Values, _R]]) -> _R:
        with self._db.write() as conn:
            new, result = change(self._select(conn, keys))
            for key, value in new.items():
                conn.execute(
                    f"INSERT INTO {BUDGET_TABLE} (scope, value, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT(scope) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (key, value, time.time()),
                )
        return result

    @staticmethod
    def _select(conn: sqlite3.Connection, keys: Sequence[str]) -> Values:
        values = dict.fromkeys(keys, 0.0)
        if keys:
            marks = ",".join("?" * len(keys))
            rows = conn.execute(f"SELECT scope, value FROM {BUDGET_TABLE} WHERE scope IN ({marks})", tuple(keys))
            values.update({scope: float(value) for scope, value in rows})
        return values

    def read(self, keys: Sequence[str]) -> Values:
        with self._lock:
            return self._select(self._connection(), keys)

    def read_prefix(self, prefix: str) -> Values:
        with self._lock:
            rows = self._connection().execute(
                f"SELECT scope, value FROM {BUDGET_TABLE} WHERE substr(scope, 1, ?) = ?", (len(prefix), prefix)
            )
            return {scope: float(value) for scope, value in rows}

    def close(self) -> None:
        self._db.close()


class PostgresSpendStore:
    """The budget table in the breakers' PostgreSQL database: rows locked ``FOR UPDATE`` in key order."""

    def __init__(self, dsn: str, table: str = BUDGET_TABLE) -> None:
        # synchronous_commit off, for this session only: a commit returns before its WAL record is flushed.
        # Locks and atomicity are unchanged (no worker can pass a cap); a server crash may forget the last
        # few milliseconds of spend, which costs far less than an fsync per provider call (BENCHMARKS.md).
        self._db = PostgresTable(
            dsn,
            table,
            "scope TEXT PRIMARY KEY, value DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL",
            session_setup=["SET synchronous_commit = off"],
        )
        self.dsn, self.table, self._lock = dsn, self._db.table, self._db.lock

    def _connection(self) -> Any:
        return self._db.connection()

    def _sql(self, template: str) -> Any:
        return self._db.sql(template)

    def update(self, keys: Sequence[str], change: Callable[[Values], tuple[Values, _R]]) -> _R:
        from psycopg2.extras import execute_values

        ordered = sorted(set(keys))  # one lock order for every process: no deadlock between two scopes
        with self._lock:
            conn = self._connection()
            with conn, conn.cursor() as cur:  # one transaction: commit on success, rollback on error
                now = time.time()
                execute_values(
                    cur,
                    self._sql(
                        "INSERT INTO {table} (scope, value, updated_at) VALUES %s ON CONFLICT (scope) DO NOTHING"
                    ),
                    [(key, 0.0, now) for key in ordered],
                )
                cur.execute(
                    self._sql("SELECT scope, value FROM {table} WHERE scope = ANY(%s) ORDER BY scope FOR UPDATE"),
                    (ordered,),
                )
                current = dict.fromkeys(keys, 0.0)
                current.update({scope: float(value) for scope, value in cur.fetchall()})
                new, result = change(current)
                if new:
                    execute_values(
                        cur,
                        self._sql(
                            "INSERT INTO {table} (scope, value, updated_at) VALUES %s ON CONFLICT (scope)"
                            " DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at"
                        ),
                        [(key, value, now) for key, value in sorted(new.items())],
                    )
            return result

    def read(self, keys: Sequence[str]) -> Values:
        with self._lock:
            conn = self._connection()
            with conn, conn.cursor() as cur:
                cur.execute(self._sql("SELECT scope, value FROM {table} WHERE scope = ANY(%s)"), (list(keys),))
                found = {scope: float(value) for scope, value in cur.fetchall()}
        return {k: found.get(k, 0.0) for k in keys}

    def read_prefix(self, prefix: str) -> Values:
        with self._lock:
            conn = self._connection()
            with conn, conn.cursor() as cur:
                cur.execute(
                    self._sql("SELECT scope, value FROM {table} WHERE left(scope, %s) = %s"), (len(prefix), prefix)
                )
                return {scope: float(value) for scope, value in cur.fetchall()}

    def close(self) -> None:
        self._db.close()


def spend_store_from_url(url: str) -> SpendStore:
    """The spend store in the database a breaker store URL names (``breaker.store_from_url``'s schemes)."""
    kind, location = parse_store_url(url, "budget")
    if kind == "sqlite":
        return SQLiteSpendStore(location)
    if kind == "postgresql":
        return PostgresSpendStore(location)
    return MemorySpendStore()


LIVE_NAMESPACE = "live"


def day_key(now: float, namespace: str = LIVE_NAMESPACE) -> str:
    """``day:2026-11-30`` (live) or ``day:simulated:2026-11-30``: the UTC day's total in ``namespace``."""
    day = datetime.fromtimestamp(now, UTC).date().isoformat()
    return f"day:{day}" if namespace == LIVE_NAMESPACE else f"day:{namespace}:{day}"


class SpendLedger:
    """The executor's view of the money: the caps for this run and for today.

    ``clock`` is epoch seconds (the day boundary is UTC midnight). A store failure while reserving propagates
    (the step fails as an environment failure and is retried: a cap nobody can check is not a cap); one while
    settling is logged (the call has happened and its answer is worth keeping).

    ``namespace`` keeps the daily totals of different modes apart: a simulated drill spends play money and
    must not eat the live fleet's daily cap in a shared store (run totals are per run id already).
    """

    def __init__(
        self,
        store: SpendStore,
        caps: BudgetCaps | None = None,
        *,
        run_id: str | None = None,
        clock: Callable[[], float] = time.time,
        namespace: str = LIVE_NAMESPACE,
    ) -> None:
        self.store = store
        self.caps = caps or BudgetCaps()
        self.run_id = run_id
        self._clock = clock
        self.namespace = namespace

    def _day_key(self) -> str:
        return day_key(self._clock(), self.namespace)

    def scopes(self) -> list[Scope]:
        scopes: list[Scope] = []
        if self.caps.run_usd is not None and self.run_id:
            scopes.append(Scope(f"run:{self.run_id}", f"per-run (run {self.run_id})", self.caps.run_usd))
        if self.caps.daily_usd is not None:
            key = self._day_key()
            scopes.append(Scope(key, f"daily ({key.removeprefix('day:')} UTC)", self.caps.daily_usd))
        return scopes

    def _tracked_keys(self, stage: str | None = None) -> list[str]:
        # Spend is recorded for the run (and its stage) and the day even without caps, so a cap set later sees
        # today's spend and the run's summary has its per-stage figures.
        keys = [self._day_key()]
        if self.run_id:
            keys[:0] = [run_key(self.run_id)] + ([stage_key(self.run_id, stage)] if stage else [])
        return keys

    def reserve(self, amount_usd: float | None, *, stage: str | None = None) -> Reservation | Refusal:
        """Set ``amount_usd`` aside on every tracked scope, or the refusal of the first capped scope it breaks.

        Without caps nothing is set aside (the reservation is of 0; the settlement adds the real cost).
        """
        scopes = self.scopes()
        keys = tuple(self._tracked_keys(stage))
        premium = premium_key(self.run_id, stage) if self.run_id and stage else None
        if not scopes:
            return Reservation(keys, 0.0, premium)

        def change(spent: Values) -> tuple[Values, Reservation | Refusal]:
            refusal = decide_reservation(spent, scopes, amount_usd)
            if refusal is not None:
                return {}, refusal
            amount = amount_usd or 0.0  # not None here: an unpriced amount fits no cap
            return {k: spent[k] + amount for k in keys}, Reservation(keys, amount, premium)

        return self.store.update(keys, change)

    def settle(self, reservation: Reservation, actual_usd: float | None, *, premium_usd: float | None = None) -> None:
        """Replace the reservation by the call's real cost (an unpriced cost keeps the reservation) and add
        ``premium_usd`` (what the chain's first model would have cost less) to the stage's fallback premium."""
        real = reservation.amount_usd if actual_usd is None else actual_usd
        delta = real - reservation.amount_usd
        extra = premium_usd if premium_usd and reservation.premium_key else 0.0
        if delta == 0.0 and not extra:
            return
        keys = list(reservation.keys) + ([reservation.premium_key] if extra and reservation.premium_key else [])

        def change(spent: Values) -> tuple[Values, None]:
            new = {k: max(0.0, spent[k] + delta) for k in reservation.keys}
            if extra and reservation.premium_key:
                new[reservation.premium_key] = spent[reservation.premium_key] + extra
            return new, None

        try:
            self.store.update(keys, change)
        except Exception:  # the call happened; a lost settlement must not fail the stage that paid for it
            logger.warning("could not settle a budget reservation", exc_info=True)

    def spent(self) -> dict[str, float]:
        """USD spent (and reserved) for this run and today: ``{"run": ..., "day": ...}``."""
        values = self.store.read(self._tracked_keys())
        out = {"day": values[self._day_key()]}
        if self.run_id:
            out["run"] = values[run_key(self.run_id)]
        return out


class BudgetExceededError(PermanentProviderError):
    """No model of the stage's chain fits what is left of a spending cap: the step fails, not retried.

    The message names the cap, the spend so far and the call refused (``Refusal.describe``).
    """

    code = "budget_exceeded"

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"stage {stage!r}: {detail}", error_code=self.code)
        self.stage = stage
