"""Run ``read_source`` in a child process under a memory ceiling and a wall-clock limit.

The container checks in ``limits.py`` catch the bombs we know; a parser's appetite on a file that passes
them (a pathological PDF content stream, an XML shape no check foresaw) is bounded here. Why a child
process with ``RLIMIT_AS`` rather than a thread or a check inside the worker:

* the ceiling must be enforced by the kernel, not by code that polls: past ``RLIMIT_AS`` every allocation
  fails, Python raises ``MemoryError`` and the child reports it, long before the host runs short;
* a limit on the Dagster worker itself would bound Dagster too, and its address space (threads, gRPC,
  mapped libraries) has nothing to do with the file; the child holds only the interpreter and the reader;
* when the child dies anyway (killed, crashed), the worker lives on and reports a permanent failure instead
  of leaving the run ``STARTED`` for ever.

``RLIMIT_AS`` bounds address space, which is more than resident memory; ``MALLOC_ARENA_MAX=2`` keeps glibc
from reserving a 64 MiB arena per thread so the ceiling stays close to what the reader really uses.

The child is ``_reader_child.py`` run by path; it sets its limits before it imports anything that touches
the file, and writes one JSON object to stdout: the ``RawSource`` or the ``SourceError`` (class name and
fields) for the parent to raise again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cineforge_assets.screenplay.formats import errors
from cineforge_assets.screenplay.formats.errors import CorruptSourceError, SourceError, SourceLimitError
from cineforge_assets.screenplay.formats.limits import MEMORY_ENV, MIB, TIMEOUT_ENV, SourceLimits
from cineforge_assets.screenplay.formats.reader import RawSource

_PACKAGE_ROOT = Path(__file__).resolve().parents[3]
_CHILD = Path(__file__).with_name("_reader_child.py")
MEMORY_EXIT = 3


def read_source_isolated(path: Path, limits: SourceLimits | None = None) -> RawSource:
    """``read_source(path)`` in a child process; returns its ``RawSource`` or raises its ``SourceError``
    (a crash of the reader is a ``CorruptSourceError``: the same bytes would crash it again)."""
    path = Path(path)
    limits = limits or SourceLimits.from_env()
    env = {
        # The reader needs no credentials; a child that never holds them cannot leak them.
        **{k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN", "_SECRET"))},
        "MALLOC_ARENA_MAX": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH")])),
    }
    # -P: the script's folder (formats/, holding a docx.py) must not shadow the python-docx package.
    command = [sys.executable, "-s", "-P", str(_CHILD), str(path), json.dumps(_limits_json(limits))]
    try:
        proc = subprocess.run(
            command, env=env, capture_output=True, timeout=limits.reader_timeout_seconds, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SourceLimitError(
            path, _guess(path),
            f"reading it took longer than {limits.reader_timeout_seconds:g} s, the limit on reading one "
            f"file ({TIMEOUT_ENV}).",
            TIMEOUT_ENV,
        ) from exc
    outcome = _parse_outcome(proc.stdout)
    if outcome is not None and "raw" in outcome:
        return RawSource.model_validate(outcome["raw"])
    if outcome is not None and "error" in outcome:
        raise _rebuild_error(outcome["error"])
    if proc.returncode == MEMORY_EXIT or b"MemoryError" in proc.stderr:
        raise memory_error(path, limits)
    # Name the exception only: its message could quote the file's contents into logs and metadata.
    last = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
    what = last.split(":", 1)[0][:80] if proc.returncode > 0 else f"killed by signal {-proc.returncode}"
    raise CorruptSourceError(
        path, _guess(path), f"the reader failed on this file ({what}); it is refused rather than retried."
    )


def memory_error(path: Path, limits: SourceLimits) -> SourceLimitError:
    return SourceLimitError(
        path, _guess(path),
        f"reading it needed more than {limits.reader_memory_bytes // MIB:,} MiB, the memory ceiling of the "
        f"reader ({MEMORY_ENV}).",
        MEMORY_ENV,
    )


def _limits_json(limits: SourceLimits) -> dict[str, float]:
    return {name: getattr(limits, name) for name in SourceLimits.__dataclass_fields__}


def _parse_outcome(stdout: bytes) -> dict[str, Any] | None:
    try:
        outcome = json.loads(stdout)
    except ValueError:
        return None
    return outcome if isinstance(outcome, dict) else None


def _rebuild_error(data: dict[str, Any]) -> SourceError:
    cls = getattr(errors, str(data.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, SourceError)):
        cls = errors.CorruptSourceError
    if issubclass(cls, SourceLimitError):
        return cls(data["path"], data["format"], data["problem"], data.get("limit") or "", data["hint"])
    return cls(data["path"], data["format"], data["problem"], data["hint"])


def _guess(path: Path) -> str:
    return path.suffix.lower().lstrip(".") or "text"
