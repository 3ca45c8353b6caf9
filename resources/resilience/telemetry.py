"""What the resilience layer tells the outside world: one ``AttemptRecord`` per step of a stage's call,
and every ``BreakerTransition``.

Records are built only from metadata (provider, model, status, error code, request id, timings): they
never hold request bodies, prompts, completions, headers or provider messages, so no sink can leak a
secret or a screenplay through them.

``JsonlTelemetrySink`` appends one JSON object per line. Each line is written with a single ``write(2)``
on a descriptor opened with ``O_APPEND``: the kernel positions every append at the end of file and, for
regular local files, Linux serializes writes on one inode, so lines from concurrent processes never
interleave. (Network filesystems such as NFS do not honour ``O_APPEND`` atomically; keep the file local.)

The file rotates so it never grows without bound: before a write, when it has reached ``max_bytes``
(``CINEFORGE_TELEMETRY_MAX_MB``, default 64) or was last written on an earlier UTC day, it is renamed to a
closed segment ``events.<UTC time of its last write>.jsonl`` and a fresh file takes its place; segments
older than ``retention_days`` are deleted then. Rotation renames under an ``flock`` so two processes never
both rotate; a process still holding the old file notices the name now points at a new inode and reopens,
so no line is lost. That check costs two ``stat`` calls (~9 us, as much as the write), so a sink makes it
at most once per ``check_interval_s`` (1 s): a file may pass ``max_bytes`` by a second's lines, and lines
written in the second after another process rotated land at the end of the closed segment.
A segment's name is the time of its newest line, so a reader of a time window (``window_files``) skips
every segment older than the window (give or take those seconds) without opening it.

Every line says which provider mode wrote it (``"mode": "live" | "simulated" | "offline"``): the sink is
built by the resource that runs in that mode and stamps it, so a drill against the simulator is never read
as a live outage or as money spent. The stamp is a prefix built once per sink, not a field of
``AttemptRecord``: the per-call cost of an attempt line stays what it was (one concatenation). Lines
written before the stamp existed, or by a sink built without a mode, have no ``mode``: readers take them
as ``UNKNOWN_MODE`` (``line_mode``), not as live, because the same file then held drills and live calls
and nothing in a line tells them apart.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from resources.resilience.breaker_state import BreakerListener, BreakerState, BreakerTransition
from resources.resilience.error_class import ErrorClass

logger = logging.getLogger(__name__)

AttemptOutcome = Literal["success", "error", "skipped"]
Decision = Literal[
    "success",
    "retry_same_model",
    "fallback_next_model",
    "fallback_next_provider",
    "skip_provider",
    "stop",
    # a further call not made: the fleet spent the provider's retry budget (retry_budget.py); with a
    # ``delay_s``, the request waits that long for the budget instead of failing (executor.py)
    "retry_budget_exhausted",
    # the walk served nothing on merely degraded providers: it starts again after ``delay_s`` (executor.py)
    "retry_chain",
    # a second call raced the first after ``hedge_after`` (hedge.py); ``hedge_won``: it answered first
    "hedge_sent",
    "hedge_won",
]


class AttemptRecord(BaseModel):
    """One step of a stage's call: a provider call, or a chain entry skipped without calling.

    ``attempt`` numbers every step of the stage from 1 (skips included; only calls spend the budget).
    A truncated answer is logged with ``error_code="output_truncated"``, ``truncated=True`` and its tokens.
    ``delay_s`` is the wait before the next step; ``decision`` is what the layer did next.
    """

    model_config = ConfigDict(frozen=True)

    ts: float
    stage: str
    attempt: int
    provider: str
    model: str
    request_id: str | None = None
    outcome: AttemptOutcome
    error_code: str | None = None
    error_class: ErrorClass | None = None
    status: int | None = None
    delay_s: float = 0.0
    decision: Decision
    terminal_reason: str | None = None
    latency_s: float | None = None
    breaker_state: BreakerState | None = None
    run_id: str | None = None
    partition: str | None = None
    # Token counts of an answered call as the provider reported them (``cached_input_tokens``: the part of
    # ``input_tokens`` served from the provider's prompt cache), and the output ceiling it was sent with;
    # ``truncated``: the answer was cut at that ceiling.
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    max_tokens: int | None = None
    truncated: bool = False
    # USD at list price (``resources.providers.prices``) of the usage above; ``None``: the model is unpriced;
    # 0 for a failed or skipped step. ``first_model_cost_usd``: the same usage on the chain's first model
    # (the premium a fallback paid is the difference).
    cost_usd: float | None = 0.0
    first_model_cost_usd: float | None = None

    @classmethod
    def trusted(cls, **fields: Any) -> AttemptRecord:
        """A record from values the caller has already typed, every field given: no validation.

        The same object ``model_construct`` builds (``tests/resources/resilience/test_telemetry.py`` pins
        that), without its per-field alias and default handling, which cost more than the rest of the
        layer's per-call work. Given fewer than every field, it is ``model_construct`` (defaults applied).
        """
        if len(fields) != len(_ATTEMPT_FIELDS):
            return cls.model_construct(**fields)
        record = cls.__new__(cls)
        _set_attribute(record, "__dict__", fields)
        _set_attribute(record, "__pydantic_fields_set__", set(fields))
        _set_attribute(record, "__pydantic_extra__", None)
        _set_attribute(record, "__pydantic_private__", None)
        return record


_ATTEMPT_FIELDS = frozenset(AttemptRecord.model_fields)
_set_attribute = object.__setattr__  # what pydantic itself uses to fill a frozen model


ProviderMode = Literal["offline", "simulated", "live"]
UNKNOWN_MODE = "unknown"


def line_mode(line: dict[str, Any]) -> str:
    """The mode a telemetry line was written in; ``UNKNOWN_MODE`` for a line without one (see the module
    docstring)."""
    return str(line.get("mode") or UNKNOWN_MODE)


class TelemetryListener(BreakerListener, Protocol):
    """Hears every attempt, and (as a ``BreakerListener``) every breaker transition."""

    def on_attempt(self, record: AttemptRecord) -> None: ...


DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_RETENTION_DAYS = 30
MAX_BYTES_ENV = "CINEFORGE_TELEMETRY_MAX_MB"
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_DAY_S = 86_400
_STRAGGLER_S = 5.0


def _max_bytes_from_env() -> int:
    value = os.environ.get(MAX_BYTES_ENV)
    return int(float(value) * 1024 * 1024) if value else DEFAULT_MAX_BYTES


def segment_path(path: Path, last_write: float, serial: int = 0) -> Path:
    """The closed segment of ``path`` whose newest line was written at ``last_write`` (epoch seconds)."""
    stamp = datetime.fromtimestamp(last_write, tz=UTC).strftime(_STAMP_FORMAT)
    extra = f"-{serial}" if serial else ""
    return path.with_name(f"{path.stem}.{stamp}{extra}{path.suffix}")


def segments(path: Path) -> list[tuple[float, Path]]:
    """The closed segments of ``path`` as (time of newest line, path), oldest first."""
    pattern = re.compile(rf"^{re.escape(path.stem)}\.(\d{{8}}T\d{{6}}Z)(?:-\d+)?{re.escape(path.suffix)}$")
    found: list[tuple[float, Path]] = []
    if not path.parent.is_dir():
        return found
    for candidate in path.parent.iterdir():
        match = pattern.match(candidate.name)
        if match:
            stamp = datetime.strptime(match.group(1), _STAMP_FORMAT).replace(tzinfo=UTC).timestamp()
            found.append((stamp, candidate))
    return sorted(found)


def window_files(path: Path, since: float | None) -> list[Path]:
    """The files that can hold lines from ``since`` on (all when None), oldest first: every segment whose
    newest line is not older than ``since``, then the live file. Older segments are never opened."""
    # Stamps are to the second and a segment can take lines for a check interval after its rename.
    chosen = [p for stamp, p in segments(path) if since is None or stamp + _STRAGGLER_S > since]
    return [*chosen, path] if path.exists() else chosen


class JsonlTelemetrySink:
    """Append attempts and breaker transitions to a JSON Lines file, safely across processes.

    Lines carry ``"kind": "attempt"``, ``"kind": "breaker_transition"`` or ``"kind": "stage_cost"``, and
    ``"mode"``: the provider mode of the resource that built the sink (none when ``mode`` is None). ``clock``
    (epoch seconds) says which UTC day it is, for the daily rotation; tests inject it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
        check_interval_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        mode: ProviderMode | None = None,
    ) -> None:
        self.path = Path(path)
        self.mode = mode
        self._stamp: dict[str, str] = {"mode": mode} if mode else {}
        # Built once: the hot path splices a constant prefix, as it spliced the kind before.
        self._attempt_prefix = b'{"kind":"attempt",' + (f'"mode":{json.dumps(mode)},'.encode() if mode else b"")
        self.max_bytes = max_bytes if max_bytes is not None else _max_bytes_from_env()
        self.retention_days = retention_days
        self._clock = clock
        self._check_interval_s = check_interval_s
        self._monotonic = monotonic
        self._next_check = float("-inf")
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def on_attempt(self, record: AttemptRecord) -> None:
        # pydantic's serializer is several times faster than json.dumps(model_dump()); splice the kind in.
        body = record.model_dump_json().encode("utf-8")
        self._write(self._attempt_prefix + body[1:] + b"\n")

    def on_stage_cost(self, summary: dict[str, Any]) -> None:
        """A ``"kind": "stage_cost"`` line: one AI stage call's money (``resources.resilience.cost``)."""
        line = json.dumps({"kind": "stage_cost", **self._stamp, **summary}, separators=(",", ":")) + "\n"
        self._write(line.encode("utf-8"))

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        payload = {"kind": "breaker_transition", **self._stamp, **dataclasses.asdict(transition)}
        self._write((json.dumps(payload, separators=(",", ":")) + "\n").encode("utf-8"))

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def _descriptor(self) -> int:
        # One descriptor per process: a descriptor inherited across fork shares its file offset, which is
        # harmless under O_APPEND, but the parent may close it under us. Reopened when another process
        # rotated the file (the name now points at another inode).
        if self._fd is not None and self._pid == os.getpid() and self._inode == _inode_of(self.path):
            return self._fd
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        info = os.fstat(self._fd)
        self._inode = (info.st_dev, info.st_ino)
        self._pid = os.getpid()
        return self._fd

    def _rotation_due(self, info: os.stat_result) -> bool:
        if info.st_size == 0:
            return False
        return info.st_size >= self.max_bytes or int(info.st_mtime // _DAY_S) < int(self._clock() // _DAY_S)

    def _rotate_if_due(self, fd: int) -> int:
        if not self._rotation_due(os.fstat(fd)):
            return fd
        lock_path = self.path.with_name(self.path.name + ".lock")
        lock_fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            # Under the lock, look again: another process may have rotated it a moment ago.
            current = os.stat(self.path) if self.path.exists() else None
            if current is not None and (current.st_dev, current.st_ino) == self._inode and self._rotation_due(current):
                serial = 0
                while (target := segment_path(self.path, current.st_mtime, serial)).exists():
                    serial += 1
                os.rename(self.path, target)
                self._prune()
        finally:
            os.close(lock_fd)  # releases the flock
        return self._descriptor()

    def _prune(self) -> None:
        horizon = self._clock() - self.retention_days * _DAY_S
        for stamp, old in segments(self.path):
            if stamp < horizon:
                old.unlink(missing_ok=True)

    def _write(self, line: bytes) -> None:
        with self._lock:
            fd = self._fd
            if fd is None or self._pid != os.getpid() or self._monotonic() >= self._next_check:
                fd = self._rotate_if_due(self._descriptor())
                self._next_check = self._monotonic() + self._check_interval_s
            written = os.write(fd, line)
        if written != len(line):  # only on a full disk or a signal mid-write; never retried (would split)
            logger.warning("telemetry line truncated (%d of %d bytes) in %s", written, len(line), self.path)


def _inode_of(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino
