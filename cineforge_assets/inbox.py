"""What the inbox sensor decides about the files in ``$CINEFORGE_DATA/inbox/`` (no Dagster here).

A file dropped into the inbox becomes a partition and a pipeline run, once per content: the sensor's
cursor remembers, per file name, the content hash it last acted on. Rules, in the order they apply:

* temporary and partial files are ignored silently: dotfiles, ``~$`` lock files, ``*.tmp``, ``*.part``,
  ``*.crdownload``, ``*.swp``, ``*~`` (browsers, Word and editors write these while saving);
* a file modified less than ``settle_seconds`` ago is left for a later tick (it may still be copying);
  the comparison is against an injected ``now``, so tests move time instead of sleeping;
* a file whose size and mtime are what the cursor last saw is unchanged: nothing to do, nothing read;
* a file over ``max_bytes``, with an unsupported extension, or whose bytes are not a screenplay format
  (``formats.detect``) is refused, with the reason logged once per version of the file;
* a file whose size or mtime changed but whose SHA-256 did not (``touch``, a re-copy) is unchanged;
* anything else is accepted: a new partition key (``partitions.partition_key_for``) and a run keyed
  ``name:sha256``, so a changed file runs again and the same content never runs twice.

Two files that slug to the same partition key in one tick (``ledger.pdf`` and ``ledger.fountain``):
the newest wins, the others are recorded as superseded so they do not trigger later on their own.
Cursor entries of files that left the inbox are dropped, keeping the cursor as small as the inbox.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cineforge_assets.partitions import partition_key_for
from cineforge_assets.screenplay.formats.detect import detect_format
from cineforge_assets.screenplay.formats.errors import SourceError

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".fountain", ".spmd", ".txt", ".fdx", ".pdf", ".docx"})
TEMPORARY_SUFFIXES: tuple[str, ...] = (".tmp", ".part", ".crdownload", ".swp", ".partial", ".download", "~")
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_SETTLE_SECONDS = 10.0
CURSOR_VERSION = 1

SkipKind = Literal["temporary", "settling", "unchanged", "too_large", "unsupported", "superseded"]
# Kinds that are decided once per version of a file and remembered in the cursor.
REFUSALS: frozenset[str] = frozenset({"too_large", "unsupported"})


@dataclass(frozen=True, slots=True)
class InboxPolicy:
    """Limits of the inbox: the largest file accepted and how long a file must sit still first."""

    max_bytes: int = DEFAULT_MAX_BYTES
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    extensions: frozenset[str] = SUPPORTED_EXTENSIONS

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        if self.settle_seconds < 0:
            raise ValueError("settle_seconds must be >= 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> InboxPolicy:
        """``CINEFORGE_INBOX_MAX_MB`` (default 50) and ``CINEFORGE_INBOX_SETTLE_SECONDS`` (default 10)."""
        max_mb = float(environ.get("CINEFORGE_INBOX_MAX_MB", DEFAULT_MAX_BYTES / (1024 * 1024)))
        settle = float(environ.get("CINEFORGE_INBOX_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS))
        return cls(max_bytes=int(max_mb * 1024 * 1024), settle_seconds=settle)


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """A regular file as listed in the inbox."""

    path: Path
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def fingerprint(self) -> str:
        """Size and mtime: what a copy in progress or an edit changes, readable without the bytes."""
        return f"{self.size}:{self.mtime_ns}"


@dataclass(frozen=True, slots=True)
class SeenFile:
    """What the cursor remembers about one file name."""

    fingerprint: str
    sha256: str | None = None
    refused: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"fp": self.fingerprint}
        if self.sha256:
            out["sha256"] = self.sha256
        if self.refused:
            out["refused"] = self.refused
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SeenFile:
        sha, refused = data.get("sha256"), data.get("refused")
        return cls(
            fingerprint=str(data["fp"]),
            sha256=str(sha) if sha else None,
            refused=str(refused) if refused else None,
        )


@dataclass(frozen=True, slots=True)
class InboxCursor:
    """The sensor cursor: file name -> what was last decided about it. Serialized as JSON."""

    files: Mapping[str, SeenFile] = field(default_factory=dict)

    def to_json(self) -> str:
        files = {name: seen.to_json() for name, seen in sorted(self.files.items())}
        return json.dumps({"v": CURSOR_VERSION, "files": files}, separators=(",", ":"), sort_keys=True)

    def with_entry(self, name: str, seen: SeenFile | None) -> InboxCursor:
        """A copy with ``name`` set to ``seen`` (or forgotten when None)."""
        files = dict(self.files)
        if seen is None:
            files.pop(name, None)
        else:
            files[name] = seen
        return InboxCursor(files)

    @classmethod
    def from_json(cls, text: str | None) -> InboxCursor:
        """Parse a cursor; an empty, foreign or damaged cursor starts afresh (run keys still dedupe)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            files = data["files"] if data.get("v") == CURSOR_VERSION else {}
            return cls({str(name): SeenFile.from_json(seen) for name, seen in files.items()})
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls()


