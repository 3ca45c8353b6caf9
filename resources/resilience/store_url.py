"""The URL that names the fleet-wide store (``sqlite:///path``, ``postgresql://...``, ``memory:``).

The breaker store, the spend ledger and the retry budget live in the same database, named by one URL;
each builds its own table from what this parse says.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

StoreKind = Literal["sqlite", "postgresql", "memory"]


def parse_store_url(url: str, what: str) -> tuple[StoreKind, str]:
    """``("sqlite", path)``, ``("postgresql", url)`` or ``("memory", "")``; ``what`` names the store in errors."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parts.path)
        # sqlite:///rel.db -> "/rel.db" -> "rel.db"; sqlite:////abs.db -> "//abs.db" -> "/abs.db"
        path = path[1:] if path.startswith("/") else path
        if not path or path == ":memory:":
            raise ValueError(f"a SQLite {what} store needs a file path (':memory:' is not shared)")
        return "sqlite", path
    if scheme in ("postgresql", "postgres"):
        return "postgresql", url
    if scheme == "memory":
        return "memory", ""
    raise ValueError(f"unsupported {what} store URL scheme {parts.scheme!r}")
