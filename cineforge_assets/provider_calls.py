"""How an asset calls the provider resource: one call (``run_ai_task``), or a stage's work as several calls
(``run_parts``), parts in flight together, each failing or falling back alone.

Every call's attempts go to the run's event log and its spend to the run's tags
(``cineforge_assets.run_events``); what the step raises when calls fail is decided by
``cineforge_assets.step_failures``.

``run_parts`` sends each part (an ``enrich_scenes`` batch, a ``normalize`` chunk) through the provider
resource, the first alone and the rest on a bounded thread pool inside the step (the step itself holds one
slot of the ``provider_calls`` pool). Each part walks the stage's fallback chain on its own: a part that
fails is retried or falls back by the resilience layer without touching the others, and a part whose answer
does not fit its model (cut at the output ceiling, or a prompt over the context window) is split in two and
each half sent again (``split``: ``split_batch`` for scenes, ``split_with_overlap`` for prose paragraphs).
Parts a model answered are kept in the response cache, so when the step fails and is retried or resumed,
only the missing parts are paid for; a part that had to be split leaves a note there too (``SplitMemory``),
so the rerun goes straight to its halves instead of paying again for the call that gets cut.

``failure_for`` turns what went wrong into the one thing the step raises: a ``RetryRequested`` when every
failed part met open breakers only, a retryable ``Failure`` when all failures are transient, otherwise a
permanent ``Failure``; the description always names the items (scenes, paragraphs) left without an answer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dagster import AssetExecutionContext, Failure, MetadataValue, RetryRequested

from cineforge_assets.degraded import is_heal_run
from cineforge_assets.run_events import RunEventLog, attempts_table, cost_metadata, fallback_taken, tag_spend
from cineforge_assets.screenplay.batching import split_batch
from cineforge_assets.step_failures import (
    classified_failure,
    failure_metadata,
    permanent_failure,
    retry_when_breakers_reopen,
    tag_failure,
)
from resources.ai import AIProviderResource, AIResult
from resources.resilience.budget import BudgetExceededError
from resources.resilience.errors import (
    AllProvidersOpenError,
    OutputTruncatedError,
    ProviderError,
    is_context_overflow,
)

# Error codes and messages by which the providers say a prompt is larger than the model's context window.
_CONTEXT_CODES = frozenset({"context_length_exceeded", "request_too_large"})
_CONTEXT_PHRASES = (
    "prompt is too long",  # Anthropic
    "exceed context limit",  # Anthropic: prompt + max_tokens
    "exceeds the maximum number of tokens",  # Gemini
    "context length",  # OpenAI's message
)


def run_ai_task(
    context: AssetExecutionContext, ai: AIProviderResource, *, stage: str, task: str, payload: dict[str, Any]
) -> AIResult[Any]:
    """One call of ``task`` through the stage's chain; a failure is raised as the step's classified
    ``Failure``, or ``RetryRequested`` when every provider's breaker is open."""
    events = RunEventLog(context)
    try:
        result = ai.run_task(
            stage=stage,
            task=task,
            payload=payload,
            listeners=[events],
            run_id=context.run_id,
            partition=events.partition,
        )
        tag_spend(context, ai, stage, f"{result.provider}/{result.model}")
        return result
    except AllProvidersOpenError as exc:
        tag_spend(context, ai, stage, None)
        raise retry_when_breakers_reopen(context, stage, [exc]) from exc
    except ProviderError as exc:
        tag_spend(context, ai, stage, None)
        raise classified_failure(context, stage, exc) from exc


def needs_smaller_parts(error: ProviderError) -> bool:
    """Does ``error`` say the part was too big for the model (so halves may succeed where it failed)?"""
    if isinstance(error, OutputTruncatedError) or is_context_overflow(error) or error.error_code in _CONTEXT_CODES:
        return True
    message = str(error).lower()
    return any(phrase in message for phrase in _CONTEXT_PHRASES)


@dataclass
class PartOutcome:
    """What became of one part: its answer, or the error that ended it (never both)."""

    part: range
    result: AIResult[Any] | None = None
    error: ProviderError | None = None
    splits: int = 0  # how many times the part (or a piece of it) was halved on the way


