"""Call a stage's fallback chain until one model gives a usable answer.

Why hand-written: tenacity retries one callable; it has no notion of a chain of models grouped by
provider, of a breaker shared between processes, or of "this answer means the whole provider is down".
Those decisions are the product, so they live here, each in one place:

* ``_after_failure`` decides what follows a failed call (the table below);
* ``ResilientCaller.call`` walks the chain and turns the end of the walk into the error to raise.

======================================  ==========================  ===================================
failure                                 decision                    what happens
======================================  ==========================  ===================================
permanent (400, safety, context)        ``stop``                    raised at once, no retry/fallback
provider unavailable (401/403/404)      ``skip_provider``           provider skipped for this call
daily quota (``daily_quota_exhausted``) ``skip_provider``           provider parked in the breaker store
                                                                    until the quota resets: skipped by
                                                                    every caller, breaker not opened
transient overload (529/503/overloaded  ``fallback_next_provider``  provider's other models skipped
/UNAVAILABLE), any transient answer
with ``x-should-retry: false``, or
breaker open
other transient (429, 500, timeout,     ``retry_same_model``        after ``delay_for`` (retry-after
connection reset)                                                   honoured, capped; a first reset at
                                                                    once; else full jitter)
  ... model's attempts used up, the     ``fallback_next_model``     next model in the chain, no wait
  wait would end past the deadline, or
  the provider asks for more than
  ``retry_after_fallback_seconds``
  while another provider's model is
  left in the chain
invalid output (``parse`` raised)       ``retry_same_model`` once   prompt + validation error appended;
                                                                    then ``InvalidModelOutputError``
answer cut at its output ceiling        ``retry_same_model`` once   ceiling raised to the model's limit
(``Completion.truncated``)                                          (less the prompt, within the context
                                                                    window); cut again, or no room to
                                        ``stop``                    raise: ``OutputTruncatedError``
prompt over the model's context window ``fallback_next_model``     next model whose window is larger;
(estimate says so before the call:                                  none left: ``ContextWindowExceededError``
skipped, ``context_window_too_small``;                              (the stage splits its work)
or the provider's 400 says so)
model rejects a parameter (400          ``fallback_next_model``     next model, provider not excluded
``unsupported_value``: GPT-5 and                                    (its other models may serve), no
``temperature``), the request alone is                              retry; the breaker counts the answer
over the model's tokens per minute                                  as a success (the provider is up)
(``RequestOverRateLimitError``), or a
404 naming the model (retired, not
open to this key: ``ModelNotFoundError``)
fleet's retry budget for the provider   ``retry_budget_exhausted``  no further call of this request goes
spent (``retry_budget.py``; checked                                 to that provider; next provider at
before every call after the first)                                  once (its own budget applies)
chain ran out while its providers were  ``retry_chain``             the walk starts again at the chain's
merely degraded (overloaded, or the                                 first degraded provider after full
fleet's retry budget spent), attempts                               jitter (retry-after honoured, capped);
and deadline left                                                   that provider's budget spent: it
                                                                    waits again (``retry_budget_exhausted``
                                                                    with the wait), until the deadline
budget / deadline / chain exhausted     ``stop``                    ``ChainExhaustedError`` (transient)
call's estimated cost over a spending   ``fallback_next_model``     next model (a cheaper one may fit);
cap (``SpendLedger``)                   (``over_budget`` skip)      nothing fits: ``BudgetExceededError``
                                                                    (permanent; the offline engine is not
                                                                    a fit: see "Money" below)
billing refused (``BillingError``:      ``skip_provider``           provider parked in the breaker store
no credit, ``insufficient_quota``,                                  for ``billing_hold_seconds`` (default
billing disabled)                                                   1 h): skipped by every caller, no
                                                                    retry, breaker not opened
every provider behind an open breaker   (skips only)                ``AllProvidersOpenError``
provider warming, warm-up budget taken  ``skip_provider``           provider skipped for now, no wait;
(``ProviderWarmingError``)              (``provider_warming``)      called over budget (its models in
                                                                    chain order) before the offline
                                                                    engine or giving up; the chain's
                                                                    last real provider is called over
                                                                    budget at once
======================================  ==========================  ===================================

Degraded, not down (issue 18's brownout): an overloaded provider is left for the next one at once, and
the fleet's retry budget may refuse further calls; in a brownout every provider fails a share of calls, so
one call per provider could end a request that the next call would have served (0.3 ** 3 of them at a 30 %
overload rate). Such a walk is not the end: after a jittered wait the request starts over at the chain's
first degraded provider, and while the fleet has spent that provider's budget it keeps waiting (the fleet
sheds load by waiting, not by failing requests), bounded by the attempt budget and the stage deadline.
Providers that are out for everyone (open breaker, 401/403/404, billing, parked) are not walked again.

Truncation and fallback: a truncated answer is never resent with the same ceiling, and after the one raise
it is not handed to the next model either. A fallback model with a smaller output limit cannot fit what
did not fit here, and one with a larger limit would pay the whole output again for an answer the stage can
get cheaper and bounded by splitting its work into smaller requests; so ``OutputTruncatedError`` goes
straight to the stage, which splits.

Money: every record carries ``cost_usd`` (the provider's reported usage at list price, ``resources.providers.
prices``; ``None`` when the model is unpriced; 0 for a failed call, which providers do not bill) and
``first_model_cost_usd`` (what the chain's first model would have cost for the same tokens: the premium of a
fallback is the difference). With a ``SpendLedger`` every call first reserves its estimated cost (prompt
estimate plus the whole output ceiling it sends, so the real cost cannot exceed it) and settles to the real
cost after. A call the caps refuse is skipped for the next model; once a call was refused the offline engine
does not serve the stage either: a run under a cap must not turn into degraded output without anyone asking
for it, so the stage fails with ``BudgetExceededError`` naming the cap, the spend and the call refused.

Every raised error carries ``attempts`` (the stage's ``AttemptRecord`` list) and names every provider of
the chain and why it did not serve (``reasons``), and every record is also
sent to the listeners as it happens. The breaker sees transient failures as failures, any other answer
from the provider as a success (it is up), and provider-unavailable answers not at all (see breaker.py).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from resources.providers.base import Completion, CompletionRequest, ProviderAdapter
from resources.providers.limits import estimate_prompt_tokens, limits_for
from resources.providers.prices import PriceTable, price_table
from resources.resilience.backoff import delay_for
from resources.resilience.breaker import CircuitBreaker
from resources.resilience.breaker_state import BreakerState, Permit
from resources.resilience.budget import (
    DEFAULT_BILLING_HOLD_SECONDS,
    BudgetExceededError,
    Refusal,
    Reservation,
    SpendLedger,
)
from resources.resilience.chain import OFFLINE, ModelRef, StagePolicy, fallback_chain_for
from resources.resilience.error_class import ErrorClass
from resources.resilience.errors import (
    BILLING_REFUSED,
    CONNECTION_RESET,
    DAILY_QUOTA_EXHAUSTED,
    AllProvidersOpenError,
    BillingError,
    BreakerOpenError,
    ChainExhaustedError,
    ContextWindowExceededError,
    ExhaustionReason,
    InvalidModelOutputError,
    OutputTruncatedError,
    PermanentProviderError,
    ProviderError,
    ProviderParkedError,
    ProviderUnavailableError,
    ProviderWarmingError,
    UnsupportedParameterError,
    describe_reasons,
    is_context_overflow,
    is_provider_overloaded,
)
from resources.resilience.hedge import Entrant, Hedger
from resources.resilience.retry_budget import RETRY_BUDGET_EXHAUSTED, RetryBudget
from resources.resilience.telemetry import AttemptOutcome, AttemptRecord, Decision, TelemetryListener

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What ``parse`` may raise to say "the output is invalid" (pydantic.ValidationError and
# json.JSONDecodeError are ValueErrors). Anything else is a bug in the parser and propagates.
INVALID_OUTPUT_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError, IndexError)
_REPAIR_NOTE_LIMIT = 2000

# Why a chain entry was skipped without a call.
_BREAKER_OPEN = "breaker_open"
_OVERLOADED = "provider_overloaded"
_UNAVAILABLE = "provider_unavailable"
_NO_ADAPTER = "no_adapter"
_WARMING = "provider_warming"
_OVER_BUDGET = "over_budget"
_CONTEXT_TOO_SMALL = "context_window_too_small"
# Exclusions that say "degraded", not "out": a walk that served nothing tries these providers again.
_DEGRADED = frozenset({_OVERLOADED, RETRY_BUDGET_EXHAUSTED})
# Without a ledger every call's reservation is this one (nothing to settle).
_NO_RESERVATION = Reservation((), 0.0)


@dataclass(frozen=True, slots=True)
class CallOutcome(Generic[T]):
    """A served call: the parsed value, who served it, and every step it took."""

    value: T
    provider: str
    model: str
    attempts: list[AttemptRecord]
    completion: Completion


@dataclass(slots=True)
class _StageRun:
    """The bookkeeping of one ``call``: budget, deadline and the attempt log."""

    stage: str
    policy: StagePolicy
    clock: Callable[[], float]
    listeners: Sequence[TelemetryListener]
    run_id: str | None
    partition: str | None
    deadline: float
    calls: int = 0
    attempts: list[AttemptRecord] = field(default_factory=list)
    # provider -> why it is skipped for the rest of this call
    excluded: dict[str, str] = field(default_factory=dict)
    # provider -> when its open breaker lets calls through again
    reopens_at: dict[str, float] = field(default_factory=dict)
    # provider -> error code of its latest failed call (for the error that ends a walk without serving)
    failed: dict[str, str] = field(default_factory=dict)
    last_error: ProviderError | None = None
    # "budget" / "deadline" / "chain" once the walk must end without serving
    stop_reason: str | None = None
    prices: PriceTable | None = None
    # (provider, model, input, output, cached input tokens) -> USD: a served call is priced for its attempt record,
    # its fallback baseline and its spend settlement; one table lookup each is most of the layer's own time
    costs: dict[tuple[str, str, int, int, int], float | None] = field(default_factory=dict)
    # the chain's first model: what a fallback's tokens would have cost there is its baseline
    first: ModelRef | None = None
    # the latest call a spending cap refused, and why
    refusal: Refusal | None = None
    refused: str | None = None
    # models the prompt does not fit (skipped on the estimate, or refused by the provider), the largest
    # window a provider refused it in, and that refusal
    unfit: set[ModelRef] = field(default_factory=set)
    refused_window: int = 0
    context_error: ProviderError | None = None
    # the output ceiling of the call about to be sent (its timeout grows with it)
    output_ceiling: int = 0
    # when a raced call went out, its client leased: the start of its latency as the hedge delay learns it
    # (a process's first calls spend up to a second setting clients up under load, which is not the model's)
    raced_from: float = 0.0
    # waits before walking a degraded chain again (the backoff's exponent), and the provider whose retry
    # budget the last of them already charged for the next call
    chain_waits: int = 0
    prepaid: str | None = None
    # providers that failed this request transiently (degraded, not out): a walk that served nothing
    # starts again at the first of them
    degraded: set[str] = field(default_factory=set)

    def remaining(self, now: float | None = None) -> float:
        return self.deadline - (self.clock() if now is None else now)

    def out_of(self) -> str | None:
        """``"budget"`` or ``"deadline"`` if no further call may start, else None."""
        if self.calls >= self.policy.max_attempts:
            return "budget"
        if self.remaining() <= 0:
            return "deadline"
        return None

    def request_timeout(self, now: float) -> float:
        """The next call's timeout: the policy's, stretched for an answer of ``output_ceiling`` tokens (see
        ``StagePolicy.timeout_for``), never past the deadline."""
        limit = self.policy.timeout_for(self.output_ceiling)
        remaining = self.remaining(now)
        return remaining if limit is None or remaining < limit else limit

    def log(
        self,
        ref: ModelRef,
        *,
        outcome: AttemptOutcome,
        decision: Decision,
        error: ProviderError | None = None,
        error_code: str | None = None,
        delay_s: float = 0.0,
        terminal_reason: str | None = None,
        latency_s: float | None = None,
        breaker_state: BreakerState | None = None,
        request_id: str | None = None,
        ts: float | None = None,
        completion: Completion | None = None,
    ) -> AttemptRecord:
        # trusted: every field is typed here already, and validation would cost more than the rest of the
        # layer's per-call work.
        error_class: ErrorClass | None = None
        status: int | None = None
        if error is not None:
            request_id = request_id or error.request_id
            error_code = error_code or error.error_code
            error_class, status = error.error_class, error.status
        input_tokens: int | None = None
        cached_input_tokens: int | None = None
        output_tokens: int | None = None
        max_tokens: int | None = None
        first_model_cost_usd: float | None = None
        truncated = False
        cost_usd: float | None = 0.0
        if completion is not None:
            input_tokens, output_tokens = completion.input_tokens, completion.output_tokens
            cached_input_tokens = completion.cached_input_tokens
            max_tokens, truncated = completion.max_tokens, completion.truncated
            cost_usd = self.cost_of(ref, completion)
            if self.first is not None:
                first_model_cost_usd = self.cost_of(self.first, completion)
        record = AttemptRecord.trusted(
            ts=self.clock() if ts is None else ts,
            stage=self.stage,
            attempt=len(self.attempts) + 1,
            provider=ref.provider,
            model=ref.model,
            request_id=request_id or None,
            outcome=outcome,
            error_code=error_code or None,
            error_class=error_class,
            status=status,
            delay_s=delay_s,
            decision=decision,
            terminal_reason=terminal_reason,
            latency_s=latency_s,
            breaker_state=breaker_state,
            run_id=self.run_id,
            partition=self.partition,
            input_tokens=input_tokens,
            cached_input_tokens=cached_input_tokens,
            output_tokens=output_tokens,
            max_tokens=max_tokens,
            truncated=truncated,
            cost_usd=cost_usd,
            first_model_cost_usd=first_model_cost_usd,
        )
        self.attempts.append(record)
        for listener in self.listeners:
            try:
                listener.on_attempt(record)
            except Exception:  # telemetry must never fail the stage
                logger.warning("telemetry listener %r failed", listener, exc_info=True)
        return record

    def cost_of(self, ref: ModelRef, completion: Completion) -> float | None:
        """USD of ``completion``'s usage on ``ref`` at list price (None: ``ref`` is unpriced)."""
        key = (
            ref.provider, ref.model, completion.input_tokens, completion.output_tokens, completion.cached_input_tokens
        )
        if key not in self.costs:
            table = self.prices or price_table()
            self.costs[key] = table.tokens_usd(*key)
        return self.costs[key]

    def fail(self, error: ProviderError) -> ProviderError:
        error.attempts = list(self.attempts)
        return error


