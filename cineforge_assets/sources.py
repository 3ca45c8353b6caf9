"""The source registry: each partition owns copies of the files it was made from.

Copying the file under ``$CINEFORGE_DATA/sources/<partition>/`` makes a partition self-contained:
the UI, a schedule or a Celery worker on another host can re-materialize it without knowing where the
user's original file lived.

Layout of one partition (content-addressed, so concurrent registrations never touch each other's file)::

    sources/<partition>/
        current.json                {"name", "sha256", "file"}: the version a run without tags reads
        <sha256>/<original name>    one folder per content; never rewritten, never deleted by registration

A run is tagged with the exact version it was requested for (``SOURCE_PATH_TAG``, relative to the data
root, and ``SOURCE_SHA256_TAG``); ``raw_input`` reads that file and checks its hash, so a later drop for
the same partition cannot change what an earlier run reads. Folders written before this layout (one
file directly under ``sources/<partition>/``) are still read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from cineforge_assets.partitions import partition_key_for, source_stem
from cineforge_assets.paths import data_root, sources_dir, state_dir
from cineforge_assets.run_tags import SOURCE_PATH_TAG, SOURCE_SHA256_TAG
from cineforge_assets.screenplay.formats.errors import NotARegularFileError
from cineforge_assets.screenplay.formats.limits import SourceLimits, check_size
from resources.atomic_files import atomic_write_bytes, atomic_writer

MANIFEST_NAME = "current.json"
REPLACE_ENV = "CINEFORGE_REPLACE_SOURCES"
_COPY_CHUNK = 1024 * 1024


class SourceRegistryError(ValueError):
    """The registry refuses a file or cannot vouch for a stored one; the message says what to do."""


class SourceConflictError(SourceRegistryError):
    """A different source already owns the partition key this file maps to."""

    def __init__(self, partition_key: str, registered_name: str, new_name: str) -> None:
        self.partition_key = partition_key
        self.registered_name = registered_name
        self.new_name = new_name
        super().__init__(
            f"{new_name}: partition {partition_key!r} already holds a different source, "
            f"{registered_name!r}; refusing to replace it. Rename the file, or replace the source on "
            f"purpose (`cineforge ingest --replace`, or {REPLACE_ENV}=1 for the inbox)"
        )


class SourceMismatchError(SourceRegistryError):
    """The stored source is not the version a run was requested for (moved, edited or tampered with)."""


@dataclass(frozen=True, slots=True)
class RegisteredSource:
    """One stored version of a partition's source."""

    partition_key: str
    name: str
    sha256: str
    path: Path

    def relative_path(self, root: Path | None = None) -> str:
        """The path relative to the data root: what runs are tagged with (hosts may mount it elsewhere)."""
        return self.path.relative_to(root or data_root()).as_posix()

    def run_tags(self, root: Path | None = None) -> dict[str, str]:
        return {SOURCE_PATH_TAG: self.relative_path(root), SOURCE_SHA256_TAG: self.sha256}


def replace_sources_from_env(environ: Mapping[str, str] = os.environ) -> bool:
    """``CINEFORGE_REPLACE_SOURCES=1``: the inbox may replace a partition's source with a differently
    named file that maps to the same key (off by default: such a drop is refused)."""
    return environ.get(REPLACE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


@contextmanager
def partition_lock(partition_key: str, root: Path | None = None) -> Iterator[None]:
    """Hold the partition's lock: one registration at a time per partition.

    An ``fcntl`` lock (``filelock``) on ``$CINEFORGE_DATA/state/locks/source-<key>.lock``, so it works
    across processes (CLI, sensor, workers) on one host and on shared volumes that honour POSIX locks.
    It lives outside ``sources/`` so a refused file leaves nothing behind in the registry."""
    folder = state_dir(root) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / f"source-{partition_key}.lock")):
        yield


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
    Readers of ``target`` see the old file or the whole new one (``atomic_writer``).
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
        digest, size = hashlib.sha256(), 0
        with atomic_writer(target, suffix=".part") as writer:
            while chunk := reader.read(_COPY_CHUNK):
                size += len(chunk)
                check_size(source, guess, size, limits)
                digest.update(chunk)
                writer.write(chunk)
    return CopiedSource(path=target, sha256=digest.hexdigest(), size=size)


