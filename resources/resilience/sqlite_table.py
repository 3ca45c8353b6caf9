"""One table of a host-wide store in a SQLite file, and this process's connection to it.

The breaker store, the spend ledger and the retry budget keep their tables in one SQLite file beside the
Dagster instance by default, and need the same plumbing: WAL (readers proceed while one writer holds the
lock), ``busy_timeout`` (contenders wait instead of failing), ``synchronous = NORMAL`` (WAL stays
consistent; a power loss may drop the last commits, never corrupt), the table created on first use, and
one connection per process shared by its threads under a lock. A connection inherited across ``fork`` is
never used or closed in the child (closing it could disturb the parent's locks), and a reference is
kept so garbage collection does not close it either. The standard library's ``sqlite3`` gives
connections, not this, so it is written here once, with the write transaction every store's
read-decide-write runs in (``write``: ``BEGIN IMMEDIATE`` takes the write lock before the read, so two processes
cannot both read the same state and both write).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SqliteTable:
    """``create`` is the whole ``CREATE TABLE IF NOT EXISTS ...`` statement of the store's table."""

    def __init__(self, path: str | os.PathLike[str], create: str, *, busy_timeout_seconds: float = 30.0) -> None:
        self.path = Path(path)
        self.lock = threading.Lock()
        self._create = create
        self._busy_timeout = busy_timeout_seconds
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._inherited: list[sqlite3.Connection] = []

    def connection(self) -> sqlite3.Connection:
        """This process's connection, opened (and the table created) on first use; hold ``lock``."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:
            self._inherited.append(self._conn)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(self._create)
        self._conn, self._pid = conn, os.getpid()
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """This process's connection inside one ``BEGIN IMMEDIATE`` transaction, under ``lock``: committed
        when the block ends, rolled back if it raises."""
        with self.lock:
            conn = self.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may already have rolled back (e.g. SQLITE_FULL)
                    conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self.lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
