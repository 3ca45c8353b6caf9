"""The source registry: each partition owns a copy of the file it was made from.

Copying the file under ``$CINEFORGE_DATA/sources/<partition>/`` makes a partition self-contained:
the UI, a schedule or a Celery worker on another host can re-materialize it without knowing where the
user's original file lived.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cineforge_assets.paths import partition_key_for, sources_dir
from cineforge_assets.screenplay.formats.errors import NotARegularFileError
from cineforge_assets.screenplay.formats.limits import SourceLimits, check_size

_COPY_CHUNK = 1024 * 1024
_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass(frozen=True, slots=True)
class CopiedSource:
    """A file copied into the registry: where it is, its SHA-256 and size as copied."""

    path: Path
    sha256: str
    size: int


def copy_source(
    source: Path, target: Path, *, limits: SourceLimits | None = None, follow_symlinks: bool = False
) -> CopiedSource:
    """Stream ``source`` into ``target`` atomically, hashing on the way; refuse it before copying anything
    when it is not a regular file (a link unless ``follow_symlinks``) or is over the size limit.

    The checks run on the open descriptor (``fstat``), so the file checked is the file copied; the copy
    stops as soon as it passes the limit, so a file that grows meanwhile costs at most one chunk more.
    Readers of ``target`` see the old file or the whole new one (temporary dotfile, fsync, rename).
    """
    source, target = Path(source), Path(target)
    limits = limits or SourceLimits.from_env()
    guess = source.suffix.lower().lstrip(".") or "text"
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(source, flags)
    except OSError as exc:
        if not follow_symlinks and os.path.islink(source):
            raise NotARegularFileError(source, guess, "it is a symbolic link; links are not followed.") from exc
        raise
    with os.fdopen(fd, "rb") as reader:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFileError(source, guess, "it is not a regular file (a directory, device or pipe).")
        check_size(source, guess, info.st_size, limits)
        target.parent.mkdir(parents=True, exist_ok=True)
        out_fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(out_fd, "wb") as writer:
                while chunk := reader.read(_COPY_CHUNK):
                    size += len(chunk)
                    check_size(source, guess, size, limits)
                    digest.update(chunk)
                    writer.write(chunk)
                writer.flush()
                os.fsync(writer.fileno())
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; workers may run as other users
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return CopiedSource(path=target, sha256=digest.hexdigest(), size=size)


def register_source(
    path: Path, *, root: Path | None = None, limits: SourceLimits | None = None, follow_symlinks: bool = False
) -> str:
    """Copy ``path`` into the registry (``copy_source``) and return its partition key."""
    path = Path(path)
    key = partition_key_for(path.name)
    folder = sources_dir(root) / key
    target = folder / path.name
    copy_source(path, target, limits=limits, follow_symlinks=follow_symlinks)
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
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