@dataclass
class PartsRun:
    """Every part's outcome, in the order of the items they cover."""

    outcomes: list[PartOutcome] = field(default_factory=list)

    @property
    def served(self) -> list[PartOutcome]:
        return [o for o in self.outcomes if o.result is not None]

    @property
    def failed(self) -> list[PartOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def calls(self) -> int:
        """Parts a model answered in this run (not read from the cache); retries are in the attempts."""
        return sum(1 for o in self.served if o.result is not None and not o.result.cached)

    @property
    def from_cache(self) -> int:
        return sum(1 for o in self.served if o.result is not None and o.result.cached)


PartCall = Callable[[range], AIResult[Any]]
Splitter = Callable[[range], tuple[range, range]]


@runtime_checkable
class SplitMemory(Protocol):
    """Where a part that had to be split is remembered across runs (the response cache, by the part's key)."""

    def was_split(self, part: range) -> bool: ...

    def remember_split(self, part: range) -> None: ...


def _run_part(part: range, call: PartCall, split: Splitter) -> list[PartOutcome]:
    memory = call if isinstance(call, SplitMemory) else None
    if not (len(part) >= 2 and memory is not None and memory.was_split(part)):
        try:
            return [PartOutcome(part, result=call(part))]
        except ProviderError as error:
            if not needs_smaller_parts(error) or len(part) < 2:
                return [PartOutcome(part, error=error)]
        if memory is not None:
            memory.remember_split(part)
    halves = [outcome for piece in split(part) for outcome in _run_part(piece, call, split)]
    for outcome in halves:
        outcome.splits += 1
    return halves


def run_parts(
    parts: Sequence[range], call: PartCall, *, concurrency: int, split: Splitter = split_batch
) -> PartsRun:
    """Run ``call`` for each part: the first alone, then the rest ``concurrency`` at a time; outcomes come
    back in item order. A part whose answer does not fit its model is cut in two by ``split`` and each
    piece run the same way (down to one item); a part ``call`` remembers as split (``SplitMemory``) goes
    to its pieces without a call.

    The first part goes alone because a provider nobody has seen succeed lately gets only two warm-up calls
    fleet-wide (see the breaker): parts sent together to a cold provider would be pushed to a fallback
    model, or all meet a dead provider at once. After one answer the breaker knows who is up.
    """
    outcomes = _run_part(parts[0], call, split) if parts else []
    rest = list(parts[1:])
    if len(rest) <= 1 or concurrency <= 1:
        outcomes += [o for part in rest for o in _run_part(part, call, split)]
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(rest)), thread_name_prefix="split-part") as pool:
            outcomes += [o for found in pool.map(lambda p: _run_part(p, call, split), rest) for o in found]
    return PartsRun(sorted(outcomes, key=lambda o: (o.part.start, o.part.stop)))


def cached_parts(context: AssetExecutionContext, parts: Sequence[range]) -> bool | Callable[[range], bool]:
    """Which of a stage's parts go through the response cache (``PartCaller``'s ``cache``): split work only.
    One call has nothing to keep for a partial retry, so a stage of one part caches only the pieces it may
    be split into; a heal run reads none of it (the cache holds the very fallback answers the heal replaces,
    under an unchanged key)."""
    if is_heal_run(context.run.tags):
        return False
    if len(parts) > 1:
        return True
    return lambda part: part != parts[0]


