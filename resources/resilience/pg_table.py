"""One PostgreSQL table of a fleet-wide store, and this process's connection to it.

The breaker store, the spend ledger and the retry budget each keep one table in the same PostgreSQL
database and need the same plumbing: a validated table name, the table created on first use (racing
processes included), one connection per process (a forked worker must not reuse its parent's socket),
a lock so a store's threads take turns on that connection, and SQL with the table name quoted.
psycopg2 gives connections, not this; an ORM or pool would be a second dependency for three tables of
one row per key, so it is written here once.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_table_name(table: str) -> str:
    """The name itself, if it is a plain SQL identifier (it is also quoted; this keeps it readable)."""
    if not _IDENTIFIER.match(table):
        raise ValueError(f"invalid table name {table!r}")
    return table


class PostgresTable:
    """``columns`` is the body of ``CREATE TABLE``; ``session_setup`` runs once per new connection."""

    def __init__(self, dsn: str, table: str, columns: str, *, session_setup: Sequence[str] = ()) -> None:
        self.dsn = dsn
        self.table = check_table_name(table)
        self.lock = threading.Lock()
        self._columns = columns
        self._session_setup = tuple(session_setup)
        self._conn: Any = None
        self._pid = 0

    def connection(self) -> Any:
        """This process's open connection, made (and the table created) on first use; hold ``lock``."""
        import psycopg2
        from psycopg2 import errors as pg_errors
        from psycopg2 import sql

        if self._conn is not None and not self._conn.closed and self._pid == os.getpid():
            return self._conn
        conn = psycopg2.connect(self.dsn)
        create = sql.SQL("CREATE TABLE IF NOT EXISTS {} (" + self._columns + ")").format(sql.Identifier(self.table))
        try:
            with conn, conn.cursor() as cur:
                cur.execute(create)
        except (pg_errors.UniqueViolation, pg_errors.DuplicateTable):
            pass  # another process created it concurrently (IF NOT EXISTS is not race-free)
        if self._session_setup:
            with conn, conn.cursor() as cur:
                for statement in self._session_setup:
                    cur.execute(statement)
        self._conn, self._pid = conn, os.getpid()
        return conn

    def sql(self, template: str) -> Any:
        """``template`` with ``{table}`` replaced by the quoted table name."""
        from psycopg2 import sql

        return sql.SQL(template).format(table=sql.Identifier(self.table))

    def close(self) -> None:
        with self.lock:
            if self._conn is not None and self._pid == os.getpid() and not self._conn.closed:
                self._conn.close()
            self._conn = None