def _store_version(path: Path, folder: Path, *, limits: SourceLimits | None, follow_symlinks: bool) -> tuple[str, Path]:
    """Copy ``path`` (``copy_source``: checks, streaming, hashing) into ``folder/<sha256>/<name>``.

    The hash is known only after the copy, so the copy lands in a private staging folder first and is
    then renamed into place; an identical version already there is replaced by the same bytes."""
    staging = folder / f".incoming.{uuid.uuid4().hex}"
    try:
        copied = copy_source(path, staging / path.name, limits=limits, follow_symlinks=follow_symlinks)
        target = folder / copied.sha256 / path.name
        target.parent.mkdir(exist_ok=True)
        os.replace(copied.path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return copied.sha256, target


def _read_manifest(folder: Path, partition_key: str) -> RegisteredSource | None:
    manifest = folder / MANIFEST_NAME
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _legacy_source(folder, partition_key)
    except ValueError as exc:
        raise SourceMismatchError(f"{manifest}: damaged source manifest ({exc}); register the file again") from exc
    return RegisteredSource(
        partition_key=partition_key,
        name=str(data["name"]),
        sha256=str(data["sha256"]),
        path=folder / str(data["file"]),
    )


def _legacy_source(folder: Path, partition_key: str) -> RegisteredSource | None:
    """A folder from before content addressing: one file directly under ``sources/<partition>/``."""
    if not folder.is_dir():
        return None
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST_NAME
    )
    if not files:
        return None
    return RegisteredSource(partition_key, files[0].name, file_sha256(files[0]), files[0])


def register_source_version(
    path: Path,
    *,
    root: Path | None = None,
    replace: bool = False,
    limits: SourceLimits | None = None,
    follow_symlinks: bool = False,
) -> RegisteredSource:
    """Store ``path`` as the current version of its partition's source and return that version.

    ``copy_source`` refuses a link (unless ``follow_symlinks``), a non-regular file or one over ``limits``
    before anything is stored. Under the partition's lock: refuse (``SourceConflictError``) when the
    partition already holds a source with another stem, unless ``replace``; copy the bytes to their
    content-addressed place; point ``current.json`` at them. Earlier versions stay, so runs requested for
    them still read them.
    """
    path = Path(path)
    key = partition_key_for(path.name)
    folder = sources_dir(root) / key
    with partition_lock(key, root):
        current = _read_manifest(folder, key)
        if current is not None and not replace and source_stem(current.name) != source_stem(path.name):
            raise SourceConflictError(key, current.name, path.name)
        sha, stored = _store_version(path, folder, limits=limits, follow_symlinks=follow_symlinks)
        manifest = {"name": path.name, "sha256": sha, "file": stored.relative_to(folder).as_posix()}
        atomic_write_bytes(folder / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return RegisteredSource(key, path.name, sha, stored)


def register_source(
    path: Path,
    *,
    root: Path | None = None,
    replace: bool = False,
    limits: SourceLimits | None = None,
    follow_symlinks: bool = False,
) -> str:
    """Register ``path`` (see ``register_source_version``) and return its partition key."""
    return register_source_version(
        path, root=root, replace=replace, limits=limits, follow_symlinks=follow_symlinks
    ).partition_key


def current_source(partition: str, *, root: Path | None = None) -> RegisteredSource:
    """The version of ``partition``'s source that a run without source tags reads."""
    folder = sources_dir(root) / partition
    current = _read_manifest(folder, partition)
    if current is None:
        raise FileNotFoundError(
            f"No source file registered for partition {partition!r} (looked in {folder}); "
            "run `cineforge ingest FILE` or drop the file into the inbox"
        )
    return current


def source_for(partition: str, *, root: Path | None = None) -> Path:
    return current_source(partition, root=root).path


def tagged_source(partition: str, tags: Mapping[str, str], *, root: Path | None = None) -> RegisteredSource:
    """The version a run was requested for (its source tags), else the partition's current version.

    A tagged path must lie in the partition's own source folder: a tag edited in the UI must not make
    ``raw_input`` read an arbitrary file from the host."""
    relative = tags.get(SOURCE_PATH_TAG)
    if not relative:
        return current_source(partition, root=root)
    base = (root or data_root()).resolve()
    path = (base / relative).resolve()
    folder = (sources_dir(base) / partition).resolve()
    if not path.is_relative_to(folder):
        raise SourceMismatchError(
            f"run tag {SOURCE_PATH_TAG}={relative!r} is outside the source folder of partition {partition!r}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the source version this run was requested for is gone")
    expected = tags.get(SOURCE_SHA256_TAG) or path.parent.name
    return RegisteredSource(partition, path.name, expected, path)


def verify_source_hash(source: RegisteredSource, actual_sha256: str) -> None:
    """Raise ``SourceMismatchError`` when the bytes read are not the version the run was requested for."""
    if actual_sha256 != source.sha256:
        raise SourceMismatchError(
            f"{source.path}: the source file changed after the run was requested "
            f"(expected sha256 {source.sha256[:12]}, read {actual_sha256[:12]}); register the file again"
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as reader:
        while chunk := reader.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
