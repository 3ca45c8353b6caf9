"""Provider health probe job: give an open circuit breaker its half-open probe off the critical path.

The ``provider_health`` job (scheduled every few minutes, see ``schedules.py``) reads every breaker's
``snapshot()`` and, for each provider whose breaker is open with its cooldown elapsed (or half-open with a
free probe slot), makes one cheap probe call (``resources.resilience.health_probe``: what is probed, how,
and what the outcome means). Every provider's state is logged and attached to the step's output metadata.
This module is only the Dagster shell: the op, its config and the job.
"""

# No ``from __future__ import annotations``: Dagster reads the op's config/resource annotations at
# decoration time and cannot resolve them from strings.
from typing import Any

from dagster import Config, MetadataValue, Nothing, OpExecutionContext, Out, Output, job, op
from pydantic import Field

from cineforge_assets.run_tags import JOB_KIND_TAG
from resources.ai import AIProviderResource, ProviderSession
from resources.resilience.breaker_state import BreakerTransition
from resources.resilience.health_probe import (
    ProbePlan,
    ProbeResult,
    describe,
    plan_probes,
    probe_model_for,
    probe_provider,
    states_table,
)
from resources.resilience.telemetry import AttemptRecord

HEALTH_JOB_NAME = "provider_health"


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
    results: dict[str, ProbeResult] = {}
    with ai.session([_ProbeLog(context)]) as session:
        before = session.breaker.snapshot()
        if not before:
            context.log.info("no provider breaker recorded yet: nothing has called a provider")
        plans = plan_probes(before, max_probes=ai.breaker_half_open_probes)
        for plan in plans:
            context.log.info(f"{describe(before[plan.provider])} -> {plan.reason}")
        for plan in plans:
            if plan.action == "probe":
                results[plan.provider] = _probe_one(context, ai, config, plan, session)
        after = session.breaker.snapshot()
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
    session: ProviderSession,
) -> ProbeResult:
    model = probe_model_for(plan.provider, ai.chains or None, config.probe_models)
    adapter = session.adapters.get(plan.provider)
    if model is None or adapter is None:
        why = "no model configured" if model is None else f"no adapter in mode {ai.mode!r} (key missing?)"
        return ProbeResult(plan.provider, model or "", "not_probed", why)
    return probe_provider(
        plan.provider,
        model,
        adapter,
        session.breaker,
        timeout_seconds=config.request_timeout_seconds,
        listeners=session.listeners,
        run_id=context.run_id,
    )


@job(
    name=HEALTH_JOB_NAME,
    description="Provider health: logs breaker states; one half-open probe per provider past its cooldown.",
    tags={JOB_KIND_TAG: "health"},
)
def provider_health_job() -> None:
    probe_provider_health()
