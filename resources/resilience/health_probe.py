"""Provider health probe, the part that knows nothing of Dagster: which breakers to probe, with which model,
how one probe call is made and what its outcome means, and how the states read in a log or a table.

Why a probe: without one, the first call to a provider after its cooldown is a pipeline step's call, and
the step pays for finding out whether the provider is back. A probe is one cheap call - the
``project_insights`` task on a two-line scene, one attempt, the provider's cheapest configured model, no
fallback - through the same ``ResilientCaller``, adapters and shared breaker the assets use, so the
breaker records its outcome: a success closes it for every process, a transient failure re-opens it for
a longer open period (x1.5, up to the cooldown). The Dagster job that runs it on a schedule is
``cineforge_assets/health.py``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from resources.providers.base import ProviderAdapter
from resources.providers.prompts import build_request, parse_response
from resources.resilience.breaker import CircuitBreaker
from resources.resilience.breaker_state import BreakerSnapshot
from resources.resilience.chain import DEFAULT_CHAINS, OFFLINE, StagePolicy, provider_for
from resources.resilience.errors import ChainExhaustedError, ProviderError, UnsupportedParameterError
from resources.resilience.executor import ResilientCaller
from resources.resilience.telemetry import TelemetryListener

HEALTH_STAGE = "health"
PROBE_TASK = "project_insights"
PROBE_PAYLOAD: dict[str, Any] = {
    "title": "Health probe",
    "characters": ["ANNA"],
    "excerpt": "INT. KITCHEN - DAY\n\nAnna pours coffee.",
    "scene_count": 1,
}
PROBE_MAX_TOKENS = 256

# Relative price tiers by model-name marker (cheapest first). Used only to pick, among the models a
# deployment already uses, the one a probe should spend on; an unknown name ranks last.
_PRICE_TIERS: tuple[tuple[str, ...], ...] = (
    ("nano", "flash-lite", "haiku", "mini"),
    ("flash",),
    ("sonnet", "gpt-4"),
)

ProbeAction = Literal["probe", "none"]
ProbeOutcome = Literal["recovered", "still_down", "answered", "not_probed", "unavailable"]


@dataclass(frozen=True, slots=True)
class ProbePlan:
    """What to do about one provider's breaker."""

    provider: str
    state: str
    action: ProbeAction
    reason: str


@dataclass(frozen=True, slots=True)
class ProbeResult:
    provider: str
    model: str
    outcome: ProbeOutcome
    detail: str


def plan_probes(snapshots: Mapping[str, BreakerSnapshot], *, max_probes: int = 1) -> list[ProbePlan]:
    """One plan per provider: probe an open breaker whose cooldown has elapsed, or a half-open one with
    a free probe slot; leave closed breakers and cooling-down ones alone."""
    plans: list[ProbePlan] = []
    for provider, snap in sorted(snapshots.items()):
        if provider == OFFLINE:
            continue  # the local engine has nothing to probe
        if snap.state == "closed":
            why = "closed, warming up: first calls are budgeted" if snap.warming else "closed: calls flow normally"
            plans.append(ProbePlan(provider, snap.state, "none", why))
        elif snap.state == "open" and snap.reopens_in_seconds > 0:
            left = f"open: cooling down, {snap.reopens_in_seconds:.0f}s left"
            plans.append(ProbePlan(provider, snap.state, "none", left))
        elif snap.state == "open":
            due = "open: cooldown elapsed, half-open probe due"
            plans.append(ProbePlan(provider, snap.state, "probe", due))
        elif snap.probes_in_flight >= max_probes:
            plans.append(ProbePlan(provider, snap.state, "none", "half-open: a probe is already in flight"))
        else:
            plans.append(ProbePlan(provider, snap.state, "probe", "half-open: probe slot free"))
    return plans


def _price_rank(model: str) -> int:
    name = model.lower()
    for rank, markers in enumerate(_PRICE_TIERS):
        if any(marker in name for marker in markers):
            return rank
    return len(_PRICE_TIERS)


