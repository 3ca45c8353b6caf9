"""Was a stage's answer served by the model(s) it prefers, and if not, can a later run do better?

Pure domain logic (no Dagster): the AI-backed assets call ``assess_service`` and put ``service_metadata``
on their materialization; the WARN checks (``checks.py``) and the heal sensor (``heal.py``) read it back.

**Preferred models.** A stage prefers the first ``degraded_below`` entries of its fallback chain; an answer
from any later entry, and always one from the offline engine, is *degraded*. By default ``degraded_below``
is the length of the chain's leading run of one provider (``claude-sonnet-4-6, claude-opus-4-6`` for
``extract_scenes``): the prompts and answer parsing were written and checked against that provider, a bigger
model of the same provider answers at least as well, and an answer from another provider is a stand-in
whose voice differs from the rest of the screenplay's scenes. It is also the provider whose recovery the
breaker store reports, so "healthy again" has one meaning. A deployment that counts, say, ``gpt-5.2`` as
good enough sets ``CINEFORGE_DEGRADED_BELOW=extract_scenes=3`` (``stage=index`` pairs, comma-separated).

**Cause.** A degraded answer is worth re-running only when the preferred provider could not be asked: it
failed transiently or was skipped as down (breaker open, overloaded, warming, parked). When it answered
and refused (a permanent error), was not configured (no key), or the answer came from the response cache,
the same run later gives the same answer, so the heal sensor leaves it alone; the check still warns.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cineforge_assets.run_tags import HEAL_TAG
from resources.resilience.chain import OFFLINE, provider_for
from resources.resilience.telemetry import AttemptRecord

DEGRADED_BELOW_ENV = "CINEFORGE_DEGRADED_BELOW"
def is_heal_run(tags: Mapping[str, str]) -> bool:
    """A heal run (``heal.py``)? Its split stages do not read the response cache: the cache holds the very
    fallback answers the heal is meant to replace, keyed by a chain and payload that have not changed."""
    return tags.get(HEAL_TAG) == "true"


Cause = Literal["", "outage", "refused", "unavailable", "cached"]
# Skips that mean "the provider is down right now" (the executor's skip codes).
_DOWN_SKIPS = frozenset({"breaker_open", "provider_overloaded", "provider_warming"})
_UNCONFIGURED = frozenset({"no_adapter", "provider_unavailable"})
HEALABLE_CAUSES: frozenset[str] = frozenset({"outage"})


def degraded_below_from_env(text: str | None = None) -> dict[str, int]:
    """``stage=index`` pairs from ``CINEFORGE_DEGRADED_BELOW`` (or ``text``); a clear error on a bad pair."""
    raw = os.environ.get(DEGRADED_BELOW_ENV, "") if text is None else text
    result: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        stage, sep, value = item.partition("=")
        if not sep or not stage.strip() or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{DEGRADED_BELOW_ENV}: {item!r} is not stage=N with N >= 1")
        result[stage.strip()] = int(value)
    return result


def preferred_models(chain: Sequence[str], degraded_below: int | None = None) -> tuple[str, ...]:
    """The chain entries whose answers are not degraded (never the offline engine, unless it is the chain)."""
    if not chain:
        return ()
    if list(chain) == [OFFLINE]:
        return (OFFLINE,)  # offline mode: the engine is what was asked for, nothing better is configured
    if degraded_below is None:
        first = provider_for(chain[0])
        degraded_below = next((i for i, m in enumerate(chain) if provider_for(m) != first), len(chain))
    return tuple(m for m in chain[:degraded_below] if m != OFFLINE)


@dataclass(frozen=True, slots=True)
class ServiceQuality:
    """Who served one materialization of a stage, against what the stage prefers."""

    stage: str
    preferred: tuple[str, ...]
    served: dict[str, int]  # "provider/model" -> parts (1 for a single call)
    lower: dict[str, int] = field(default_factory=dict)  # the served entries that are not preferred
    cause: Cause = ""

    @property
    def degraded(self) -> bool:
        return bool(self.lower)

    @property
    def preferred_provider(self) -> str:
        return provider_for(self.preferred[0]) if self.preferred else ""

    @property
    def offline_parts(self) -> int:
        return sum(n for name, n in self.lower.items() if name.split("/", 1)[0] == OFFLINE)

    @property
    def healable(self) -> bool:
        return self.degraded and self.cause in HEALABLE_CAUSES

    def describe(self) -> str:
        if not self.served:
            return f"{self.stage}: no model was asked (deterministic)"
        if not self.degraded:
            return f"{self.stage}: served by preferred model(s) {', '.join(sorted(self.served))}"
        total = sum(self.served.values())
        parts = ", ".join(f"{name} x{n}" for name, n in sorted(self.lower.items()))
        why = {
            "outage": f"{self.preferred_provider} was down; re-run when it is healthy again",
            "refused": f"{self.preferred_provider} refused; a re-run gives the same answer",
            "unavailable": f"{self.preferred_provider} is not configured (API key?)",
            "cached": "the fallback answers came from the response cache",
            "": "",
        }[self.cause]
        return (
            f"{self.stage}: {sum(self.lower.values())} of {total} part(s) served below the preferred "
            f"{', '.join(self.preferred)}: {parts}" + (f" ({why})" if why else "")
        )


def _cause(preferred: Sequence[str], attempts: Iterable[AttemptRecord], any_uncached: bool) -> Cause:
    on_preferred = [a for a in attempts if a.model in preferred]
    if any(
        a.error_class == "transient" or (a.outcome == "skipped" and a.error_code in _DOWN_SKIPS) for a in on_preferred
    ):
        return "outage"
    if any(a.error_code in _UNCONFIGURED or a.error_class == "provider_unavailable" for a in on_preferred):
        return "unavailable"
    if any(a.error_class == "permanent" for a in on_preferred):
        return "refused"
    # No attempt on a preferred model: either every degraded part came from the cache, or the stage ran out
    # of budget or deadline before reaching it (an outage by another name).
    return "outage" if any_uncached else "cached"


@dataclass(frozen=True, slots=True)
class ServedPart:
    """One answer a stage used: who served it, the attempts behind it, whether it came from the cache."""

    provider: str
    model: str
    attempts: tuple[AttemptRecord, ...] = ()
    cached: bool = False

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


def served_part(result: Any) -> ServedPart:
    """The ``ServedPart`` of an ``AIResult`` (typed ``Any`` so this module needs nothing of the resource)."""
    return ServedPart(result.provider, result.model, tuple(result.attempts), bool(result.cached))


def assess_service(
    stage: str, chain: Sequence[str], parts: Sequence[ServedPart], degraded_below: int | None = None
) -> ServiceQuality:
    """How ``parts`` (every answer the stage used) compare with the stage's preferred models."""
    preferred = preferred_models(chain, degraded_below)
    served: dict[str, int] = {}
    lower: dict[str, int] = {}
    for part in parts:
        served[part.name] = served.get(part.name, 0) + 1
        if part.model not in preferred:
            lower[part.name] = lower.get(part.name, 0) + 1
    if not lower:
        return ServiceQuality(stage, preferred, served)
    degraded_parts = [p for p in parts if p.model not in preferred]
    cause = _cause(
        preferred,
        (a for p in degraded_parts for a in p.attempts),
        any_uncached=any(not p.cached for p in degraded_parts),
    )
    return ServiceQuality(stage, preferred, served, lower, cause)


