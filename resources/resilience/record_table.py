"""A fleet-wide table of JSON records, one per scope, each changed by one atomic read-modify-write.

The retry budget (``retry_budget.py``) and the fleet's call latencies (``latency_store.py``) each keep one
small record per scope that every process of the fleet reads and rewrites: in memory (one process), in the
breakers' SQLite file (one host; ``BEGIN IMMEDIATE`` serialises the host's writers) or in their PostgreSQL
database (many hosts; ``SELECT ... FOR UPDATE`` serialises them on the scope's row). The connection
plumbing is ``SqliteTable``/``PostgresTable``; what is written here once is the read-decide-write on top of
it, which the stores above would otherwise each repeat. A record is JSON text: its owner parses it.

The breaker store (the database's clock) and the spend ledger (several keys in one transaction) need more
than one record per change, and keep their own tables.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from resources.resilience.pg_table import PostgresTable
from resources.resilience.sqlite_table import SqliteTable
from resources.resilience.store_url import parse_store_url

R = TypeVar("R")

# ``change`` gets the stored text (None: no record yet) and returns the text to store and its own result.
Change = Callable[[str | None], tuple[str, R]]


class RecordStore(Protocol):
    def read(self, scope: str) -> str | None: ...

    def update(self, scope: str, change: Change[R]) -> R: ...

    def close(self) -> None: ...


class MemoryRecordStore:
    """One process's records (tests, and a resource without a shared store)."""

    def __init__(self) -> None:
        self._records: dict[str, str] = {}
        self._lock = threading.Lock()

    def read(self, scope: str) -> str | None:
        with self._lock:
            return self._records.get(scope)

    def update(self, scope: str, change: Change[R]) -> R:
        with self._lock:
            self._records[scope], result = change(self._records.get(scope))
            return result

    def close(self) -> None:
        pass


class SQLiteRecordStore:
    """``table`` in a SQLite file shared by the host's processes."""

    def __init__(self, path: str | os.PathLike[str], table: str, *, busy_timeout_seconds: float = 30.0) -> None:
        self.table = table
        self._db = SqliteTable(
            path,
            f"CREATE TABLE IF NOT EXISTS {table} (scope TEXT PRIMARY KEY, record TEXT NOT NULL, "
            "updated_at REAL NOT NULL)",
            busy_timeout_seconds=busy_timeout_seconds,
        )
        self.path = self._db.path

    def read(self, scope: str) -> str | None:
        with self._db.lock:
            row = self._db.connection().execute(
                f"SELECT record FROM {self.table} WHERE scope = ?", (scope,)
            ).fetchone()
        return row[0] or None if row else None

    def update(self, scope: str, change: Change[R]) -> R:
        with self._db.write() as conn:
            row = conn.execute(f"SELECT record FROM {self.table} WHERE scope = ?", (scope,)).fetchone()
            text, result = change(row[0] if row else None)
            conn.execute(
                f"INSERT INTO {self.table} (scope, record, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(scope) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
                (scope, text, time.time()),
            )
        return result

    def close(self) -> None:
        self._db.close()


class PostgresRecordStore:
    """``table`` in a PostgreSQL database shared by the fleet's hosts."""

    def __init__(self, dsn: str, table: str) -> None:
        self._db = PostgresTable(
            dsn, table, "scope TEXT PRIMARY KEY, record TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL"
        )
        self.dsn, self.table = dsn, self._db.table

    def read(self, scope: str) -> str | None:
        with self._db.lock:
            conn = self._db.connection()
            with conn, conn.cursor() as cur:
                cur.execute(self._db.sql("SELECT record FROM {table} WHERE scope = %s"), (scope,))
                row = cur.fetchone()
        return row[0] or None if row else None

    def update(self, scope: str, change: Change[R]) -> R:
        with self._db.lock:
            conn = self._db.connection()
            with conn, conn.cursor() as cur:
                # Lock the scope's row; a first writer creates it empty so that racing first writers
                # serialise on it too (a missing row cannot be locked).
                cur.execute(
                    self._db.sql(
                        "INSERT INTO {table} (scope, record, updated_at) VALUES (%s, '', %s)"
                        " ON CONFLICT (scope) DO NOTHING"
                    ),
                    (scope, time.time()),
                )
                cur.execute(self._db.sql("SELECT record FROM {table} WHERE scope = %s FOR UPDATE"), (scope,))
                stored: Any = cur.fetchone()[0]
                text, result = change(stored or None)
                cur.execute(
                    self._db.sql("UPDATE {table} SET record = %s, updated_at = %s WHERE scope = %s"),
                    (text, time.time(), scope),
                )
            return result

    def close(self) -> None:
        self._db.close()


def record_store_from_url(url: str, table: str, what: str) -> RecordStore:
    """``table`` in the store the breakers' URL names (``sqlite:///``, ``postgresql://`` or ``memory:``)."""
    kind, location = parse_store_url(url, what)
    if kind == "sqlite":
        return SQLiteRecordStore(location, table)
    if kind == "postgresql":
        return PostgresRecordStore(location, table)
    return MemoryRecordStore()