@dataclass(frozen=True, slots=True)
class AcceptedFile:
    """A new or changed screenplay to register and run."""

    entry: InboxEntry
    sha256: str
    source_format: str
    partition_key: str

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def run_key(self) -> str:
        return f"{self.entry.name}:{self.sha256}"


@dataclass(frozen=True, slots=True)
class SkippedFile:
    name: str
    kind: SkipKind
    reason: str
    # True the first time this decision is made about this version of the file (log it then only).
    new: bool = True


@dataclass(frozen=True, slots=True)
class InboxScan:
    accepted: list[AcceptedFile]
    skipped: list[SkippedFile]
    cursor: InboxCursor

    def summary(self) -> str:
        """One line for ``SkipReason``: why this tick requested nothing."""
        if not self.accepted and not self.skipped:
            return "inbox is empty"
        parts = [f"{len(self.accepted)} file(s) to run"] if self.accepted else ["no new or changed files"]
        unchanged = sum(1 for s in self.skipped if s.kind == "unchanged")
        if unchanged:
            parts.append(f"{unchanged} already processed")
        for skip in self.skipped:
            if skip.kind not in ("unchanged", "temporary"):
                parts.append(f"{skip.name}: {skip.reason}")
        temporary = sum(1 for s in self.skipped if s.kind == "temporary")
        if temporary:
            parts.append(f"{temporary} temporary file(s) ignored")
        return "; ".join(parts)


# ------------------------------------------------------------------------------------ pure decisions


def temporary_reason(name: str) -> str | None:
    """Why ``name`` is a temporary or partial file (never a screenplay), or None."""
    if name.startswith("."):
        return "hidden file"
    if name.startswith("~$"):
        return "office lock file"
    lowered = name.lower()
    for suffix in TEMPORARY_SUFFIXES:
        if lowered.endswith(suffix):
            return f"partial/temporary file ({suffix})"
    return None


def settling_reason(entry: InboxEntry, now: float, policy: InboxPolicy) -> str | None:
    """Why ``entry`` must wait (modified too recently), or None. ``now`` is epoch seconds."""
    age = now - entry.mtime_ns / 1e9
    if age < policy.settle_seconds:
        return f"modified {max(age, 0.0):.1f}s ago; waiting until it is {policy.settle_seconds:g}s old"
    return None


def refusal_before_reading(entry: InboxEntry, policy: InboxPolicy) -> str | None:
    """Why ``entry`` is refused on its name and size alone, or None."""
    if entry.size > policy.max_bytes:
        return f"too large: {entry.size:,} bytes > limit {policy.max_bytes:,} bytes (CINEFORGE_INBOX_MAX_MB)"
    suffix = entry.path.suffix.lower()
    if suffix not in policy.extensions:
        supported = " ".join(sorted(policy.extensions))
        return f"unsupported type {suffix or '(no extension)'!r}; supported: {supported}"
    return None


