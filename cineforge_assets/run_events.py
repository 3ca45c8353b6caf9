"""What a step reports about its provider calls: events in the run's event log, metadata, spend tags.

* every attempt that did not simply succeed becomes a structured event in the run's event log (an
  ``AssetObservation`` whose ``event`` is ``stage_retrying`` / ``stage_fallback`` / ``stage_failed``), every
  breaker transition one whose ``event`` is ``breaker_<state>``, and every event of the B-roll await gate
  (``veo3.gate.retried``) one named after it: ``RunEventLog`` is the one adapter for all three;
* a served call becomes materialization metadata (``ai_metadata``: attempt table, ``attempt_count``,
  provider, model, ``cost_usd`` and ``fallback_premium_usd``);
* after every AI stage, served or failed, the run is tagged with what it has spent so far (``tag_spend``:
  total, fallback premium, per stage cost and who served it), read from the spend ledger so the figures
  hold across step processes and step retries; ``spend_from_tags`` reads them back for the CLI.

What a failure does to the step (retry or not) is ``cineforge_assets.step_failures``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetObservation, MetadataValue

from cineforge_assets.broll.gate import PipelineEvent
from cineforge_assets.run_tags import PREMIUM_TAG, SPEND_TAG, STAGE_COST_TAG, STAGE_SERVED_TAG
from resources.ai import AIProviderResource, AIResult
from resources.resilience.breaker_state import BreakerTransition
from resources.resilience.budget import run_spend
from resources.resilience.cost import attempts_cost, fallback_premium
from resources.resilience.telemetry import AttemptRecord

# The attempts worth an event: a retry, a fallback or the end of the chain (a plain success is only logged).
_EVENT_FOR_DECISION = {
    "retry_same_model": "stage_retrying",
    "fallback_next_model": "stage_fallback",
    "fallback_next_provider": "stage_fallback",
    "skip_provider": "stage_fallback",
    "stop": "stage_failed",
}


class RunEventLog:
    """The step's asset in the run's event log: a telemetry listener of provider attempts and breaker
    transitions (``resources.resilience``) and the B-roll gate's event bus (``cineforge_assets.broll.gate``),
    each event written as an ``AssetObservation`` of the step's asset and partition."""

    def __init__(self, context: AssetExecutionContext) -> None:
        self.context = context
        self.partition = context.partition_key if context.has_partition_key else None

    def observe(self, event: str, metadata: Mapping[str, Any]) -> None:
        """One observation named ``event``; ``None`` values are left out, lists and dicts kept as JSON."""
        values = {
            key: MetadataValue.json(value) if isinstance(value, (dict, list)) else value
            for key, value in metadata.items()
            if value is not None
        }
        self.context.log_event(
            AssetObservation(
                asset_key=self.context.asset_key, partition=self.partition, metadata={"event": event, **values}
            )
        )

    def on_attempt(self, record: AttemptRecord) -> None:
        event = _EVENT_FOR_DECISION.get(record.decision)
        line = (
            f"[{record.stage}] attempt {record.attempt} {record.provider}/{record.model}: {record.outcome}"
            f" {record.error_code or ''} -> {record.decision}"
            + (f" after {record.delay_s:.2f}s" if record.delay_s else "")
        )
        if event is None:
            self.context.log.info(line)
            return
        self.context.log.warning(line)
        self.observe(event, _record_metadata(record))

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        self.context.log.warning(
            f"breaker {transition.provider}: {transition.from_state} -> {transition.to_state} ({transition.reason})"
        )
        self.observe(
            f"breaker_{transition.to_state}",
            {
                "provider": transition.provider,
                "from_state": transition.from_state,
                "to_state": transition.to_state,
                "reason": str(transition.reason),
            },
        )

    def emit(self, event: PipelineEvent) -> None:
        self.context.log.warning(f"{event.event_name}: {event.data}")
        self.observe(event.event_name, {"occurred_at": event.occurred_at.isoformat(), **event.data})


def _record_metadata(record: AttemptRecord) -> dict[str, Any]:
    return {
        "stage": record.stage,
        "attempt": record.attempt,
        "provider": record.provider,
        "model": record.model,
        "request_id": record.request_id,
        "error_code": record.error_code,
        "error_class": record.error_class,
        "status": record.status,
        "delay_s": round(record.delay_s, 3),
        "decision": record.decision,
        "terminal_reason": record.terminal_reason,
        "cost_usd": record.cost_usd,
    }


