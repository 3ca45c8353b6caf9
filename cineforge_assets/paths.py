"""Where CineForge keeps its files.

Everything lives under one data root (``CINEFORGE_DATA``, default ``./data``) so a deployment can point
every worker at the same shared volume with one variable. The root and the places the resources write
(artifacts, telemetry) are defined in ``resources.data_root`` (the resources read them without importing
this package) and named here too, so the pipeline's code finds every path in one module.
"""

from __future__ import annotations

from pathlib import Path

from resources.data_root import artifacts_dir, data_root, telemetry_path

__all__ = ["data_root", "artifacts_dir", "telemetry_path", "sources_dir", "inbox_dir", "state_dir"]


def sources_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "sources"


def inbox_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "inbox"


def state_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "state"
