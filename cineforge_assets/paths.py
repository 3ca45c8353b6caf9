"""Where CineForge keeps its files.

Everything lives under one data root (``CINEFORGE_DATA``, default ``./data``) so a deployment can point
every worker at the same shared volume with one variable.
"""

from __future__ import annotations

import os
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


def state_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "state"