def resolve_collisions(accepted: Iterable[AcceptedFile]) -> tuple[list[AcceptedFile], list[AcceptedFile]]:
    """Split accepted files into (winners, superseded): one file per partition key, the newest."""
    by_key: dict[str, list[AcceptedFile]] = {}
    for item in accepted:
        by_key.setdefault(item.partition_key, []).append(item)
    winners: list[AcceptedFile] = []
    losers: list[AcceptedFile] = []
    for items in by_key.values():
        ordered = sorted(items, key=lambda a: (a.entry.mtime_ns, a.name), reverse=True)
        winners.append(ordered[0])
        losers.extend(ordered[1:])
    winners.sort(key=lambda a: a.name)
    return winners, losers


# ------------------------------------------------------------------------------------ file system


def list_inbox(folder: Path) -> list[InboxEntry]:
    """Regular files directly in ``folder`` (sub-folders are not descended), sorted by name."""
    if not folder.is_dir():
        return []
    entries: list[InboxEntry] = []
    for path in sorted(folder.iterdir()):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed between listing and stat
            continue
        if path.is_file():
            entries.append(InboxEntry(path=path, size=stat.st_size, mtime_ns=stat.st_mtime_ns))
    return entries


def scan_inbox(folder: Path, cursor: InboxCursor, *, now: float, policy: InboxPolicy) -> InboxScan:
    """Decide every file in ``folder`` against ``cursor``; return the decisions and the next cursor."""
    accepted: list[AcceptedFile] = []
    skipped: list[SkippedFile] = []
    next_files: dict[str, SeenFile] = {}
    for entry in list_inbox(folder):
        name = entry.name
        reason = temporary_reason(name)
        if reason:
            skipped.append(SkippedFile(name, "temporary", reason))
            continue
        previous = cursor.files.get(name)
        if previous is not None and previous.fingerprint == entry.fingerprint:
            next_files[name] = previous
            if previous.refused:
                kind = _refusal_kind(previous.refused)
                skipped.append(SkippedFile(name, kind, previous.refused, new=False))
            else:
                skipped.append(SkippedFile(name, "unchanged", "already processed", new=False))
            continue
        reason = settling_reason(entry, now, policy)
        if reason:
            if previous is not None:
                next_files[name] = previous  # keep what was decided until the new version settles
            skipped.append(SkippedFile(name, "settling", reason))
            continue
        reason = refusal_before_reading(entry, policy)
        if reason:
            next_files[name] = SeenFile(entry.fingerprint, refused=reason)
            skipped.append(SkippedFile(name, _refusal_kind(reason), reason))
            continue
        try:
            data = entry.path.read_bytes()
        except FileNotFoundError:
            continue
        sha = hashlib.sha256(data).hexdigest()
        if previous is not None and previous.sha256 == sha and not previous.refused:
            next_files[name] = replace(previous, fingerprint=entry.fingerprint)
            skipped.append(SkippedFile(name, "unchanged", "same content as already processed", new=False))
            continue
        try:
            source_format, _confidence = detect_format(entry.path, data)
        except SourceError as exc:
            refusal = f"not a screenplay we can read: {exc.problem}"
            next_files[name] = SeenFile(entry.fingerprint, sha256=sha, refused=refusal)
            skipped.append(SkippedFile(name, "unsupported", refusal))
            continue
        accepted.append(AcceptedFile(entry, sha, source_format, partition_key_for(name)))
    winners, losers = resolve_collisions(accepted)
    for item in winners:
        next_files[item.name] = SeenFile(item.entry.fingerprint, sha256=item.sha256)
    for item in losers:
        next_files[item.name] = SeenFile(item.entry.fingerprint, sha256=item.sha256)
        winner = next(w.name for w in winners if w.partition_key == item.partition_key)
        skipped.append(
            SkippedFile(item.name, "superseded", f"same partition {item.partition_key!r} as newer {winner}")
        )
    return InboxScan(winners, skipped, InboxCursor(next_files))


def _refusal_kind(reason: str) -> SkipKind:
    return "too_large" if reason.startswith("too large") else "unsupported"
