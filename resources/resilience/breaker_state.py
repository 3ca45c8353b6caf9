"""A provider circuit breaker's state as it is stored and reported: the names of its states, the record a
``BreakerStore`` keeps per provider, the ``Permit`` a call holds, and the ``BreakerTransition`` /
``BreakerSnapshot`` that telemetry, health probes and ``cineforge status`` show.

Types only, no decisions (those are in ``breaker.py``) and no storage (``breaker_store.py``): ``telemetry``
imports them without importing the breaker, which imports ``errors``, which names telemetry's records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

BreakerState = Literal["closed", "open", "half_open"]
TransitionReason = Literal[
    "consecutive_failures", "failure_rate", "cooldown_elapsed", "probe_succeeded", "probe_failed", "warm_up_failed"
]


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """One provider's persisted breaker state (what a ``BreakerStore`` keeps per provider)."""

    state: BreakerState = "closed"
    generation: int = 0
    consecutive_failures: int = 0
    # (bucket index = floor(ts / bucket_seconds), calls, failures), oldest first.
    window: tuple[tuple[int, int, int], ...] = ()
    opened_at: float | None = None
    reopens_at: float | None = None
    # (lease token, lease expiry) of calls in flight under a budget: half-open probes, or warm-up calls
    # while closed and warming (see the module docstring).
    probes: tuple[tuple[int, float], ...] = ()
    next_probe_token: int = 1
    # A provider-level "not before" that is no outage (a daily quota until its reset): acquire denies until
    # then without opening the breaker, counting a failure, or moving the generation.
    parked_until: float | None = None
    parked_reason: str = ""
    # The current open period's length while open or half-open (a failed probe lengthens the next one).
    cooldown_s: float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "state": self.state,
                "generation": self.generation,
                "consecutive_failures": self.consecutive_failures,
                "window": [list(b) for b in self.window],
                "opened_at": self.opened_at,
                "reopens_at": self.reopens_at,
                "probes": [list(p) for p in self.probes],
                "next_probe_token": self.next_probe_token,
                "parked_until": self.parked_until,
                "parked_reason": self.parked_reason,
                "cooldown_s": self.cooldown_s,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> BreakerRecord:
        data: Mapping[str, Any] = text if isinstance(text, Mapping) else json.loads(text)
        return cls(
            state=data["state"],
            generation=int(data["generation"]),
            consecutive_failures=int(data["consecutive_failures"]),
            window=tuple((int(b), int(c), int(f)) for b, c, f in data["window"]),
            opened_at=data["opened_at"],
            reopens_at=data["reopens_at"],
            probes=tuple((int(t), float(e)) for t, e in data["probes"]),
            next_probe_token=int(data["next_probe_token"]),
            parked_until=data.get("parked_until"),  # absent in records written before parking existed
            parked_reason=str(data.get("parked_reason") or ""),
            cooldown_s=data.get("cooldown_s"),  # absent in records written before adaptive open periods
        )


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one call to ``provider``; hand it back through ``record`` or ``release``."""

    provider: str
    generation: int
    state: BreakerState
    probe_token: int | None = None

    @property
    def is_probe(self) -> bool:
        """A half-open probe (a warm-up call holds a lease token too, but in the closed state)."""
        return self.probe_token is not None and self.state == "half_open"


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    provider: str
    from_state: BreakerState
    to_state: BreakerState
    reason: TransitionReason
    at: float


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A provider's breaker as a health probe shows it (read fresh from the store)."""

    provider: str
    state: BreakerState
    consecutive_failures: int
    window_calls: int
    window_failures: int
    opened_at: float | None
    reopens_at: float | None
    reopens_in_seconds: float
    probes_in_flight: int  # half-open probes, or warm-up calls while warming
    warming: bool = False  # closed without proven health (see the module docstring)
    parked_until: float | None = None  # skipped until then (e.g. a daily quota), not open
    parked_reason: str = ""


class BreakerListener(Protocol):
    def on_breaker_transition(self, transition: BreakerTransition) -> None: ...
