"""How an AI-backed asset calls the provider resource and reports what happened, the Dagster way.

* every attempt becomes a structured event in the run's event log (an ``AssetObservation`` whose
  ``event`` is ``stage_retrying`` / ``stage_fallback`` / ``stage_failed`` / ``breaker_<state>``);
* a served call becomes materialization metadata (attempt table, ``attempt_count``, provider, model,
  ``cost_usd`` and ``fallback_premium_usd``);
* after every AI stage, served or failed, the run is tagged with what it has spent so far (see
  ``tag_spend``: total, fallback premium, per stage cost and who served it), read from the spend ledger so
  the figures hold across step processes and step retries;
* a permanent error becomes ``Failure(allow_retries=False)`` so Dagster does not retry it;
* every provider behind an open breaker becomes ``RetryRequested`` timed to the earliest re-opening;
* anything transient that escapes the layer is re-raised for the asset's ``RetryPolicy``;
* anything else the asset raises (``retry_only_what_can_heal``): a failure of the machine (OS, database)
  goes to the ``RetryPolicy``; a bug or bad data becomes ``Failure(allow_retries=False)``.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dagster import (
    AssetExecutionContext,
    AssetObservation,
    Backoff,
    Failure,
    Jitter,
    MetadataValue,
    RetryPolicy,
    RetryRequested,
)

from resources.ai import AIProviderResource, AIResult
from resources.resilience.breaker_state import BreakerTransition
from resources.resilience.budget import BudgetExceededError, run_spend
from resources.resilience.cost import attempts_cost, fallback_premium
from resources.resilience.errors import AllProvidersOpenError, ProviderError
from resources.resilience.telemetry import AttemptRecord


def _retry_delay() -> float:
    return float(os.environ.get("CINEFORGE_STEP_RETRY_DELAY_SECONDS", "5"))


# Transient errors that outlast the provider layer's own budget get a second and third chance a
# little later, with Dagster's exponential backoff and jitter; permanent ones never reach it.
AI_RETRY_POLICY = RetryPolicy(
    max_retries=3, delay=_retry_delay(), backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
BREAKER_RETRY_LIMIT = 3

_EVENT_FOR_DECISION = {
    "retry_same_model": "stage_retrying",
    "fallback_next_model": "stage_fallback",
    "fallback_next_provider": "stage_fallback",
    "skip_provider": "stage_fallback",
    "stop": "stage_failed",
}


class DagsterEventListener:
    """Telemetry listener that mirrors attempts and breaker transitions into the run's event log."""

    def __init__(self, context: AssetExecutionContext) -> None:
        self.context = context

    def _observe(self, event: str, metadata: dict[str, Any]) -> None:
        clean = {k: v for k, v in metadata.items() if v is not None}
        self.context.log_event(
            AssetObservation(
                asset_key=self.context.asset_key,
                partition=self.context.partition_key if self.context.has_partition_key else None,
                metadata={"event": event, **clean},
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
        self._observe(event, _record_metadata(record))

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        self.context.log.warning(
            f"breaker {transition.provider}: {transition.from_state} -> {transition.to_state} ({transition.reason})"
        )
        self._observe(
            f"breaker_{transition.to_state}",
            {
                "provider": transition.provider,
                "from_state": transition.from_state,
                "to_state": transition.to_state,
                "reason": str(transition.reason),
            },
        )


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


SPEND_TAG = "cineforge/cost_usd"
PREMIUM_TAG = "cineforge/fallback_premium_usd"
STAGE_COST_TAG = "cineforge/cost_usd.{stage}"
STAGE_SERVED_TAG = "cineforge/served.{stage}"


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


def ai_metadata(result: AIResult[Any]) -> dict[str, Any]:
    return {
        **cost_metadata(result.attempts),
        "provider": result.provider,
        "model": result.model,
        "attempt_count": result.attempt_count,
        "final_error_class": result.final_error_class,
        "fallback_taken": any(
            a.decision.startswith("fallback") or a.decision == "skip_provider" for a in result.attempts
        ),
        "attempts": MetadataValue.md(attempts_table(result.attempts)),
    }


def _failure_metadata(error: ProviderError) -> dict[str, Any]:
    attempts: list[AttemptRecord] = list(getattr(error, "attempts", []) or [])
    meta: dict[str, Any] = {
        "error_class": error.error_class,
        "error_type": type(error).__name__,
        "provider": error.provider or "",
        "model": error.model or "",
        "request_id": error.request_id or "",
        "error_code": error.error_code or "",
        "attempt_count": sum(1 for a in attempts if a.outcome != "skipped"),
    }
    if attempts:
        meta["attempts"] = MetadataValue.md(attempts_table(attempts))
        meta.update({k: v for k, v in cost_metadata(attempts).items() if v is not None})
    return meta


FAILURE_CLASS_TAG = "cineforge/failure_class"
FAILED_STAGE_TAG = "cineforge/failed_stage"


def tag_failure(context: AssetExecutionContext, error_class: str, stage: str) -> None:
    """Record the failure class on the run itself, so run-level retry logic reads it from tags."""
    try:
        context.instance.add_run_tags(
            context.run_id, {FAILURE_CLASS_TAG: error_class, FAILED_STAGE_TAG: stage}
        )
    except Exception as exc:  # a tagging problem must never mask the real failure
        context.log.warning(f"could not tag run with failure class: {exc}")


def run_ai_task(
    context: AssetExecutionContext, ai: AIProviderResource, *, stage: str, task: str, payload: dict[str, Any]
) -> AIResult[Any]:
    try:
        result = ai.run_task(
            stage=stage,
            task=task,
            payload=payload,
            listeners=[DagsterEventListener(context)],
            run_id=context.run_id,
            partition=context.partition_key if context.has_partition_key else None,
        )
        tag_spend(context, ai, stage, f"{result.provider}/{result.model}")
        return result
    except AllProvidersOpenError as exc:
        tag_spend(context, ai, stage, None)
        wait = max(1.0, float(exc.reopens_in_seconds))
        context.log.warning(f"{stage}: every provider's breaker is open; retrying the step in {wait:.1f}s")
        raise RetryRequested(max_retries=BREAKER_RETRY_LIMIT, seconds_to_wait=wait) from exc
    except ProviderError as exc:
        tag_spend(context, ai, stage, None)
        raise classified_failure(context, stage, exc) from exc


def classified_failure(context: AssetExecutionContext, stage: str, exc: ProviderError) -> Failure:
    """The ``Failure`` for a provider error: permanent and provider-level ones are never retried;
    transient ones go to the asset's ``RetryPolicy`` (``allow_retries=True``). The class is also put on
    the run's tags so run-level retry logic can tell the two apart."""
    if exc.error_class == "transient":
        context.log.error(f"{stage}: transient failure escaped the provider layer: {exc}")
        description = f"{stage}: transient provider failure after the layer's budget: {exc}"
    elif exc.error_code == BudgetExceededError.code:
        description = f"{stage}: spending cap reached, not retried: {exc}"
    elif exc.error_class == "provider_unavailable":
        description = f"{stage}: no usable provider (check API keys / model names): {exc}"
    else:
        description = f"{stage}: permanent provider error, not retried: {exc}"
    retryable = exc.error_class == "transient"
    tag_failure(context, "transient" if retryable else "permanent", stage)
    return Failure(description=description, metadata=_failure_metadata(exc), allow_retries=retryable)


def _environment_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [OSError, MemoryError, sqlite3.OperationalError]
    try:  # the PostgreSQL breaker store / instance on a multi-host deployment
        import psycopg2

        found.append(psycopg2.OperationalError)
    except ImportError:
        pass
    return tuple(found)


# Failures of the machine a step runs on (network, disk, a locked or unreachable database), not of its
# code or input: another attempt a little later can succeed.
ENVIRONMENT_ERRORS = _environment_errors()
_F = TypeVar("_F", bound=Callable[..., Any])


def retry_only_what_can_heal(stage: str) -> Callable[[_F], _F]:
    """Wrap an asset's compute function so its ``RetryPolicy`` only sees failures that can heal.

    Dagster's ``RetryPolicy`` retries every exception a step raises (it has no filter), so a bug or a
    malformed artifact would cost three delayed retries that fail the same way. Here ``Failure`` and
    ``RetryRequested`` pass untouched (the provider layer has classified them already),
    ``ENVIRONMENT_ERRORS`` pass on to the policy (run tagged transient), and any other exception becomes
    ``Failure(allow_retries=False)`` (run tagged permanent), chained to the original for its traceback.
    Apply it under ``@asset``: ``functools.wraps`` keeps the signature Dagster reads parameters from.
    """

    def decorate(compute: _F) -> _F:
        @functools.wraps(compute)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return compute(*args, **kwargs)
            except (Failure, RetryRequested):
                raise
            except ENVIRONMENT_ERRORS:
                tag_failure(_context_of(args, kwargs), "transient", stage)
                raise
            except Exception as exc:
                tag_failure(_context_of(args, kwargs), "permanent", stage)
                detail = str(exc)[:500]
                raise Failure(
                    description=f"{stage}: {type(exc).__name__} in the step's own code or data; not retried, "
                    f"it would fail the same way: {detail}",
                    metadata={"error_class": "permanent", "error_type": type(exc).__name__},
                    allow_retries=False,
                ) from exc

        return guarded  # type: ignore[return-value]

    return decorate


def _context_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> AssetExecutionContext:
    return kwargs["context"] if "context" in kwargs else args[0]
