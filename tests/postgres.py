"""A private PostgreSQL database on the machine's server, dropped afterwards (tests and bench scripts).

Services are shared by sessions and CI on a machine, so nothing writes to a database it did not create.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}


class PostgresUnavailable(RuntimeError):
    """The machine's PostgreSQL server did not answer."""


@contextmanager
def scratch_database(prefix: str = "cineforge_test", *, connect_timeout: int = 5) -> Iterator[str]:
    """Create ``<prefix>_<uuid>``, yield its DSN, drop it (``WITH (FORCE)``: leftover sessions too)."""
    import psycopg2
    from psycopg2 import sql

    try:
        admin = psycopg2.connect(**ADMIN, connect_timeout=connect_timeout)
    except psycopg2.OperationalError as exc:
        raise PostgresUnavailable(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}") from exc
    name = f"{prefix}_{uuid.uuid4().hex}"
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()