# Materialization metadata keys the checks and the heal sensor read back.
DEGRADED_KEY = "degraded"
DEGRADED_CAUSE_KEY = "degraded_cause"
PREFERRED_PROVIDER_KEY = "preferred_provider"
MODE_KEY = "provider_mode"
SERVICE_STAGE_KEY = "service_stage"


def service_metadata(quality: ServiceQuality, mode: str = "") -> dict[str, Any]:
    """Plain values (no Dagster types) so the metadata reads back the same from any event store. ``mode``
    (offline / simulated / live) is kept so a heal only ever uses the providers the answer was asked of: a
    simulated drill's placeholders are never re-run against live, paid providers."""
    return {
        SERVICE_STAGE_KEY: quality.stage,
        MODE_KEY: mode,
        DEGRADED_KEY: quality.degraded,
        DEGRADED_CAUSE_KEY: quality.cause,
        PREFERRED_PROVIDER_KEY: quality.preferred_provider,
        "preferred_models": ", ".join(quality.preferred),
        "served_below_preferred": ", ".join(f"{k} x{v}" for k, v in sorted(quality.lower.items())),
        "service": quality.describe(),
    }


def degraded_from_metadata(metadata: Mapping[str, Any]) -> tuple[bool, str, str, str]:
    """(degraded, cause, preferred provider, provider mode) from a materialization's metadata (values or
    MetadataValues)."""

    def plain(key: str, default: Any) -> Any:
        value = metadata.get(key, default)
        return getattr(value, "value", value)

    return (
        bool(plain(DEGRADED_KEY, False)),
        str(plain(DEGRADED_CAUSE_KEY, "")),
        str(plain(PREFERRED_PROVIDER_KEY, "")),
        str(plain(MODE_KEY, "")),
    )


def assess_results(stage: str, chain: Sequence[str], results: Iterable[Any]) -> ServiceQuality:
    """``assess_service`` for the ``AIResult``s a stage used, ``degraded_below`` from the environment."""
    return assess_service(stage, chain, [served_part(r) for r in results], degraded_below_from_env().get(stage))


def not_served(stage: str) -> ServiceQuality:
    """A materialization no model took part in (screenplay-shaped input parsed deterministically)."""
    return ServiceQuality(stage, (), {})