def _usd(value: float | None) -> str:
    return "unpriced" if value is None else f"{value:.6f}"


def attempts_table(attempts: list[AttemptRecord]) -> str:
    header = "| # | provider | model | outcome | error | class | request id | delay s | decision | cost USD |"
    rows = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for a in attempts:
        rows.append(
            f"| {a.attempt} | {a.provider} | {a.model} | {a.outcome} | {a.error_code or ''} | "
            f"{a.error_class or ''} | {a.request_id or ''} | {a.delay_s:.2f} | {a.decision} | {_usd(a.cost_usd)} |"
        )
    return "\n".join(rows)


def cost_metadata(attempts: list[AttemptRecord]) -> dict[str, Any]:
    """``cost_usd`` of the calls (``None`` if a model is unpriced, with ``unpriced_models``) and the premium
    paid over the chain's first model for the same tokens."""
    cost = attempts_cost(attempts)
    meta: dict[str, Any] = {
        "cost_usd": None if cost.usd is None else round(cost.usd, 6),
        "fallback_premium_usd": round(fallback_premium(attempts), 6),
    }
    if cost.unpriced:
        meta["unpriced_models"] = ", ".join(cost.unpriced)
    return meta


def fallback_taken(attempts: list[AttemptRecord]) -> bool:
    return any(a.decision.startswith("fallback") or a.decision == "skip_provider" for a in attempts)


def ai_metadata(result: AIResult[Any]) -> dict[str, Any]:
    return {
        **cost_metadata(result.attempts),
        "provider": result.provider,
        "model": result.model,
        "attempt_count": result.attempt_count,
        "final_error_class": result.final_error_class,
        "fallback_taken": fallback_taken(result.attempts),
        "attempts": MetadataValue.md(attempts_table(result.attempts)),
    }


def tag_spend(
    context: AssetExecutionContext, ai: AIProviderResource, stage: str, served: str | None
) -> None:
    """Put the run's spend so far on its tags (the ledger's figures: every process of the run counted)."""
    try:
        ledger = ai.ledger(context.run_id)
        try:
            spend = run_spend(ledger.store, context.run_id)
        finally:
            ledger.store.close()
        tags = {
            SPEND_TAG: f"{spend.total_usd:.6f}",
            PREMIUM_TAG: f"{spend.fallback_premium_usd:.6f}",
            STAGE_COST_TAG.format(stage=stage): f"{spend.by_stage.get(stage, 0.0):.6f}",
        }
        if served:
            tags[STAGE_SERVED_TAG.format(stage=stage)] = served
        context.instance.add_run_tags(context.run_id, tags)
    except Exception as exc:  # reporting spend must never fail the step that did the work
        context.log.warning(f"could not tag the run with its spend: {exc}")


def spend_from_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    """The run's spend as the CLI summary shows it, from the tags ``tag_spend`` wrote.

    ``cost_usd`` is the sum of the stages' costs (each stage's tag is its own ledger total, so steps that ran
    in parallel cannot overwrite each other's figure); ``stages`` maps stage -> provider, model, cost_usd.
    """
    prefix, served_prefix = STAGE_COST_TAG.format(stage=""), STAGE_SERVED_TAG.format(stage="")
    stages: dict[str, dict[str, Any]] = {}
    for key, value in tags.items():
        if key.startswith(prefix):
            stages.setdefault(key.removeprefix(prefix), {})["cost_usd"] = float(value)
        elif key.startswith(served_prefix):
            provider, _, model = value.partition("/")
            stages.setdefault(key.removeprefix(served_prefix), {}).update(provider=provider, model=model)
    for entry in stages.values():
        entry.setdefault("provider", None)
        entry.setdefault("model", None)
        entry.setdefault("cost_usd", 0.0)
    return {
        "cost_usd": round(sum(entry["cost_usd"] for entry in stages.values()), 6),
        "fallback_premium_usd": float(tags.get(PREMIUM_TAG, "0") or 0),
        "stages": dict(sorted(stages.items())),
    }