@dataclass(frozen=True, slots=True)
class _Hedge:
    """A hedge in a race: its model, breaker permit, spend reservation and call; ``late_at`` (monotonic): when
    it is late itself by its model's hedge delay."""

    ref: ModelRef
    permit: Permit
    reservation: Reservation
    entrant: Entrant[Completion]
    late_at: float


@dataclass(frozen=True, slots=True)
class _Step:
    decision: Decision
    delay_s: float = 0.0
    terminal_reason: str | None = None


def _after_failure(
    error: ProviderError,
    run: _StageRun,
    *,
    model_calls: int,
    retries: int,
    next_model_exists: bool,
    next_provider_exists: bool,
    rng: random.Random,
    next_served_model_exists: bool = False,
) -> _Step:
    """What follows a failed call: the decision table of the module docstring, in one place.

    ``next_served_model_exists``: a model of a real provider (not the offline engine) is left in the chain.
    """
    if is_context_overflow(error):  # model-level: a larger window may take it (``_fits`` picks which)
        return _fallback("fallback_next_model", run, next_model_exists)
    if isinstance(error, PermanentProviderError):
        return _Step("stop", terminal_reason=error.error_code or "permanent_error")
    if isinstance(error, UnsupportedParameterError):
        return _fallback("fallback_next_model", run, next_model_exists)
    if isinstance(error, ProviderUnavailableError):
        return _fallback("skip_provider", run, next_provider_exists)
    if is_provider_overloaded(error):
        return _fallback("fallback_next_provider", run, next_provider_exists)
    asks_too_long = (
        error.retry_after is not None
        and error.retry_after > run.policy.retry_after_fallback_seconds
        and next_served_model_exists
    )
    if not asks_too_long and model_calls < run.policy.attempts_per_model and run.calls < run.policy.max_attempts:
        # Drawn only when a retry is possible, so a seeded rng replays the same waits.
        delay = delay_for(error, retries, run.policy.backoff, rng)
        if delay < run.remaining():
            return _Step("retry_same_model", delay_s=delay)
    return _fallback("fallback_next_model", run, next_model_exists)