def probe_model_for(
    provider: str,
    chains: Mapping[str, Sequence[str]] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> str | None:
    """The model a probe of ``provider`` calls: ``overrides[provider]``, else the cheapest of the
    provider's models in the configured chains (``DEFAULT_CHAINS`` when none), else None."""
    if overrides and provider in overrides:
        return overrides[provider]
    models: list[str] = []
    for chain in (chains or DEFAULT_CHAINS).values():
        for model in chain:
            try:
                owner = provider_for(model)
            except ValueError:
                continue
            if owner == provider and model not in models:
                models.append(model)
    if not models:
        return None
    return min(models, key=lambda m: (_price_rank(m), models.index(m)))


def probe_provider(
    provider: str,
    model: str,
    adapter: ProviderAdapter,
    breaker: CircuitBreaker,
    *,
    timeout_seconds: float,
    listeners: Sequence[TelemetryListener] = (),
    run_id: str | None = None,
) -> ProbeResult:
    """One call to ``model`` through the executor (so the breaker's permit, probe slot and outcome are
    handled exactly as in a pipeline step): one attempt, no retry, no fallback."""
    policy = StagePolicy(
        max_attempts=1,
        attempts_per_model=1,
        deadline_seconds=timeout_seconds + 5.0,
        request_timeout_seconds=timeout_seconds,
    )
    caller = ResilientCaller(
        {provider: adapter},
        breaker,
        policy=policy,
        rng=random.Random(0),
        listeners=listeners,
        run_id=run_id,
    )
    request = build_request(PROBE_TASK, PROBE_PAYLOAD, stage=HEALTH_STAGE, max_tokens=PROBE_MAX_TOKENS)
    try:
        outcome = caller.call(
            HEALTH_STAGE, request, lambda text: parse_response(PROBE_TASK, text), chain=[model]
        )
    except ProviderError as exc:
        # A model-level refusal (the probe's model retired: ``model_not_found``) ends a one-model walk as
        # "chain exhausted"; what the operator needs is the refusal itself, not "still down".
        if isinstance(exc, ChainExhaustedError) and isinstance(exc.last_error, UnsupportedParameterError):
            exc = exc.last_error
        detail = f"{exc.error_class}: {exc.error_code or exc}"
        return ProbeResult(provider, model, _failed_outcome(exc), detail)
    return ProbeResult(provider, model, "recovered", f"answered (request id {outcome.completion.request_id})")


def _failed_outcome(exc: ProviderError) -> ProbeOutcome:
    if exc.error_class == "provider_unavailable":
        # bad key: the breaker is left as it was; unknown model (model-level): the breaker counted the answer
        return "unavailable"
    if exc.error_code == "all_providers_open":
        return "not_probed"  # another process holds the probe slot or re-opened the breaker first
    if exc.error_class == "permanent":
        return "answered"  # the provider is up (the breaker counted it a success) but refused the probe
    return "still_down"


def describe(snap: BreakerSnapshot) -> str:
    line = (
        f"{snap.provider}: {snap.state}, {snap.consecutive_failures} consecutive failure(s), "
        f"{snap.window_failures}/{snap.window_calls} failed in window"
    )
    if snap.state == "open":
        line += f", reopens in {snap.reopens_in_seconds:.0f}s"
    if snap.warming:
        line += f", warming up ({snap.probes_in_flight} warm-up call(s) in flight)"
    elif snap.probes_in_flight:
        line += f", {snap.probes_in_flight} probe(s) in flight"
    return line


def states_table(snapshots: Mapping[str, BreakerSnapshot], results: Mapping[str, ProbeResult]) -> str:
    rows = [
        "| provider | state | consecutive failures | window failed/calls | reopens in s | probe |",
        "|---|---|---|---|---|---|",
    ]
    for provider, snap in sorted(snapshots.items()):
        result = results.get(provider)
        probe = f"{result.outcome} ({result.model})" if result else ""
        rows.append(
            f"| {provider} | {snap.state} | {snap.consecutive_failures} | {snap.window_failures}/"
            f"{snap.window_calls} | {snap.reopens_in_seconds:.0f} | {probe} |"
        )
    return "\n".join(rows)
