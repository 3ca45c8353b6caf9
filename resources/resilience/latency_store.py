"""The fleet's recent call latencies per (provider, model, stage), shared through the breakers' store.

Why: a hedge waits a quantile of the model's recent latencies for the task (``hedge.py``), and a quantile
needs ``min_samples`` (20) latencies. Learned in one process alone, that never happens where it matters:
Dagster runs each step in a process of its own, and a step makes a handful of calls, so every hedge of a
fresh process waited half the call's timeout, and the chaos benchmark's 4-process layout hedged each
process's first ~20 calls that late. Here each process adds what it measured to one record per scope (mode
and endpoints, as the retry budget's) in the breakers' store, and a process that knows too few latencies
of its own reads the fleet's.

* Kept: the newest ``kept`` latencies per key (128), each with when it was written; older than
  ``max_age_seconds`` (an hour) they are left out, so a model that got slower since yesterday is not
  hedged on yesterday's figure.
* Written: with the ``flush_every``-th new latency (20) or ``flush_seconds`` (5 s) after the first
  unwritten one, whichever comes first, and when the caller closes (``flush``): one small transaction
  per process every few seconds at most, off the path of calls that are not hedged.
* Read: the whole scope's record, again at most every ``refresh_seconds`` (1 s), and only while the process
  still knows too few latencies of its own (the tracker asks only then): a fleet starting together has
  nothing to read at first, and a record read once and kept for long left each process of the chaos
  benchmark's 4-process layout hedging at half the timeout for its first second.
* A store that fails is logged and skipped: hedging falls back to what this process knows (half the
  timeout, as before), never fails a call.

Hand-written: the storage is ``record_table.py``'s; what is specific (a bounded, aged sample list per key,
merged by every writer) is a dozen lines no library offers for these stores.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from resources.resilience.record_table import RecordStore

logger = logging.getLogger(__name__)

LATENCY_TABLE = "cineforge_latencies"

Key = tuple[str, str, str]  # (provider, model, stage); ("", "", stage) is the stage's pool


def _encode(key: Key) -> str:
    return "\t".join(key)


def _decode(text: str) -> Key:
    provider, model, stage = text.split("\t")
    return provider, model, stage


def merged_record(
    stored: str | None, new: dict[Key, list[tuple[float, float]]], now: float, kept: int, max_age: float
) -> str:
    """``stored`` (a scope's record) with ``new`` (key -> (written at, seconds)) added: the newest ``kept``
    per key, none older than ``max_age``."""
    data: dict[str, list[list[float]]] = json.loads(stored) if stored else {}
    for key, samples in new.items():
        name = _encode(key)
        data[name] = (data.get(name, []) + [[at, seconds] for at, seconds in samples])[-kept:]
    fresh = {name: [s for s in samples if now - s[0] <= max_age] for name, samples in data.items()}
    return json.dumps({name: samples for name, samples in fresh.items() if samples}, separators=(",", ":"))


def fleet_samples(stored: str | None, now: float, max_age: float) -> dict[Key, list[float]]:
    """key -> the latencies of ``stored`` (a scope's record) not older than ``max_age``."""
    data: dict[str, list[list[float]]] = json.loads(stored) if stored else {}
    return {_decode(name): [s for at, s in samples if now - at <= max_age] for name, samples in data.items()}


class FleetLatencies:
    """One scope's latencies in ``store`` (see the module docstring); ``clock`` is epoch seconds."""

    def __init__(
        self,
        store: RecordStore,
        scope: str,
        *,
        clock: Callable[[], float] = time.time,
        kept: int = 128,
        flush_every: int = 20,
        flush_seconds: float = 5.0,
        refresh_seconds: float = 1.0,
        max_age_seconds: float = 3600.0,
    ) -> None:
        self.store = store
        self.scope = scope
        self._clock = clock
        self._kept = kept
        self._flush_every = flush_every
        self._flush_seconds = flush_seconds
        self._refresh_seconds = refresh_seconds
        self._max_age = max_age_seconds
        self._lock = threading.Lock()
        self._fleet: dict[Key, list[float]] = {}
        self._read_at = -float("inf")
        self._pending: dict[Key, list[tuple[float, float]]] = {}
        self._pending_count = 0
        self._pending_since = float("inf")

    def samples(self, key: Key) -> list[float]:
        """The fleet's latencies for ``key``: what the store held when last read, and what this process
        measured since (not yet written)."""
        now = self._clock()
        if now - self._read_at >= self._refresh_seconds:
            self._read(now)
        with self._lock:
            return self._fleet.get(key, []) + [seconds for _at, seconds in self._pending.get(key, ())]

    def note(self, key: Key, seconds: float) -> None:
        """Add one measured latency; written with the next flush."""
        now = self._clock()
        with self._lock:
            self._pending.setdefault(key, []).append((now, seconds))
            self._pending_count += 1
            self._pending_since = min(self._pending_since, now)
            due = self._pending_count >= self._flush_every or now - self._pending_since >= self._flush_seconds
        if due:
            self.flush()

    def flush(self) -> None:
        """Write what this process measured since the last write (e.g. before the process ends)."""
        now = self._clock()
        with self._lock:
            pending, self._pending = self._pending, {}
            self._pending_count, self._pending_since = 0, float("inf")
        if not pending:
            return

        def change(stored: str | None) -> tuple[str, str]:
            text = merged_record(stored, pending, now, self._kept, self._max_age)
            return text, text

        try:
            text = self.store.update(self.scope, change)
        except Exception:
            logger.warning("latency store failed; this process's latencies stay its own", exc_info=True)
            return
        fleet = fleet_samples(text, now, self._max_age)
        with self._lock:
            self._fleet, self._read_at = fleet, now

    def _read(self, now: float) -> None:
        try:
            fleet = fleet_samples(self.store.read(self.scope), now, self._max_age)
        except Exception:
            logger.warning("latency store failed; hedging on this process's latencies", exc_info=True)
            fleet = None
        with self._lock:
            self._read_at = now  # a failed read is not retried on every call either
            if fleet is not None:
                self._fleet = fleet