class PartCaller:
    """One part's call through the resource, its attempts mirrored into the run's event log; ``cache`` (for
    every part, or those it says yes to): read and keep the answer in the response cache. Which parts had
    to be split is remembered there for every part (a note costs nothing until a part is split), so with
    the cache on it is also the ``SplitMemory`` of its parts. ``total_items``: after each answered part, an
    observation with ``done``/``total`` items answered, which ``cineforge ingest`` shows as the stage's
    progress bar."""

    def __init__(
        self,
        context: AssetExecutionContext,
        ai: AIProviderResource,
        *,
        stage: str,
        task: str,
        payload_for: Callable[[range], dict[str, Any]],
        max_tokens: int | None,
        cache: bool | Callable[[range], bool],
        total_items: int | None = None,
    ) -> None:
        self.context, self.ai, self.stage, self.task = context, ai, stage, task
        self.payload_for, self.max_tokens, self.cache = payload_for, max_tokens, cache
        self.total_items = total_items
        self._answered: set[int] = set()  # items of answered parts (normalize's parts overlap)
        self._progress_lock = threading.Lock()
        self.events = RunEventLog(context)
        self.partition = self.events.partition

    def __call__(self, part: range) -> AIResult[Any]:
        try:
            result = self.ai.run_task(
                stage=self.stage,
                task=self.task,
                payload=self.payload_for(part),
                listeners=[self.events],
                run_id=self.context.run_id,
                partition=self.partition,
                max_tokens=self.max_tokens,
                cache=self.cache(part) if callable(self.cache) else self.cache,
            )
        except ProviderError:
            tag_spend(self.context, self.ai, self.stage, None)  # the run's spend so far, this part's included
            raise
        tag_spend(self.context, self.ai, self.stage, f"{result.provider}/{result.model}")
        self._report_progress(part)
        return result

    def _report_progress(self, part: range) -> None:
        if self.total_items is None:
            return
        with self._progress_lock:
            self._answered.update(part)
            self.events.observe(f"{self.task} parts", {"done": len(self._answered), "total": self.total_items})

    def _key(self, part: range) -> str:
        return self.ai.response_key(self.stage, self.task, self.payload_for(part))

    def was_split(self, part: range) -> bool:
        return self.ai.response_cache().was_split(self._key(part))

    def remember_split(self, part: range) -> None:
        self.ai.response_cache().mark_split(self._key(part))


def parts_metadata(run: PartsRun, *, unit: str) -> dict[str, Any]:
    """Materialization metadata of a split stage: parts, calls, cache hits, who served, every attempt."""
    served_by = Counter(f"{o.result.provider}/{o.result.model}" for o in run.served if o.result is not None)
    attempts = [a for o in run.served if o.result is not None for a in o.result.attempts]
    # What the parts cost, failed parts' calls included: they were paid for too.
    paid = attempts + [a for o in run.failed if o.error is not None for a in o.error.attempts]
    main = served_by.most_common(1)[0][0] if served_by else "none/none"
    provider, _, model = main.partition("/")
    errors = [a.error_class for a in attempts if a.error_class]
    return {
        "provider": provider,
        "model": model,
        "final_error_class": errors[-1] if errors else "none",
        f"{unit}_parts": len(run.outcomes),
        "parts_from_models": run.calls,
        "parts_from_cache": run.from_cache,
        "parts_split_again": sum(1 for o in run.outcomes if o.splits),
        "served_by": MetadataValue.json(dict(served_by)),
        "attempt_count": sum(1 for a in attempts if a.outcome != "skipped"),
        "fallback_taken": fallback_taken(attempts),
        "attempts": MetadataValue.md(attempts_table(attempts)),
        **cost_metadata(paid),
    }


def failure_for(
    context: AssetExecutionContext, stage: str, run: PartsRun, missing: str, what: str
) -> Failure | RetryRequested:
    """The step's error when parts failed; ``missing`` names the items without an answer (``what`` them)."""
    errors = [o.error for o in run.failed if o.error is not None]
    kept = f"; {len(run.served)} of {len(run.outcomes)} parts were answered and are kept for the next attempt"
    if not errors:  # every call succeeded, yet items have no usable answer: the models' answers are at fault
        return permanent_failure(
            context,
            stage,
            f"{stage}: the models' answers left {what} {missing} without a usable answer{kept}",
            {"missing": missing},
        )
    open_breakers = [e for e in errors if isinstance(e, AllProvidersOpenError)]
    if len(open_breakers) == len(errors):
        return retry_when_breakers_reopen(context, stage, open_breakers, f" for {what} {missing}{kept}")
    retryable = all(e.error_class == "transient" for e in errors)
    first = errors[0]
    tag_failure(context, "transient" if retryable else "permanent", stage)
    reasons = Counter(f"{e.error_class} {e.error_code or type(e).__name__}" for e in errors)
    # A spending cap is the operator's to raise: its message (cap, spend so far, call refused) is the reason.
    budget = next((f"; {e}" for e in errors if isinstance(e, BudgetExceededError)), "")
    return Failure(
        description=(
            f"{stage}: no model answered for {what} {missing} "
            f"({', '.join(f'{n} x {r}' for r, n in reasons.items())}){budget}{kept}"
        ),
        metadata={**failure_metadata(first), "missing": missing, "failed_parts": len(errors)},
        allow_retries=retryable,
    )