def _fallback(decision: Decision, run: _StageRun, somewhere_to_go: bool) -> _Step:
    out = run.out_of()
    if out is not None:
        return _Step("stop", terminal_reason=out)
    if not somewhere_to_go:
        return _Step("stop", terminal_reason="chain")
    return _Step(decision)


def _completer(model: str, request: CompletionRequest, timeout: float) -> Callable[[ProviderAdapter], Completion]:
    return lambda adapter: adapter.complete(model, request, timeout=timeout)


def _usable_after(
    refs: Sequence[ModelRef],
    index: int,
    excluded: Mapping[str, str],
    also_excluding: str | None = None,
    *,
    served_only: bool = False,
) -> bool:
    """Is a model after ``index`` still usable (``served_only``: one a real provider serves, not offline)?"""
    return any(
        r.provider not in excluded and r.provider != also_excluding and not (served_only and r.provider == OFFLINE)
        for r in refs[index + 1 :]
    )


def _window_short_by(ref: ModelRef, request: CompletionRequest) -> int:
    """Tokens by which ``request`` (prompt estimate plus the output ceiling ``ref`` would be sent) exceeds
    ``ref``'s context window; 0 or less when it fits."""
    limits = limits_for(ref.provider, ref.model)
    needed = estimate_prompt_tokens(request.system, request.prompt) + limits.output_ceiling(request.max_tokens)
    return needed - limits.context_window


def _only_unfit(run: _StageRun, refs: Sequence[ModelRef]) -> bool:
    """Was every real model of the chain (not offline) found too small for the prompt?"""
    real = [ref for ref in refs if ref.provider != OFFLINE and run.excluded.get(ref.provider) != _NO_ADAPTER]
    return bool(real) and all(ref in run.unfit for ref in real)


def _invalid_output(
    ref: ModelRef, completion: Completion, problem: Exception, repaired: bool
) -> InvalidModelOutputError:
    after = " after one repair" if repaired else ""
    return InvalidModelOutputError(
        f"output failed validation{after}: {problem}"[:1000],
        provider=ref.provider,
        model=ref.model,
        error_code="invalid_model_output",
        request_id=completion.request_id,
    )


RepairRequest = Callable[[CompletionRequest, str, Exception], CompletionRequest]


def append_validation_error(
    request: CompletionRequest, bad_output: str, problem: Exception
) -> CompletionRequest:
    """The default repair: the original request with the validation error appended to its prompt.

    Same signature as ``resources.providers.prompts.build_repair_request``, which can be passed as
    ``ResilientCaller(repair=...)`` to also quote the bad output back to the model.
    """
    detail = str(problem)[:_REPAIR_NOTE_LIMIT]
    note = (
        "\n\nYour previous answer could not be used because it failed validation:\n"
        f"{detail}\n"
        "Answer again with the complete, corrected output only."
    )
    return request.model_copy(update={"prompt": request.prompt + note})


