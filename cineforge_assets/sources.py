"""The source registry: each partition owns a copy of the file it was made from.

Copying the file under ``$CINEFORGE_DATA/sources/<partition>/`` makes a partition self-contained:
the UI, a schedule or a Celery worker on another host can re-materialize it without knowing where the
user's original file lived.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cineforge_assets.paths import partition_key_for, sources_dir
from resources.io_manager import atomic_write_bytes


def register_source(path: Path, *, root: Path | None = None) -> str:
    """Copy ``path`` into the registry atomically and return its partition key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    key = partition_key_for(path.name)
    folder = sources_dir(root) / key
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    atomic_write_bytes(target, path.read_bytes())
    for stale in folder.iterdir():
        if stale != target and not stale.name.startswith("."):
            stale.unlink()
    return key


def source_for(partition: str, *, root: Path | None = None) -> Path:
    folder = sources_dir(root) / partition
    files = (
        sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith("."))
        if folder.exists()
        else []
    )
    if not files:
        raise FileNotFoundError(
            f"No source file registered for partition {partition!r} (looked in {folder}); "
            "run `cineforge ingest FILE` or drop the file into the inbox"
        )
    return files[0]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
