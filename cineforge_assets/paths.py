"""Where CineForge keeps its files.

Everything lives under one data root (``CINEFORGE_DATA``, default ``./data``) so a deployment can point
every worker at the same shared volume with one variable.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path


def data_root() -> Path:
    return Path(os.environ.get("CINEFORGE_DATA", "data")).expanduser().resolve()


def artifacts_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "artifacts"


def sources_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "sources"


def inbox_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "inbox"


def telemetry_path(root: Path | None = None) -> Path:
    return (root or data_root()) / "telemetry" / "events.jsonl"


_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


def partition_key_for(file_name: str) -> str:
    """A safe, stable partition key from a file name: ``Big Fish (v2).pdf`` -> ``big-fish-v2``.

    The extension is dropped so re-delivering a script in another format updates the same partition.
    """
    stem = Path(file_name).stem
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_STRIP.sub("-", ascii_stem.lower()).strip("-")
    return slug[:80] or "untitled"