class ResilientCaller:
    """Runs one stage's request through its fallback chain (see the module docstring for the rules).

    ``adapters`` maps provider name -> adapter; a provider without an adapter is skipped. ``repair``
    builds the one repair request after invalid output (default: ``append_validation_error``). ``clock`` is
    epoch seconds (shared with the breaker's clock in tests), ``sleep`` waits between retries and ``rng``
    draws the jitter: all three injectable so tests never sleep and runs replay exactly.
    """

    def __init__(
        self,
        adapters: Mapping[str, ProviderAdapter],
        breakers: CircuitBreaker,
        *,
        policy: StagePolicy | None = None,
        stage_policies: Mapping[str, StagePolicy] | None = None,
        chains: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        listeners: Sequence[TelemetryListener] = (),
        run_id: str | None = None,
        partition: str | None = None,
        repair: RepairRequest = append_validation_error,
        retry_budget: RetryBudget | None = None,
        hedger: Hedger | None = None,
        ledger: SpendLedger | None = None,
        prices: PriceTable | None = None,
        billing_hold_seconds: float = DEFAULT_BILLING_HOLD_SECONDS,
    ) -> None:
        self.adapters = dict(adapters)
        self.breakers = breakers
        self.policy = policy or StagePolicy()
        self.stage_policies = dict(stage_policies or {})
        self.chains = chains
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._listeners = tuple(listeners)
        self.run_id = run_id
        self.partition = partition
        self._chain_cache: dict[tuple[str, int], tuple[ModelRef, ...]] = {}
        self._repair = repair
        self.retry_budget = retry_budget
        self.hedger = hedger
        self.ledger = ledger
        self.prices = prices
        self.billing_hold_seconds = billing_hold_seconds

    def policy_for(self, stage: str) -> StagePolicy:
        return self.stage_policies.get(stage, self.policy)

    def call(
        self,
        stage: str,
        request: CompletionRequest,
        parse: Callable[[str], T],
        chain: Sequence[str | ModelRef] | None = None,
        *,
        run_id: str | None = None,
        partition: str | None = None,
    ) -> CallOutcome[T]:
        """Serve ``request`` for ``stage`` and return ``parse(text)`` of the first usable answer.

        Raises ``PermanentProviderError`` (incl. ``InvalidModelOutputError``), ``AllProvidersOpenError``,
        ``ChainExhaustedError`` or, when no provider in the chain is usable at all,
        ``ProviderUnavailableError``; each with ``.attempts``.
        """
        refs = self._chain_for(stage, chain)
        policy = self.policy_for(stage)
        run = _StageRun(
            stage=stage,
            policy=policy,
            clock=self._clock,
            listeners=self._listeners,
            run_id=run_id if run_id is not None else self.run_id,
            partition=partition if partition is not None else self.partition,
            deadline=self._clock() + policy.deadline_seconds,
            # resolved once per stage call, not per attempt (price_table reads the environment)
            prices=self.prices or price_table(),
            first=refs[0] if refs else None,
        )
        if self.retry_budget is not None:
            self.retry_budget.note_first_attempt()
        while True:
            outcome = self._walk_chain(run, refs, request, parse)
            if outcome is not None:
                return outcome
            if not self._wait_to_walk_again(run, refs):
                break
        raise run.fail(self._exhausted(run, refs))

    def _walk_chain(
        self, run: _StageRun, refs: Sequence[ModelRef], request: CompletionRequest, parse: Callable[[str], T]
    ) -> CallOutcome[T] | None:
        """One walk down the chain: the served outcome, or None when it ended without serving (``run`` says
        why)."""
        for index, ref in enumerate(refs):
            if ref.provider == OFFLINE:
                # A warming provider is unproven, not down: it is called before the degraded offline answer.
                outcome = self._call_warming_skipped(run, refs, request, parse)
                if outcome is not None:
                    return outcome
                if run.stop_reason is not None:
                    break
                if _only_unfit(run, refs):  # too big for every model: the stage splits, no degraded answer
                    break
                if run.refusal is not None:  # under a cap, no silent degraded answer (see "Money")
                    run.log(
                        ref, outcome="skipped", decision="stop", error_code=_OVER_BUDGET, terminal_reason="budget_cap"
                    )
                    break
            adapter = self._adapter_for(run, ref)
            if adapter is None:
                continue
            run.stop_reason = run.out_of()
            if run.stop_reason is not None:
                break
            outcome = self._walk_model(run, refs, index, adapter, request, parse)
            if outcome is not None:
                return outcome
            if run.stop_reason is not None:
                break
        if run.stop_reason is None:  # ... and before giving up
            return self._call_warming_skipped(run, refs, request, parse)
        return None

    def _degraded_restart(self, run: _StageRun, refs: Sequence[ModelRef]) -> ModelRef | None:
        """Where a walk that served nothing starts again, or None when it must end: the chain's first
        provider that only failed transiently or was refused by the retry budget (not one out for everyone),
        while the request has attempts and time left and nothing permanent (a cap, a prompt too big) ended it.
        """
        if run.stop_reason is not None or run.out_of() is not None or run.refusal is not None:
            return None
        if run.context_error is not None or run.last_error is None or run.last_error.error_class != "transient":
            return None
        refused = {p for p, why in run.excluded.items() if why == RETRY_BUDGET_EXHAUSTED}
        return next(
            (
                r
                for r in refs
                if (r.provider in run.degraded or r.provider in refused)
                and run.excluded.get(r.provider, _OVERLOADED) in _DEGRADED
                and r.provider != OFFLINE
                and r.provider in self.adapters
            ),
            None,
        )

    def _wait_to_walk_again(self, run: _StageRun, refs: Sequence[ModelRef]) -> bool:
        """After a walk that served nothing on degraded providers: wait (full jitter, retry-after honoured)
        and start again at the first of them, waiting again while the fleet has spent its retry budget.
        False (``run.stop_reason`` set when the deadline ended it) when the request must end instead."""
        first = self._degraded_restart(run, refs)
        if first is None:
            return False
        assert run.last_error is not None  # _degraded_restart checked it
        for provider in [p for p, why in run.excluded.items() if why in _DEGRADED]:
            del run.excluded[provider]
        decision: Decision = "retry_chain"
        while True:
            delay = delay_for(run.last_error, run.chain_waits, run.policy.backoff, self._rng)
            run.chain_waits += 1
            if delay >= run.remaining():
                run.stop_reason = "deadline"
                run.log(first, outcome="skipped", decision="stop", terminal_reason="deadline")
                return False
            code = RETRY_BUDGET_EXHAUSTED if decision == "retry_budget_exhausted" else None
            run.log(first, outcome="skipped", decision=decision, error_code=code, delay_s=delay)
            self._sleep(delay)
            if self.retry_budget is None or self.retry_budget.try_extra_call(first.provider):
                run.prepaid = first.provider
                return True
            decision = "retry_budget_exhausted"

    def _call_warming_skipped(
        self, run: _StageRun, refs: Sequence[ModelRef], request: CompletionRequest, parse: Callable[[str], T]
    ) -> CallOutcome[T] | None:
        """Call the providers skipped as warming (their models in chain order, over the warm-up budget): the
        last resort before the offline engine or giving up. None if none of them served."""
        for provider in [p for p, why in run.excluded.items() if why == _WARMING]:
            del run.excluded[provider]  # once: a failure below excludes it again or moves on
            for index, ref in enumerate(refs):
                if ref.provider != provider or provider in run.excluded:
                    continue
                run.stop_reason = run.out_of()
                if run.stop_reason is not None:
                    return None
                outcome = self._walk_model(
                    run, refs, index, self.adapters[provider], request, parse, last_resort=True
                )
                if outcome is not None or run.stop_reason is not None:
                    return outcome
        return None

    def _chain_for(self, stage: str, chain: Sequence[str | ModelRef] | None) -> Sequence[ModelRef]:
        if chain is not None:
            return [ref if isinstance(ref, ModelRef) else ModelRef.of(ref) for ref in chain]
        # Resolved once per stage and configuration (the overrides mapping is replaced, not mutated).
        key = (stage, id(self.chains))
        cached = self._chain_cache.get(key)
        if cached is None:
            cached = self._chain_cache[key] = tuple(fallback_chain_for(stage, self.chains))
        return cached

    def _adapter_for(self, run: _StageRun, ref: ModelRef) -> ProviderAdapter | None:
        """The adapter to call for ``ref``, or None (logged as a skip) if its provider is out."""
        if ref.provider in run.excluded:
            run.log(ref, outcome="skipped", decision="skip_provider", error_code=run.excluded[ref.provider])
            return None
        adapter = self.adapters.get(ref.provider)
        if adapter is None:
            run.excluded[ref.provider] = _NO_ADAPTER
            run.log(ref, outcome="skipped", decision="skip_provider", error_code=_NO_ADAPTER)
        return adapter

    def _walk_model(
        self,
        run: _StageRun,
        refs: Sequence[ModelRef],
        index: int,
        adapter: ProviderAdapter,
        request: CompletionRequest,
        parse: Callable[[str], T],
        *,
        last_resort: bool = False,
    ) -> CallOutcome[T] | None:
        """Call one model until it serves (returned), or the walk moves on (None; see ``run``).

        ``last_resort``: a warming provider's call goes through over its warm-up budget."""
        ref = refs[index]
        if not self._fits(run, ref, request):
            return None
        model_calls = retries = 0
        repaired = ceiling_raised = False
        current_request = request
        budget_checked = False  # a retry's budget is checked before its backoff sleep
        hedged = self.hedger is not None and self.hedger.hedges(run.stage)
        while True:
            if run.calls and not budget_checked and not self._within_retry_budget(run, ref):
                return None
            budget_checked = False
            permit = self._acquire(run, refs, index, last_resort=last_resort)
            if permit is None:
                return None
            reservation = self._reserve(run, ref, current_request, permit)
            if reservation is None:
                if ceiling_raised or repaired:
                    # A raise or repair is never handed to the next model (see the module docstring).
                    raise run.fail(self._exhausted(run, refs))
                return None
            run.calls += 1
            model_calls += 1
            run.output_ceiling = limits_for(ref.provider, ref.model).output_ceiling(current_request.max_tokens)
            started = self._clock()
            try:
                if hedged and ref.provider != OFFLINE:
                    raced = self._race(run, refs, index, current_request, permit, parse, started)
                    if isinstance(raced, CallOutcome):
                        self._settle_spend(reservation, 0.0)  # cancelled before it answered
                        return raced
                    completion = raced
                    started = run.raced_from
                else:
                    completion = adapter.complete(ref.model, current_request, timeout=run.request_timeout(started))
            except ProviderError as error:
                self._settle_spend(reservation, 0.0)  # providers do not bill a failed call
                step = self._on_failure(run, refs, index, permit, error, model_calls, retries, started)
                if step.decision != "retry_same_model" or not self._within_retry_budget(run, ref):
                    return None
                budget_checked = True
                retries += 1
                if step.delay_s > 0:
                    self._sleep(step.delay_s)
                continue
            except BaseException:
                self.breakers.release(permit)  # not the provider's doing (a bug, a KeyboardInterrupt)
                raise
            finished = self._clock()
            latency = finished - started
            if reservation.keys:
                self._settle_spend(
                    reservation,
                    run.cost_of(ref, completion),
                    run.cost_of(run.first, completion) if run.first is not None and run.first != ref else None,
                )
            self.breakers.record(permit, success=True)
            if hedged:  # (what no hedge reads is not kept)
                assert self.hedger is not None
                self.hedger.tracker.observe((ref.provider, ref.model, run.stage), latency)
            if completion.truncated:
                raised = self._raised_ceiling(run, ref, current_request, completion, ceiling_raised)
                run.log(
                    ref,
                    outcome="error",
                    decision="stop" if raised is None else "retry_same_model",
                    error_code=OutputTruncatedError.code,
                    terminal_reason=OutputTruncatedError.code if raised is None else None,
                    latency_s=latency,
                    breaker_state=permit.state,
                    request_id=completion.request_id,
                    completion=completion,
                )
                if raised is None:
                    raise run.fail(
                        OutputTruncatedError(
                            provider=ref.provider,
                            model=ref.model,
                            max_tokens=completion.max_tokens or current_request.max_tokens,
                            output_tokens=completion.output_tokens,
                            request_id=completion.request_id,
                        )
                    )
                ceiling_raised = True
                current_request = current_request.model_copy(update={"max_tokens": raised})
                continue
            try:
                value = parse(completion.text)
            except INVALID_OUTPUT_ERRORS as problem:
                can_repair = not repaired and run.out_of() is None
                run.log(
                    ref,
                    outcome="error",
                    decision="retry_same_model" if can_repair else "stop",
                    error_code="invalid_model_output",
                    terminal_reason=None if can_repair else "invalid_model_output",
                    latency_s=latency,
                    breaker_state=permit.state,
                    request_id=completion.request_id,
                    completion=completion,
                )
                if not can_repair:
                    raise run.fail(_invalid_output(ref, completion, problem, repaired)) from problem
                repaired = True
                repair = self._repair(request, completion.text, problem)
                # a ceiling raised after truncation stays raised for the repair
                current_request = repair.model_copy(update={"max_tokens": current_request.max_tokens})
                continue
            run.log(
                ref,
                outcome="success",
                decision="success",
                latency_s=latency,
                breaker_state=permit.state,
                request_id=completion.request_id,
                ts=finished,
                completion=completion,
            )
            # The walk ends here, so its log is handed over rather than copied.
            return CallOutcome(value, ref.provider, ref.model, run.attempts, completion)

    @staticmethod
    def _fits(run: _StageRun, ref: ModelRef, request: CompletionRequest) -> bool:
        """Can ``ref``'s context window take ``request`` (prompt estimate plus the output ceiling it would be
        sent with)? If not, the model is skipped without a call, logged ``context_window_too_small``. A window
        no larger than one a provider already refused the prompt in is not tried either: the estimate
        under-counted there and would here too."""
        limits = limits_for(ref.provider, ref.model)
        if _window_short_by(ref, request) <= 0 and limits.context_window > run.refused_window:
            return True
        needed = estimate_prompt_tokens(request.system, request.prompt) + limits.output_ceiling(request.max_tokens)
        run.unfit.add(ref)
        if run.context_error is None:
            run.context_error = ContextWindowExceededError(
                f"the prompt needs ~{needed} tokens with its output ceiling, more than the context window of "
                "any model of the chain; split the request",
                provider=ref.provider,
                model=ref.model,
                error_code="context_length_exceeded",
            )
        run.log(ref, outcome="skipped", decision="fallback_next_model", error_code=_CONTEXT_TOO_SMALL)
        return False

    @staticmethod
    def _raised_ceiling(
        run: _StageRun, ref: ModelRef, request: CompletionRequest, completion: Completion, already_raised: bool
    ) -> int | None:
        """The output ceiling to resend a truncated request with, or None when the stage must split instead.

        Once per model: up to the model's output limit, less the prompt's estimated tokens where the context
        window is the tighter bound. None when it was raised already, cannot go higher, or no call is left.
        """
        if already_raised or run.out_of() is not None:
            return None
        sent = completion.max_tokens or request.max_tokens
        prompt_tokens = estimate_prompt_tokens(request.system, request.prompt)
        room = limits_for(ref.provider, ref.model).room_for_output(prompt_tokens)
        return room if room > sent else None

    def _race(
        self,
        run: _StageRun,
        refs: Sequence[ModelRef],
        index: int,
        request: CompletionRequest,
        permit: Permit,
        parse: Callable[[str], T],
        started: float,
    ) -> Completion | CallOutcome[T]:
        """The call to ``refs[index]``, hedged after the hedger's delay (hedge.py). Returns the primary's
        completion (or raises its error) for the walk to handle as usual, or the hedge's served outcome."""
        hedger = self.hedger
        assert hedger is not None
        ref = refs[index]
        timeout = run.request_timeout(started)
        hedger.quota.note_call()
        delay = hedger.delay(ref.provider, ref.model, run.stage, timeout)

        def on_late(primary: Entrant[Completion]) -> Completion | CallOutcome[T] | None:
            # On a pool thread, while this call's thread still waits for the primary: the race, or None
            # when no hedge could be sent. The walk's thread touches ``run`` again only once this returned.
            sent = self._send_hedge(run, refs, index, request, delay)
            if sent is None:
                return None
            return self._settle_race(run, refs, index, request, permit, primary, sent, parse)

        # The primary runs on this thread; a hedge delay at or past the timeout never fires.
        inline = hedger.run_inline(
            ref.provider, _completer(ref.model, request, timeout), delay if delay < timeout else math.inf, on_late
        )
        run.raced_from = inline.entrant.started
        if inline.fired is None:  # answered (or failed) before it was late: no race
            if inline.error is not None:
                raise inline.error
            assert inline.result is not None
            return inline.result
        raced: Completion | CallOutcome[T] | None = inline.fired.result()
        if raced is not None:
            return raced
        hedger.finish(inline.entrant)  # no hedge could be sent: the slow call's own outcome
        return inline.entrant.future.result()

    def _send_hedge(
        self,
        run: _StageRun,
        refs: Sequence[ModelRef],
        index: int,
        request: CompletionRequest,
        waited: float,
        avoid: Collection[str] = (),
    ) -> _Hedge | None:
        """Start a hedge on the next entry of another provider (none of ``avoid``: already in this race) whose
        breaker grants a permit, within the attempt budget, the cost budget and the hedge quota; None if there
        is none. ``waited``: how long the slow call has been out (logged)."""
        hedger = self.hedger
        assert hedger is not None
        if run.calls >= run.policy.max_attempts:
            logger.debug("%s: no hedge (attempt budget spent)", run.stage)
            return None
        ref = refs[index]
        for candidate in refs[index + 1 :]:
            if candidate.provider in (ref.provider, OFFLINE) or candidate.provider in run.excluded:
                continue
            if candidate.provider in avoid or candidate.provider not in self.adapters:
                continue
            if _window_short_by(candidate, request) > 0:
                continue  # (nor onto a model whose context window cannot take the prompt)
            try:
                hedge_permit = self.breakers.acquire(candidate.provider)
            except BreakerOpenError as closed_door:  # open, parked or warming: never hedge onto it
                logger.debug("%s: no hedge to %s (%s)", run.stage, candidate, type(closed_door).__name__)
                continue
            reservation = self._reserve_hedge(run, candidate, request)
            if reservation is None or not hedger.quota.try_take():
                logger.debug("%s: no hedge (%s)", run.stage, "cost cap" if reservation is None else "hedge quota")
                if reservation is not None:
                    self._settle_spend(reservation, 0.0)
                self.breakers.release(hedge_permit)
                return None
            run.calls += 1
            run.log(ref, outcome="error", decision="hedge_sent", error_code="slow_call", latency_s=waited)
            timeout = run.request_timeout(self._clock())
            entrant = hedger.start(candidate.provider, _completer(candidate.model, request, timeout))
            # When the hedge is itself late (by its own model's delay) while the slow call is still out.
            late_at = time.monotonic() + hedger.delay(candidate.provider, candidate.model, run.stage, timeout)
            return _Hedge(candidate, hedge_permit, reservation, entrant, late_at)
        logger.debug("%s: no hedge (no other provider's model left to race)", run.stage)
        return None

    def _reserve_hedge(self, run: _StageRun, ref: ModelRef, request: CompletionRequest) -> Reservation | None:
        """The cost budget's reservation for a hedge, or None when the caps refuse it. Unlike ``_reserve`` a
        refusal is not logged or kept for the stage's error: no hedge is sent, and nothing else changes."""
        if self.ledger is None:
            return _NO_RESERVATION
        answer = self.ledger.reserve(self.estimated_cost(ref, request), stage=run.stage)
        return answer if isinstance(answer, Reservation) else None

    def _settle_race(
        self,
        run: _StageRun,
        refs: Sequence[ModelRef],
        index: int,
        request: CompletionRequest,
        permit: Permit,
        primary: Entrant[Completion],
        first_hedge: _Hedge,
        parse: Callable[[str], T],
    ) -> Completion | CallOutcome[T]:
        """First valid answer wins; the losers are cancelled (connections shut) and their permits handed back.

        While a call is still out and none of those out is on time (the slow call is late by definition; a
        hedge is late once its own model's hedge delay has passed, or gone once it failed or answered
        unusably), the next hedge goes at once to another provider, within the same attempt budget, cost caps
        and quota: a hedge that met the same fault as the slow call must not leave the request waiting out
        a hung call's whole timeout. When no other provider is left, one whose hedge was reset races again (a
        reset is its connection's fault, backoff.py). Once nothing is out, the slow call's own answer or error
        goes back to the walk, whose retry or fallback takes over."""
        hedger = self.hedger
        assert hedger is not None
        values: dict[int, T] = {}

        def valid(entrant: Entrant[Completion]) -> bool:
            if entrant.future.exception() is not None:
                return False
            completion = entrant.future.result()
            if completion.truncated:
                return False
            try:
                values[id(completion)] = parse(completion.text)
            except INVALID_OUTPUT_ERRORS:
                return False
            return True

        raced = {first_hedge.ref.provider}
        reset: set[str] = set()  # raced providers whose hedge was reset (not out any more)
        out = [first_hedge]  # hedges still running, oldest first
        primary_out, hedging = True, True
        while primary_out or out:
            late_in = max(0.0, out[-1].late_at - time.monotonic()) if out and hedging else None
            futures = [hedge.entrant.future for hedge in out] + ([primary.future] if primary_out else [])
            done, _ = wait(futures, timeout=late_in, return_when=FIRST_COMPLETED)
            if primary_out and primary.future in done:
                primary_out = False
                if valid(primary):
                    for hedge in out:
                        self._drop_hedge(run, hedge)
                    hedger.finish(primary)
                    return primary.future.result()
            for hedge in [hedge for hedge in out if hedge.entrant.future in done]:
                out.remove(hedge)
                if valid(hedge.entrant):
                    return self._hedge_won(run, permit, primary, hedge, out, values)
                if self._drop_hedge(run, hedge) == CONNECTION_RESET:
                    reset.add(hedge.ref.provider)
            if (primary_out or out) and hedging and (not out or out[-1].late_at <= time.monotonic()):
                waited = self._clock() - primary.started
                sent = self._send_hedge(run, refs, index, request, waited, raced)
                if sent is None and reset:
                    sent = self._send_hedge(run, refs, index, request, waited, raced - reset)
                    reset.clear()
                if sent is None:
                    hedging = False  # nothing left to race: wait for the calls out
                else:
                    raced.add(sent.ref.provider)
                    out.append(sent)
        hedger.finish(primary)
        return primary.future.result()

    def _hedge_won(
        self,
        run: _StageRun,
        permit: Permit,
        primary: Entrant[Completion],
        winner: _Hedge,
        others: Sequence[_Hedge],
        values: Mapping[int, T],
    ) -> CallOutcome[T]:
        """Settle a race a hedge won: the slow call and the other hedges out are cancelled or settled."""
        hedger = self.hedger
        assert hedger is not None
        self._drop_entrant(permit, primary)
        for hedge in others:
            self._drop_hedge(run, hedge)
        completion = winner.entrant.future.result()
        latency = self._clock() - winner.entrant.started
        self._settle_spend(winner.reservation, run.cost_of(winner.ref, completion))
        self.breakers.record(winner.permit, success=True)
        hedger.tracker.observe((winner.ref.provider, winner.ref.model, run.stage), latency)
        run.log(
            winner.ref,
            outcome="success",
            decision="hedge_won",
            latency_s=latency,
            breaker_state=winner.permit.state,
            request_id=completion.request_id,
            completion=completion,
        )
        return CallOutcome(values[id(completion)], winner.ref.provider, winner.ref.model, run.attempts, completion)

    def _drop_hedge(self, run: _StageRun, hedge: _Hedge) -> str | None:
        """Settle a hedge that did not win: cancelled if still out, its breaker, spend and log settled. Returns
        the error code it failed with, if it failed."""
        problem = self._drop_entrant(hedge.permit, hedge.entrant)
        entrant = hedge.entrant
        # A hedge that answered (second, or unusably) is billed; a cancelled or failed one is not.
        answered = entrant.future.done() and entrant.future.exception() is None and not entrant.lease.cancelled
        self._settle_spend(hedge.reservation, run.cost_of(hedge.ref, entrant.future.result()) if answered else 0.0)
        run.log(
            hedge.ref,
            outcome="error" if problem else "skipped",
            decision="skip_provider",
            error=problem,
            error_code=None if problem else "hedge_cancelled",
        )
        return problem.error_code if problem else None

    def _drop_entrant(self, permit: Permit, entrant: Entrant[Completion]) -> ProviderError | None:
        """Settle a race's loser: cancel it if still running (permit released), else tell the breaker what its
        answer said. Returns its provider error, if it failed with one."""
        hedger = self.hedger
        assert hedger is not None
        if not entrant.future.done():
            hedger.cancel(entrant)
            self.breakers.release(permit)
            return None
        hedger.finish(entrant)
        error = entrant.future.exception()
        if isinstance(error, ProviderError):
            self._settle(permit, error)
            return error
        if error is None:
            self.breakers.record(permit, success=True)  # it answered (invalid or cut): the provider is up
        else:
            self.breakers.release(permit)
        return None

    def _within_retry_budget(self, run: _StageRun, ref: ModelRef) -> bool:
        """May this request's further call (retry, repair or fallback) go to ``ref``? If the fleet spent the
        provider's retry budget, the provider is skipped for this request (logged) and the walk moves on."""
        if run.prepaid is not None:
            prepaid, run.prepaid = run.prepaid, None
            if prepaid == ref.provider:  # charged while waiting for it (``_wait_to_walk_again``)
                return True
        if self.retry_budget is None or ref.provider == OFFLINE or self.retry_budget.try_extra_call(ref.provider):
            return True
        run.excluded[ref.provider] = RETRY_BUDGET_EXHAUSTED
        run.log(ref, outcome="skipped", decision="retry_budget_exhausted", error_code=RETRY_BUDGET_EXHAUSTED)
        return False

    def estimated_cost(self, ref: ModelRef, request: CompletionRequest) -> float | None:
        """The most ``request`` can cost on ``ref``: its prompt estimate plus the whole output ceiling sent."""
        return (self.prices or price_table()).tokens_usd(
            ref.provider,
            ref.model,
            estimate_prompt_tokens(request.system, request.prompt),
            limits_for(ref.provider, ref.model).output_ceiling(request.max_tokens),
        )

    def _reserve(
        self, run: _StageRun, ref: ModelRef, request: CompletionRequest, permit: Permit
    ) -> Reservation | None:
        """The spend reservation for the next call (a no-op one without a ledger), or None when the caps refuse
        it: the permit is handed back, the refusal logged as a skip and kept for the stage's error."""
        if self.ledger is None:
            return _NO_RESERVATION
        estimate = self.estimated_cost(ref, request)
        try:
            answer = self.ledger.reserve(estimate, stage=run.stage)
        except BaseException:
            self.breakers.release(permit)
            raise
        if isinstance(answer, Reservation):
            return answer
        self.breakers.release(permit)
        # The latest refusal is the one to report: its spend figure is the most recent.
        run.refusal, run.refused = answer, f"{run.stage} call to {ref}"
        run.log(ref, outcome="skipped", decision="fallback_next_model", error_code=_OVER_BUDGET)
        return None

    def _settle_spend(
        self, reservation: Reservation, actual_usd: float | None, first_model_usd: float | None = None
    ) -> None:
        if self.ledger is not None and reservation.keys:
            premium = None if actual_usd is None or first_model_usd is None else actual_usd - first_model_usd
            self.ledger.settle(reservation, actual_usd, premium_usd=premium)

    def _acquire(
        self, run: _StageRun, refs: Sequence[ModelRef], index: int, *, last_resort: bool = False
    ) -> Permit | None:
        """The breaker's permit for ``refs[index]``, or None (logged as a skip, provider excluded)."""
        ref = refs[index]
        try:
            try:
                return self.breakers.acquire(ref.provider, last_resort=last_resort)
            except ProviderParkedError as parked:
                # Parked (a daily quota): no outage and no wait worth scheduling; skip it like a 401.
                run.excluded[ref.provider] = parked.error_code
                run.log(ref, outcome="skipped", decision="skip_provider", error_code=parked.error_code)
                return None
            except ProviderWarmingError:
                if self._usable_provider_after(refs, index, run.excluded):
                    run.excluded[ref.provider] = _WARMING
                    run.log(
                        ref, outcome="skipped", decision="skip_provider", error_code=_WARMING, breaker_state="closed"
                    )
                    return None
                # No other real provider left: warming must neither fail the request nor hand it to the
                # offline engine's degraded answer while a healthy provider is merely unproven.
                return self.breakers.acquire(ref.provider, last_resort=True)
        except BreakerOpenError as closed_door:
            run.excluded[ref.provider] = _BREAKER_OPEN
            run.reopens_at[ref.provider] = closed_door.reopens_at
            run.log(ref, outcome="skipped", decision="skip_provider", error_code=_BREAKER_OPEN, breaker_state="open")
            return None

    def _usable_provider_after(self, refs: Sequence[ModelRef], index: int, excluded: Mapping[str, str]) -> bool:
        """Is a model of another real provider (not offline), with an adapter and not excluded, after ``index``?"""
        provider = refs[index].provider
        return any(
            r.provider not in (provider, OFFLINE) and r.provider not in excluded and r.provider in self.adapters
            for r in refs[index + 1 :]
        )

    def _on_failure(
        self,
        run: _StageRun,
        refs: Sequence[ModelRef],
        index: int,
        permit: Permit,
        error: ProviderError,
        model_calls: int,
        retries: int,
        started: float,
    ) -> _Step:
        """Settle the breaker, decide, log; raise if terminal, record exclusions and stops on ``run``."""
        latency = self._clock() - started
        ref = refs[index]
        self._settle(permit, error)
        run.last_error = error
        step = _after_failure(
            error,
            run,
            model_calls=model_calls,
            retries=retries,
            next_model_exists=_usable_after(refs, index, run.excluded),
            next_provider_exists=_usable_after(refs, index, run.excluded, ref.provider),
            rng=self._rng,
            next_served_model_exists=_usable_after(refs, index, run.excluded, served_only=True),
        )
        permanent = isinstance(error, PermanentProviderError) and not is_context_overflow(error)
        if is_context_overflow(error):
            run.unfit.add(ref)
            run.refused_window = max(run.refused_window, limits_for(ref.provider, ref.model).context_window)
            run.context_error = error
        if not permanent:
            self._exclude_after(run, ref, error)
        if step.terminal_reason == "chain" and self._degraded_restart(run, refs) is not None:
            step = _Step("retry_chain")  # not the end: the walk starts again (``_wait_to_walk_again``)
        run.log(
            ref,
            outcome="error",
            decision=step.decision,
            error=error,
            delay_s=step.delay_s,
            terminal_reason=step.terminal_reason,
            latency_s=latency,
            breaker_state=permit.state,
        )
        if permanent:
            raise run.fail(error) from None
        if step.decision == "stop":
            run.stop_reason = step.terminal_reason
        return step

    def _exclude_after(self, run: _StageRun, ref: ModelRef, error: ProviderError) -> None:
        """Remember what a failed call says about its provider for the rest of this request."""
        run.failed[ref.provider] = error.error_code or error.error_class
        if error.error_class == "transient":
            run.degraded.add(ref.provider)
        if isinstance(error, UnsupportedParameterError):
            pass  # model-level: the provider's other models may still take the request
        elif isinstance(error, BillingError):
            run.excluded[ref.provider] = BILLING_REFUSED
            logger.error("%s (provider skipped by every caller for %.0f s)", error.message, self.billing_hold_seconds)
        elif isinstance(error, ProviderUnavailableError):
            run.excluded[ref.provider] = (
                DAILY_QUOTA_EXHAUSTED if error.error_code == DAILY_QUOTA_EXHAUSTED else _UNAVAILABLE
            )
        elif is_provider_overloaded(error):
            run.excluded[ref.provider] = _OVERLOADED

    def _settle(self, permit: Permit, error: ProviderError) -> None:
        """Tell the breaker what a failed call says about the provider's health."""
        if error.error_code == DAILY_QUOTA_EXHAUSTED and error.retry_after:
            # Not an outage and not worth a retry: every caller skips the provider until the quota resets.
            self.breakers.park(permit, error.retry_after, DAILY_QUOTA_EXHAUSTED)
        elif isinstance(error, BillingError):
            # Nor is an unpaid bill: every caller skips the provider until someone adds credit (or the hold ends).
            self.breakers.park(permit, self.billing_hold_seconds, BILLING_REFUSED)
        elif isinstance(error, UnsupportedParameterError):
            self.breakers.record(permit, success=True)  # an answer about the model: the provider is up
        elif isinstance(error, ProviderUnavailableError):
            self.breakers.release(permit)
        else:
            # A permanent error is still an answer: the provider is up.
            self.breakers.record(permit, success=isinstance(error, PermanentProviderError))

    def _exhausted(self, run: _StageRun, refs: Sequence[ModelRef]) -> ProviderError:
        """The error that ends a walk that served nothing; it names every provider of the chain and why."""
        if run.refusal is not None:
            return BudgetExceededError(run.stage, run.refusal.describe(run.refused or run.stage))
        if run.context_error is not None and _only_unfit(run, refs):
            return run.context_error  # permanent: no model can take the prompt, the stage splits its work
        providers = tuple(dict.fromkeys(ref.provider for ref in refs))
        reasons = {p: run.excluded.get(p) or run.failed.get(p) or "not_called" for p in providers}
        idle_reasons = {_BREAKER_OPEN, _UNAVAILABLE, _NO_ADAPTER, _WARMING, DAILY_QUOTA_EXHAUSTED, BILLING_REFUSED}
        nothing_else_failed = all(run.excluded.get(p) in idle_reasons for p in providers)
        if run.reopens_at and nothing_else_failed:
            reopens_in = max(0.0, min(run.reopens_at.values()) - self._clock())
            return AllProvidersOpenError(
                run.stage, reopens_in, providers=tuple(sorted(run.reopens_at)), reasons=reasons
            )
        if nothing_else_failed:
            return ProviderUnavailableError(
                f"stage {run.stage!r}: no provider in the chain is usable ({describe_reasons(reasons)})",
                error_code="no_usable_provider",
            )
        reason: ExhaustionReason = "chain"
        if run.stop_reason == "budget":
            reason = "budget"
        elif run.stop_reason == "deadline":
            reason = "deadline"
        return ChainExhaustedError(run.stage, reason, last_error=run.last_error, reasons=reasons)
