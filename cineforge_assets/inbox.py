"""What the inbox sensor decides about the files in ``$CINEFORGE_DATA/inbox/`` (no Dagster here).

A file dropped into the inbox becomes a partition and a pipeline run, once per content: the sensor's
cursor remembers, per file name, the content hash it last acted on. Rules, in the order they apply:

* temporary and partial files are ignored silently: dotfiles, ``~$`` lock files, ``*.tmp``, ``*.part``,
  ``*.crdownload``, ``*.swp``, ``*~`` (browsers, Word and editors write these while saving);
* only regular files are read: a symbolic link (``shadow.txt -> /etc/shadow``), a pipe or a device is
  refused, and so is a file that cannot be read (``PermissionError``); one bad entry never stops the scan;
* a file modified less than ``settle_seconds`` ago is left for a later tick (it may still be copying);
  the comparison is against an injected ``now``, so tests move time instead of sleeping. A modification
  time in the future (a writer's clock ahead of ours) is treated as settled now, with a warning, instead
  of waiting for our clock to catch up;
* a file whose size and mtime are what the cursor last saw is unchanged: nothing to do, nothing read;
* a file over the size limit (``CINEFORGE_MAX_SOURCE_MB``, checked on ``lstat`` before reading), with an
  unsupported extension, whose bytes are not a screenplay format, or over a container limit (a
  decompression bomb: ``formats.limits``) is refused, with the reason logged once per version of the file.
  These are the checks ``cineforge ingest`` and the reader run, in the same words;
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
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cineforge_assets.partitions import partition_key_for
from cineforge_assets.screenplay.formats.errors import NotARegularFileError, SourceError, SourceLimitError
from cineforge_assets.screenplay.formats.limits import SourceLimits, size_problem
from cineforge_assets.screenplay.formats.reader import read_bounded, screen_source

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".fountain", ".spmd", ".txt", ".fdx", ".pdf", ".docx"})
TEMPORARY_SUFFIXES: tuple[str, ...] = (".tmp", ".part", ".crdownload", ".swp", ".partial", ".download", "~")
DEFAULT_MAX_BYTES = SourceLimits().max_source_bytes
DEFAULT_SETTLE_SECONDS = 10.0
CURSOR_VERSION = 1

SkipKind = Literal[
    "temporary", "settling", "unchanged", "too_large", "over_limit", "not_regular", "unreadable", "unsupported",
    "superseded",
]
# Kinds that are decided once per version of a file and remembered in the cursor.
REFUSALS: frozenset[str] = frozenset({"too_large", "over_limit", "not_regular", "unreadable", "unsupported"})
# How each refusal's reason starts (the cursor stores only the reason).
_REFUSAL_PREFIXES: tuple[tuple[str, SkipKind], ...] = (
    ("too large", "too_large"),
    ("over a limit", "over_limit"),
    ("not a regular file", "not_regular"),
    ("unreadable", "unreadable"),
)
# A clock difference below this is ordinary (filesystem timestamp granularity, NTP steps): no warning.
FUTURE_MTIME_TOLERANCE_S = 2.0


@dataclass(frozen=True, slots=True)
class InboxPolicy:
    """Limits of the inbox: the largest file accepted, how long a file must sit still first, and the
    container limits (``limits``) a file must pass, the same ``cineforge ingest`` and the reader apply."""

    max_bytes: int = DEFAULT_MAX_BYTES
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    extensions: frozenset[str] = SUPPORTED_EXTENSIONS
    limits: SourceLimits = field(default_factory=SourceLimits)

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        if self.settle_seconds < 0:
            raise ValueError("settle_seconds must be >= 0")

    @property
    def source_limits(self) -> SourceLimits:
        """``limits`` with this policy's size limit."""
        return replace(self.limits, max_source_bytes=self.max_bytes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> InboxPolicy:
        """The size limit every entry point shares (``CINEFORGE_MAX_SOURCE_MB``, default 10) and
        ``CINEFORGE_INBOX_SETTLE_SECONDS`` (default 10)."""
        limits = SourceLimits.from_env(environ)
        settle = float(environ.get("CINEFORGE_INBOX_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS))
        return cls(max_bytes=limits.max_source_bytes, settle_seconds=settle, limits=limits)


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
    # For entries refused on sight (links, pipes): what the cursor remembers them by.
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class InboxScan:
    accepted: list[AcceptedFile]
    skipped: list[SkippedFile]
    cursor: InboxCursor
    # Decisions taken despite something odd (a modification time in the future); logged as warnings.
    warnings: list[str] = field(default_factory=list)

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
    """Why ``entry`` must wait (modified too recently), or None. ``now`` is epoch seconds.

    A modification time in the future cannot say how long the file has been still: waiting for our
    clock to reach it could take a day, so such a file counts as settled now (see ``future_mtime_warning``).
    """
    age = now - entry.mtime_ns / 1e9
    if 0 <= age < policy.settle_seconds or -FUTURE_MTIME_TOLERANCE_S < age < 0:
        return f"modified {max(age, 0.0):.1f}s ago; waiting until it is {policy.settle_seconds:g}s old"
    return None


def future_mtime_warning(entry: InboxEntry, now: float) -> str | None:
    """The warning for a file whose modification time is ahead of ``now`` (a writer's clock ahead), or None."""
    ahead = entry.mtime_ns / 1e9 - now
    if ahead >= FUTURE_MTIME_TOLERANCE_S:
        return (
            f"{entry.name}: modification time is {ahead:,.0f}s in the future (the writer's clock is ahead?); "
            "treated as settled now"
        )
    return None


def refusal_before_reading(entry: InboxEntry, policy: InboxPolicy) -> str | None:
    """Why ``entry`` is refused on its name and size alone, or None."""
    too_big = size_problem(entry.size, policy.source_limits)
    if too_big:
        return f"too large: {too_big}"
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
    return inspect_inbox(folder)[0]


def inspect_inbox(folder: Path) -> tuple[list[InboxEntry], list[SkippedFile]]:
    """Regular files directly in ``folder`` sorted by name, and the entries refused on sight.

    Entries are examined with ``lstat`` and never followed: a symbolic link or any other non-regular
    entry (pipe, socket, device) is refused, a sub-folder ignored, an entry that cannot be examined
    refused as unreadable. Each is one entry's problem, never the scan's.
    """
    if not folder.is_dir():
        return [], []
    entries: list[InboxEntry] = []
    refused: list[SkippedFile] = []
    with os.scandir(folder) as listing:
        found = sorted(listing, key=lambda e: e.name)
    for item in found:
        try:
            info = item.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed between listing and stat
            continue
        except OSError as exc:
            refused.append(SkippedFile(item.name, "unreadable", f"unreadable: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(info.st_mode):
            continue
        if stat.S_ISLNK(info.st_mode):
            reason = "not a regular file: a symbolic link; links are not followed (drop the file itself)"
            refused.append(SkippedFile(item.name, "not_regular", reason, fingerprint=_fingerprint(info)))
        elif not stat.S_ISREG(info.st_mode):
            reason = "not a regular file: a pipe, socket or device"
            refused.append(SkippedFile(item.name, "not_regular", reason, fingerprint=_fingerprint(info)))
        else:
            entries.append(InboxEntry(path=Path(item.path), size=info.st_size, mtime_ns=info.st_mtime_ns))
    return entries, refused


def _fingerprint(info: os.stat_result) -> str:
    return f"{info.st_size}:{info.st_mtime_ns}"


def scan_inbox(folder: Path, cursor: InboxCursor, *, now: float, policy: InboxPolicy) -> InboxScan:
    """Decide every file in ``folder`` against ``cursor``; return the decisions and the next cursor."""
    accepted: list[AcceptedFile] = []
    skipped: list[SkippedFile] = []
    next_files: dict[str, SeenFile] = {}
    warnings: list[str] = []
    entries, refused_on_sight = inspect_inbox(folder)
    for bad in refused_on_sight:
        temporary = temporary_reason(bad.name)
        if temporary:
            skipped.append(SkippedFile(bad.name, "temporary", temporary))
            continue
        previous = cursor.files.get(bad.name)
        seen_before = previous is not None and previous.fingerprint == bad.fingerprint and previous.refused
        skipped.append(replace(bad, new=not seen_before))
        if bad.fingerprint:
            next_files[bad.name] = SeenFile(bad.fingerprint, refused=bad.reason)
    for entry in entries:
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
        future = future_mtime_warning(entry, now)
        if future:
            warnings.append(future)
        reason = refusal_before_reading(entry, policy)
        if reason:
            next_files[name] = SeenFile(entry.fingerprint, refused=reason)
            skipped.append(SkippedFile(name, _refusal_kind(reason), reason))
            continue
        try:
            data = read_bounded(entry.path, policy.source_limits, follow_symlinks=False)
        except FileNotFoundError:
            continue
        except (SourceError, OSError) as exc:
            # Swapped for a link or a pipe, grown past the limit, or not ours to read since it was listed.
            reason = _read_refusal(exc)
            next_files[name] = SeenFile(entry.fingerprint, refused=reason)
            skipped.append(SkippedFile(name, _refusal_kind(reason), reason))
            continue
        sha = hashlib.sha256(data).hexdigest()
        if previous is not None and previous.sha256 == sha and not previous.refused:
            next_files[name] = replace(previous, fingerprint=entry.fingerprint)
            skipped.append(SkippedFile(name, "unchanged", "same content as already processed", new=False))
            continue
        try:
            source_format, _confidence = screen_source(entry.path, data, policy.source_limits)
        except SourceError as exc:
            refusal = _read_refusal(exc)
            next_files[name] = SeenFile(entry.fingerprint, sha256=sha, refused=refusal)
            skipped.append(SkippedFile(name, _refusal_kind(refusal), refusal))
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
    return InboxScan(winners, skipped, InboxCursor(next_files), warnings)


def _read_refusal(exc: Exception) -> str:
    """The cursor's reason for a file that failed to read or screen; a limit's words are the reader's."""
    if isinstance(exc, SourceLimitError):
        return f"over a limit: {exc.problem}"
    if isinstance(exc, NotARegularFileError):
        return f"not a regular file: {exc.problem}"
    if isinstance(exc, SourceError):
        return f"not a screenplay we can read: {exc.problem}"
    if isinstance(exc, OSError):
        return f"unreadable: {exc.strerror or exc}"
    return f"unreadable: {exc}"


def _refusal_kind(reason: str) -> SkipKind:
    for prefix, kind in _REFUSAL_PREFIXES:
        if reason.startswith(prefix):
            return kind
    return "unsupported"
