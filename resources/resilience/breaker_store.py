"""Where a provider circuit breaker's state is stored: atomic read-modify-write of one provider's
``BreakerRecord``, shared by every process (SQLite beside the Dagster instance by default, PostgreSQL for a
fleet across hosts, memory for tests and single-process tools).

The state machine that decides each change is ``breaker.py``; a store only makes the change atomic and
tells the time the decision is made at (see "Clocks" in ``breaker.py``'s docstring).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from resources.resilience.breaker_state import BreakerRecord
from resources.resilience.pg_table import PostgresTable
from resources.resilience.sqlite_table import SqliteTable
from resources.resilience.store_url import parse_store_url

DEFAULT_TABLE = "cineforge_breakers"

_R = TypeVar("_R")


class BreakerStore(Protocol):
    """Where breaker records live. ``update`` must be atomic across threads *and* processes."""

    def read(self, provider: str) -> BreakerRecord:
        """The provider's record, or a fresh closed record if there is none."""
        ...

    def read_all(self) -> dict[str, BreakerRecord]: ...

    def update(self, provider: str, change: Callable[[BreakerRecord], tuple[BreakerRecord, _R]]) -> _R:
        """Run ``change`` on the current record inside one transaction, store its new record, return its
        result. ``change`` may run again if the store retries, so it must be pure."""
        ...

    def close(self) -> None: ...

    # Time. Breaker decisions compare timestamps written by different processes; a store shared by several
    # hosts must give them one clock. The defaults below are for stores on one host, whose processes share
    # its clock: the caller's ``local_now`` is the store's time. ``PostgresBreakerStore`` overrides them
    # with the database's ``clock_timestamp()``, read inside the transaction that decides.

    def now(self, local_now: float) -> float:
        """The store's current time (epoch seconds)."""
        return local_now

    def read_at(self, provider: str, local_now: float) -> tuple[BreakerRecord, float]:
        """The provider's record and the store's time of the read."""
        return self.read(provider), self.now(local_now)

    def update_at(
        self, provider: str, change: Callable[[BreakerRecord, float], tuple[BreakerRecord, _R]], local_now: float
    ) -> _R:
        """``update`` whose ``change`` also gets the store's time, read inside the same transaction."""
        store_now = self.now(local_now)
        return self.update(provider, lambda current: change(current, store_now))

    @staticmethod
    def from_url(url: str) -> BreakerStore:
        """``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``postgresql://...``, ``memory://``."""
        return store_from_url(url)


class MemoryBreakerStore(BreakerStore):
    """Process-local store for unit tests and single-process tools; not shared across processes."""

    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._lock = threading.Lock()

    def read(self, provider: str) -> BreakerRecord:
        with self._lock:
            return self._records.get(provider, BreakerRecord())

    def read_all(self) -> dict[str, BreakerRecord]:
        with self._lock:
            return dict(self._records)

    def update(self, provider: str, change: Callable[[BreakerRecord], tuple[BreakerRecord, _R]]) -> _R:
        with self._lock:
            new, result = change(self._records.get(provider, BreakerRecord()))
            self._records[provider] = new
            return result

    def close(self) -> None:
        pass


