"""The source registry: each partition owns copies of the files it was made from.

Copying the file under ``$CINEFORGE_DATA/sources/<partition>/`` makes a partition self-contained:
the UI, a schedule or a Celery worker on another host can re-materialize it without knowing where the
user's original file lived.

Layout of one partition (content-addressed, so concurrent registrations never touch each other's file)::

    sources/<partition>/
        .lock                       per-partition lock (fcntl via ``filelock``): one registration at a time
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
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from cineforge_assets.partitions import partition_key_for, source_stem
from cineforge_assets.paths import data_root, sources_dir
from resources.io_manager import atomic_write_bytes

SOURCE_PATH_TAG = "cineforge/source_path"
SOURCE_SHA256_TAG = "cineforge/sha256"
MANIFEST_NAME = "current.json"
LOCK_NAME = ".lock"
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
def partition_lock(folder: Path) -> Iterator[None]:
    """Hold the partition's lock: an ``fcntl`` lock on ``folder/.lock``, so it works across processes
    (CLI, sensor, workers) on one host and on shared volumes that honour POSIX locks."""
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / LOCK_NAME)):
        yield


def copy_and_hash(source: Path, target: Path) -> str:
    """Stream ``source`` into a new file ``target`` (fsynced) and return the SHA-256 of the bytes written.

    Hashing while copying means the hash describes exactly the stored bytes, even if the user's file
    changes during the copy."""
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("xb") as writer:
        while chunk := reader.read(_COPY_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def _store_version(path: Path, folder: Path) -> tuple[str, Path]:
    """Copy ``path`` into ``folder/<sha256>/<name>``; an identical version already there is kept."""
    tmp = folder / f".incoming.{uuid.uuid4().hex}.tmp"
    try:
        sha = copy_and_hash(path, tmp)
        target = folder / sha / path.name
        target.parent.mkdir(exist_ok=True)
        # Same name and same hash is the same bytes: os.replace over it changes nothing a reader sees.
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return sha, target


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


def register_source_version(path: Path, *, root: Path | None = None, replace: bool = False) -> RegisteredSource:
    """Store ``path`` as the current version of its partition's source and return that version.

    Under the partition's lock: refuse (``SourceConflictError``) when the partition already holds a
    source with another stem, unless ``replace``; copy the bytes to their content-addressed place;
    point ``current.json`` at them. Earlier versions stay, so runs requested for them still read them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    key = partition_key_for(path.name)
    folder = sources_dir(root) / key
    with partition_lock(folder):
        current = _read_manifest(folder, key)
        if current is not None and not replace and source_stem(current.name) != source_stem(path.name):
            raise SourceConflictError(key, current.name, path.name)
        sha, stored = _store_version(path, folder)
        manifest = {"name": path.name, "sha256": sha, "file": stored.relative_to(folder).as_posix()}
        atomic_write_bytes(folder / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return RegisteredSource(key, path.name, sha, stored)


def register_source(path: Path, *, root: Path | None = None, replace: bool = False) -> str:
    """Register ``path`` (see ``register_source_version``) and return its partition key."""
    return register_source_version(path, root=root, replace=replace).partition_key


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
