"""Provider health probe: give an open circuit breaker its half-open probe off the critical path.

Without a probe, the first call to a provider after its cooldown is a pipeline step's call: the step
pays for finding out whether the provider is back. The ``provider_health`` job (scheduled every few
minutes, see ``schedules.py``) reads every breaker's ``snapshot()`` and, for each provider whose breaker
is open with its cooldown elapsed (or half-open with a free probe slot), makes one cheap call - the
``project_insights`` task on a two-line scene, one attempt, that provider's cheapest configured model,
no fallback - through the same ``ResilientCaller``, adapters and shared breaker the assets use. The
breaker records the outcome: a success closes it for every process, a transient failure re-opens it
for a longer open period (x1.5, up to the cooldown). Every provider's state is logged and attached to
the step's output metadata.

Pure decisions (``plan_probes``, ``probe_model_for``) are separate from the Dagster ``@op``/``@job``.
"""

# No ``from __future__ import annotations``: Dagster reads the op's config/resource annotations at
# decoration time and cannot resolve them from strings.
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from dagster import Config, MetadataValue, Nothing, OpExecutionContext, Out, Output, job, op
from pydantic import Field

from resources.ai import AIProviderResource
from resources.providers.base import ProviderAdapter
from resources.providers.prompts import build_request, parse_response
from resources.resilience.breaker import BreakerSnapshot, BreakerTransition, CircuitBreaker
from resources.resilience.chain import DEFAULT_CHAINS, OFFLINE, StagePolicy, provider_for
from resources.resilience.errors import ProviderError
from resources.resilience.executor import ResilientCaller
from resources.resilience.telemetry import AttemptRecord, JsonlTelemetrySink, TelemetryListener

HEALTH_STAGE = "health"
HEALTH_JOB_NAME = "provider_health"
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
        detail = f"{exc.error_class}: {exc.error_code or exc}"
        return ProbeResult(provider, model, _failed_outcome(exc), detail)
    return ProbeResult(provider, model, "recovered", f"answered (request id {outcome.completion.request_id})")


def _failed_outcome(exc: ProviderError) -> ProbeOutcome:
    if exc.error_class == "provider_unavailable":
        return "unavailable"  # bad key / unknown model: the breaker is left as it was
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


# ------------------------------------------------------------------------------------ Dagster shell


class _ProbeLog:
    """Mirrors probe attempts and breaker transitions into the run's log."""

    def __init__(self, context: OpExecutionContext) -> None:
        self.context = context

    def on_attempt(self, record: AttemptRecord) -> None:
        self.context.log.info(
            f"[health] {record.provider}/{record.model}: {record.outcome} {record.error_code or ''}"
            f" (breaker {record.breaker_state or '-'})"
        )

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        self.context.log.warning(
            f"breaker {transition.provider}: {transition.from_state} -> {transition.to_state}"
            f" ({transition.reason})"
        )


class HealthProbeConfig(Config):
    probe_models: dict[str, str] = Field(
        default_factory=dict,
        description="provider -> model to probe; default: the provider's cheapest model in the chains",
    )
    request_timeout_seconds: float = Field(default=15.0, gt=0)


@op(
    name="probe_provider_health",
    out=Out(Nothing),
    description="Logs every provider's breaker state and probes open breakers whose cooldown has elapsed.",
)
def probe_provider_health(
    context: OpExecutionContext, config: HealthProbeConfig, ai: AIProviderResource
) -> Output[None]:
    log = _ProbeLog(context)
    sink = JsonlTelemetrySink(ai.telemetry_file())
    listeners: list[Any] = [sink, log]
    breaker = ai.breaker(listeners)
    results: dict[str, ProbeResult] = {}
    try:
        before = breaker.snapshot()
        if not before:
            context.log.info("no provider breaker recorded yet: nothing has called a provider")
        plans = plan_probes(before, max_probes=ai.breaker_half_open_probes)
        due = [plan for plan in plans if plan.action == "probe"]
        for plan in plans:
            context.log.info(f"{describe(before[plan.provider])} -> {plan.reason}")
        if due:
            with httpx.Client(transport=httpx.HTTPTransport(retries=0)) as client:
                adapters = ai.adapters(client)
                for plan in due:
                    result = _probe_one(context, ai, config, plan, adapters, breaker, listeners)
                    results[plan.provider] = result
        after = breaker.snapshot()
    finally:
        breaker.store.close()
        sink.close()
    for provider, result in sorted(results.items()):
        context.log.info(f"probe {provider}/{result.model}: {result.outcome} - {result.detail}")
        if provider in after:
            context.log.info(f"now {describe(after[provider])}")
    metadata: dict[str, Any] = {
        "providers": len(after),
        "open": sum(1 for s in after.values() if s.state == "open"),
        "probed": len(results),
        "recovered": sum(1 for r in results.values() if r.outcome == "recovered"),
        "states": MetadataValue.md(states_table(after, results)),
        "mode": ai.mode,
    }
    return Output(None, metadata=metadata)


def _probe_one(
    context: OpExecutionContext,
    ai: AIProviderResource,
    config: HealthProbeConfig,
    plan: ProbePlan,
    adapters: Mapping[str, ProviderAdapter],
    breaker: CircuitBreaker,
    listeners: Sequence[TelemetryListener],
) -> ProbeResult:
    model = probe_model_for(plan.provider, ai.chains or None, config.probe_models)
    adapter = adapters.get(plan.provider)
    if model is None or adapter is None:
        why = "no model configured" if model is None else f"no adapter in mode {ai.mode!r} (key missing?)"
        return ProbeResult(plan.provider, model or "", "not_probed", why)
    return probe_provider(
        plan.provider,
        model,
        adapter,
        breaker,
        timeout_seconds=config.request_timeout_seconds,
        listeners=listeners,
        run_id=context.run_id,
    )


@job(
    name=HEALTH_JOB_NAME,
    description="Provider health: logs breaker states; one half-open probe per provider past its cooldown.",
    tags={"cineforge/kind": "health"},
)
def provider_health_job() -> None:
    probe_provider_health()