class SQLiteBreakerStore(BreakerStore):
    """One SQLite file shared by every process on the host (the default, beside the Dagster instance).

    WAL lets readers proceed while one writer holds the lock; every update is a ``BEGIN IMMEDIATE``
    transaction (the write lock is taken before the read, so two processes cannot both read the same
    probe count); ``busy_timeout`` makes contenders wait instead of failing. A connection is opened per
    process (SQLite connections must not cross ``fork``) and shared by its threads under a lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_seconds: float = 30.0) -> None:
        self._db = SqliteTable(
            path,
            f"CREATE TABLE IF NOT EXISTS {DEFAULT_TABLE} (provider TEXT PRIMARY KEY, state TEXT NOT "
            "NULL, record TEXT NOT NULL, updated_at REAL NOT NULL)",
            busy_timeout_seconds=busy_timeout_seconds,
        )
        self.path, self._lock = self._db.path, self._db.lock

    def _connection(self) -> sqlite3.Connection:
        return self._db.connection()

    def read(self, provider: str) -> BreakerRecord:
        with self._lock:
            row = (
                self._connection()
                .execute(f"SELECT record FROM {DEFAULT_TABLE} WHERE provider = ?", (provider,))
                .fetchone()
            )
        return BreakerRecord.from_json(row[0]) if row else BreakerRecord()

    def read_all(self) -> dict[str, BreakerRecord]:
        with self._lock:
            rows = self._connection().execute(f"SELECT provider, record FROM {DEFAULT_TABLE}").fetchall()
        return {provider: BreakerRecord.from_json(text) for provider, text in rows}

    def update(self, provider: str, change: Callable[[BreakerRecord], tuple[BreakerRecord, _R]]) -> _R:
        with self._db.write() as conn:
            row = conn.execute(f"SELECT record FROM {DEFAULT_TABLE} WHERE provider = ?", (provider,)).fetchone()
            current = BreakerRecord.from_json(row[0]) if row else BreakerRecord()
            new, result = change(current)
            if new != current or row is None:
                conn.execute(
                    f"INSERT INTO {DEFAULT_TABLE} (provider, state, record, updated_at)"
                    " VALUES (?, ?, ?, ?)"
                    " ON CONFLICT(provider) DO UPDATE SET state = excluded.state,"
                    " record = excluded.record, updated_at = excluded.updated_at",
                    (provider, new.state, new.to_json(), time.time()),
                )
        return result

    def close(self) -> None:
        self._db.close()


class PostgresBreakerStore(BreakerStore):
    """Breaker records in a PostgreSQL table, for deployments whose processes span hosts.

    Each update is one transaction: ensure the row exists, ``SELECT ... FOR UPDATE`` it (row lock, so
    concurrent updates of one provider serialize while other providers proceed), read the database's
    ``clock_timestamp()``, decide, write, commit.

    ``database_clock=False`` makes the caller's clock the store's time instead (tests that drive the
    state machine with a fake clock on PostgreSQL; never for a fleet, whose hosts' clocks differ).
    """

    def __init__(self, dsn: str, table: str = DEFAULT_TABLE, *, database_clock: bool = True) -> None:
        self._db = PostgresTable(
            dsn,
            table,
            "provider TEXT PRIMARY KEY, state TEXT NOT NULL, record TEXT NOT NULL,"
            " updated_at DOUBLE PRECISION NOT NULL",
        )
        self.dsn, self.table, self._lock = dsn, self._db.table, self._db.lock
        self.database_clock = database_clock

    def _connection(self) -> Any:
        return self._db.connection()

    def _sql(self, template: str) -> Any:
        return self._db.sql(template)

    def read(self, provider: str) -> BreakerRecord:
        with self._lock:
            conn = self._connection()
            with conn, conn.cursor() as cur:
                cur.execute(self._sql("SELECT record FROM {table} WHERE provider = %s"), (provider,))
                row = cur.fetchone()
        return BreakerRecord.from_json(row[0]) if row else BreakerRecord()

    def read_all(self) -> dict[str, BreakerRecord]:
        with self._lock:
            conn = self._connection()
            with conn, conn.cursor() as cur:
                cur.execute(self._sql("SELECT provider, record FROM {table}"))
                rows = cur.fetchall()
        return {provider: BreakerRecord.from_json(text) for provider, text in rows}

    def update(self, provider: str, change: Callable[[BreakerRecord], tuple[BreakerRecord, _R]]) -> _R:
        return self.update_at(provider, lambda current, _now: change(current), time.time())

    # The database's clock, not the host's: hosts' clocks drift apart (a host 45 s fast took a half-open
    # probe 0 s into a 30 s cooldown; one 10 minutes slow waited 630 s). ``clock_timestamp()`` is the time
    # of the statement itself, read after the row lock is held: ``now()`` is the transaction's start,
    # which for a transaction that queued behind the lock can be earlier than the record it then reads.
    _NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"

    def now(self, local_now: float) -> float:
        if not self.database_clock:
            return local_now
        with self._lock:
            conn = self._connection()
            with conn, conn.cursor() as cur:
                cur.execute(f"SELECT {self._NOW}")
                return float(cur.fetchone()[0])

    def read_at(self, provider: str, local_now: float) -> tuple[BreakerRecord, float]:
        if not self.database_clock:
            return self.read(provider), local_now
        with self._lock:
            conn = self._connection()
            with conn, conn.cursor() as cur:
                cur.execute(
                    self._sql(f"SELECT {self._NOW}, (SELECT record FROM {{table}} WHERE provider = %s)"),
                    (provider,),
                )
                now, text = cur.fetchone()
        return (BreakerRecord.from_json(text) if text else BreakerRecord()), float(now)

    def update_at(
        self, provider: str, change: Callable[[BreakerRecord, float], tuple[BreakerRecord, _R]], local_now: float
    ) -> _R:
        fresh = BreakerRecord()
        with self._lock:
            conn = self._connection()
            with conn, conn.cursor() as cur:  # one transaction: commit on success, rollback on error
                cur.execute(
                    self._sql(
                        "INSERT INTO {table} (provider, state, record, updated_at)"
                        f" VALUES (%s, %s, %s, {self._NOW}) ON CONFLICT (provider) DO NOTHING"
                    ),
                    (provider, fresh.state, fresh.to_json()),
                )
                cur.execute(
                    self._sql("SELECT record FROM {table} WHERE provider = %s FOR UPDATE"), (provider,)
                )
                current = BreakerRecord.from_json(cur.fetchone()[0])
                now = local_now
                if self.database_clock:
                    # Its own statement, so the time is read once the row lock is ours (a lock wait included).
                    cur.execute(f"SELECT {self._NOW}")
                    now = float(cur.fetchone()[0])
                new, result = change(current, float(now))
                if new != current:
                    cur.execute(
                        self._sql(
                            "UPDATE {table} SET state = %s, record = %s, updated_at = %s WHERE provider = %s"
                        ),
                        (new.state, new.to_json(), float(now), provider),
                    )
            return result

    def close(self) -> None:
        self._db.close()


def store_from_url(url: str) -> BreakerStore:
    """Build a store from a URL (see ``BreakerStore.from_url``)."""
    kind, location = parse_store_url(url, "breaker")
    if kind == "sqlite":
        return SQLiteBreakerStore(location)
    if kind == "postgresql":
        return PostgresBreakerStore(location)
    return MemoryBreakerStore()


def default_store_url(dagster_home: str | os.PathLike[str] | None = None) -> str:
    """``sqlite:///<DAGSTER_HOME>/cineforge_breakers.sqlite`` (or under ``./.cineforge`` without one)."""
    home = dagster_home or os.environ.get("DAGSTER_HOME") or ".cineforge"
    return f"sqlite:///{Path(home).resolve() / 'cineforge_breakers.sqlite'}"
