"""Step failure policy: which failures of an asset's step Dagster retries, and what the run is told.

The provider layer (``resources.resilience``) decides retries and fallbacks *within* one call; this module
decides what happens to the *step* when the layer gives up, and ``cineforge_assets.run_retry`` what happens
to the *run* when a step failed:

* a permanent provider error becomes ``Failure(allow_retries=False)`` so Dagster does not retry it;
* a transient one that escaped the layer's own budget is a ``Failure`` the asset's ``AI_RETRY_POLICY``
  retries (exponential backoff and jitter);
* every provider behind an open breaker becomes ``RetryRequested`` timed to the earliest re-opening;
* anything else the asset raises (``retry_only_what_can_heal``): a failure of the machine (OS, database)
  goes to the ``RetryPolicy``; a bug or bad data becomes ``Failure(allow_retries=False)``;
* a bad input or an unusable upstream artifact is a ``permanent_failure`` at once;
* every failure also tags the run with its class and stage (``FAILURE_CLASS_TAG``, ``FAILED_STAGE_TAG``),
  which is what the run-retry sensor reads.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from dagster import AssetExecutionContext, Backoff, Failure, Jitter, MetadataValue, RetryPolicy, RetryRequested

from cineforge_assets.run_events import attempts_table, cost_metadata
from cineforge_assets.run_tags import FAILED_STAGE_TAG, FAILURE_CLASS_TAG
from resources.resilience.budget import BudgetExceededError
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


def tag_failure(context: AssetExecutionContext, error_class: str, stage: str) -> None:
    """Record the failure class on the run itself, so run-level retry logic reads it from tags."""
    try:
        context.instance.add_run_tags(
            context.run_id, {FAILURE_CLASS_TAG: error_class, FAILED_STAGE_TAG: stage}
        )
    except Exception as exc:  # a tagging problem must never mask the real failure
        context.log.warning(f"could not tag run with failure class: {exc}")


def permanent_failure(
    context: AssetExecutionContext, stage: str, description: str, metadata: Mapping[str, Any] | None = None
) -> Failure:
    """The ``Failure`` for what another attempt would meet again (a bad file, an unusable artifact, a bug):
    never retried, and the run tagged permanent so the run-retry sensor leaves it alone. Raise it."""
    tag_failure(context, "permanent", stage)
    return Failure(
        description=description, metadata={"error_class": "permanent", **(metadata or {})}, allow_retries=False
    )


def require_usable_upstream(context: AssetExecutionContext, upstream: str, usable: bool, why: str) -> None:
    """Stop at once, naming the asset to re-materialize, when an upstream artifact is unusable
    (e.g. written by an older version); ``cineforge resume`` reads ``remediate`` and steps back to it."""
    if usable:
        return
    raise permanent_failure(
        context,
        context.asset_key.to_user_string(),
        f"upstream {upstream} for partition {context.partition_key!r} is unusable ({why}): "
        f"re-materialize {upstream} (`cineforge resume RUN_ID` does this)",
        {"remediate": upstream},
    )


def failure_metadata(error: ProviderError) -> dict[str, Any]:
    """What a provider error says about itself, for the ``Failure``'s metadata (attempts and cost included)."""
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
    return Failure(description=description, metadata=failure_metadata(exc), allow_retries=retryable)


def retry_when_breakers_reopen(
    context: AssetExecutionContext, stage: str, errors: Iterable[AllProvidersOpenError], detail: str = ""
) -> RetryRequested:
    """The step's answer when every provider it needs is behind an open breaker: try the whole step again
    once the first of them may re-open (at least a second from now), at most ``BREAKER_RETRY_LIMIT`` times.
    Raise it."""
    wait = max([1.0, *(float(e.reopens_in_seconds) for e in errors)])
    context.log.warning(f"{stage}: every provider's breaker is open{detail}; retrying the step in {wait:.1f}s")
    return RetryRequested(max_retries=BREAKER_RETRY_LIMIT, seconds_to_wait=wait)


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
                detail = str(exc)[:500]
                raise permanent_failure(
                    _context_of(args, kwargs),
                    stage,
                    f"{stage}: {type(exc).__name__} in the step's own code or data; not retried, "
                    f"it would fail the same way: {detail}",
                    {"error_type": type(exc).__name__},
                ) from exc

        return guarded  # type: ignore[return-value]

    return decorate


def _context_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> AssetExecutionContext:
    return kwargs["context"] if "context" in kwargs else args[0]
