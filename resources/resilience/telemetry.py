"""What the resilience layer tells the outside world: one ``AttemptRecord`` per step of a stage's call,
and every ``BreakerTransition``.

Records are built only from metadata (provider, model, status, error code, request id, timings): they
never hold request bodies, prompts, completions, headers or provider messages, so no sink can leak a
secret or a screenplay through them.

``JsonlTelemetrySink`` appends one JSON object per line. Each line is written with a single ``write(2)``
on a descriptor opened with ``O_APPEND``: the kernel positions every append at the end of file and, for
regular local files, Linux serializes writes on one inode, so lines from concurrent processes never
interleave. (Network filesystems such as NFS do not honour ``O_APPEND`` atomically; keep the file local.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from resources.resilience.breaker import BreakerState, BreakerTransition
from resources.resilience.errors import ErrorClass

logger = logging.getLogger(__name__)

AttemptOutcome = Literal["success", "error", "skipped"]
Decision = Literal[
    "success",
    "retry_same_model",
    "fallback_next_model",
    "fallback_next_provider",
    "skip_provider",
    "stop",
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
    # Token counts of an answered call as the provider reported them, and the output ceiling it was sent
    # with; ``truncated``: the answer was cut at that ceiling.
    input_tokens: int | None = None
    output_tokens: int | None = None
    max_tokens: int | None = None
    truncated: bool = False

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


class TelemetryListener(Protocol):
    def on_attempt(self, record: AttemptRecord) -> None: ...

    def on_breaker_transition(self, transition: BreakerTransition) -> None: ...


class JsonlTelemetrySink:
    """Append attempts and breaker transitions to a JSON Lines file, safely across processes.

    Lines carry ``"kind": "attempt"`` or ``"kind": "breaker_transition"``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def on_attempt(self, record: AttemptRecord) -> None:
        # pydantic's serializer is several times faster than json.dumps(model_dump()); splice the kind in.
        body = record.model_dump_json().encode("utf-8")
        self._write(b'{"kind":"attempt",' + body[1:] + b"\n")

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        payload = {"kind": "breaker_transition", **dataclasses.asdict(transition)}
        self._write((json.dumps(payload, separators=(",", ":")) + "\n").encode("utf-8"))

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def _descriptor(self) -> int:
        # One descriptor per process: a descriptor inherited across fork shares its file offset, which is
        # harmless under O_APPEND, but the parent may close it under us.
        if self._fd is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._pid = os.getpid()
        return self._fd

    def _write(self, line: bytes) -> None:
        with self._lock:
            written = os.write(self._descriptor(), line)
        if written != len(line):  # only on a full disk or a signal mid-write; never retried (would split)
            logger.warning("telemetry line truncated (%d of %d bytes) in %s", written, len(line), self.path)
