"""``AIProviderResource``: the one door every AI-backed asset goes through.

It assembles the pure resilience core (``resources.resilience``) with the httpx adapters
(``resources.providers``) from typed resource config, so an asset says only *what* it wants
(``run_task(stage=..., task=..., payload=...)``) and gets back a validated answer plus the attempt log.

Modes:
* ``offline`` - every chain is just the deterministic offline engine (no network, no key).
* ``simulated`` - all three providers point at the loopback simulator (``simulator_url``).
* ``live`` - real providers; a provider without a key is skipped (recorded as ``no_adapter``).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from dagster import ConfigurableResource
from pydantic import BaseModel, Field, PrivateAttr

from resources.adapters.anthropic import AnthropicAdapter
from resources.adapters.gemini import GeminiAdapter
from resources.adapters.openai import OpenAIAdapter
from resources.data_root import response_cache_dir as default_response_cache_dir
from resources.data_root import telemetry_path as default_telemetry_path
from resources.providers.base import ProviderAdapter
from resources.providers.limits import limits_for
from resources.providers.offline import OfflineAdapter
from resources.providers.prices import price_table
from resources.providers.prompts import RESPONSE_MODELS, build_request, parse_response, system_prompt
from resources.resilience.backoff import (
    DEFAULT_BASE_SECONDS,
    DEFAULT_CAP_SECONDS,
    DEFAULT_RETRY_AFTER_CAP_SECONDS,
    BackoffPolicy,
)
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker, breaker_identity
from resources.resilience.breaker_store import default_store_url, store_from_url
from resources.resilience.budget import DEFAULT_BILLING_HOLD_SECONDS, BudgetCaps, SpendLedger, spend_store_from_url
from resources.resilience.chain import (
    DEFAULT_ATTEMPTS_PER_MODEL,
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_AFTER_FALLBACK_SECONDS,
    OFFLINE,
    StagePolicy,
    fallback_chain_for,
)
from resources.resilience.cost import attempts_cost, stage_cost_summary
from resources.resilience.errors import ProviderError
from resources.resilience.executor import CallOutcome, ResilientCaller
from resources.resilience.hedge import CancellableClients, HedgePolicy, Hedger, fleet_tracker
from resources.resilience.retry_budget import RetryBudget, RetryBudgetPolicy, budget_store_from_url
from resources.resilience.telemetry import AttemptRecord, JsonlTelemetrySink, ProviderMode, TelemetryListener
from resources.response_cache import CachedAnswer, ResponseCache, cache_key, prompt_version

T = TypeVar("T", bound=BaseModel)
SIMULATED_KEY = "sim-key-not-a-secret"
# The resource's defaults are the resilience core's, read from it rather than repeated here.
_BREAKER_DEFAULTS = BreakerPolicy()
_RETRY_BUDGET_DEFAULTS = RetryBudgetPolicy()
_HEDGE_DEFAULTS = HedgePolicy()
# The output ceiling one call of a stage that splits its work asks for, when the resource does not say
# (``call_output_tokens``): an answer's time grows with its length (tens of tokens a second), and one call
# must finish well inside ``request_timeout_seconds`` and the stage's deadline.
SPLIT_OUTPUT_TOKENS: dict[str, int] = {"normalize": 8192, "enrich_scenes": 4096}
# Output speed the per-call timeout assumes at worst: about a third of what the chains' models keep in
# practice (~70 tokens/s for Claude Sonnet and GPT-4.1, more for Gemini Flash), so a loaded provider's
# slow answer still finishes. A 4,096-token call gets 60 s + 4096 / 25 s = ~224 s (the deadline still bounds it).
DEFAULT_OUTPUT_TOKENS_PER_SECOND_FLOOR = 25.0


@dataclass(frozen=True, slots=True)
class PlanningLimits:
    """What one call of a split stage may use, for the model the stage calls first."""

    model: str
    context_window: int
    max_output_tokens: int


@dataclass
class AIResult(Generic[T]):
    """A validated task answer and how it was obtained."""

    value: T
    provider: str
    model: str
    attempts: list[AttemptRecord] = field(default_factory=list)
    cached: bool = False  # read from the response cache: no call was made

    @property
    def attempt_count(self) -> int:
        return sum(1 for a in self.attempts if a.outcome != "skipped")

    @property
    def cost_usd(self) -> float | None:
        """USD this task paid at list price over every attempt (None: some attempt's model is unpriced)."""
        return attempts_cost(self.attempts).usd

    @property
    def final_error_class(self) -> str:
        errors = [a.error_class for a in self.attempts if a.error_class]
        return errors[-1] if errors else "none"


@dataclass(frozen=True, slots=True)
class ProviderSession:
    """The open parts of one provider call (``AIProviderResource.session``): valid inside its ``with``."""

    sink: JsonlTelemetrySink
    listeners: tuple[TelemetryListener, ...]  # the sink first, then the caller's
    breaker: CircuitBreaker
    adapters: dict[str, ProviderAdapter]  # on one pooled httpx client, transport retries off


class AIProviderResource(ConfigurableResource):
    """Provider access with retries, fallback chains and a shared circuit breaker.

    Keys come from ``dagster.EnvVar`` (see ``cineforge_assets.resource_config``); they are held only
    by the adapters and never reach events, metadata, logs or artifacts.
    """

    mode: ProviderMode = "offline"
    simulator_url: str = ""
    anthropic_api_key: str | None = None
    openai_api_key: str | None = None
    gemini_api_key: str | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    openai_base_url: str = "https://api.openai.com/v1"
    gemini_base_url: str = "https://generativelanguage.googleapis.com"
    chains: dict[str, list[str]] = Field(default_factory=dict, description="stage -> ordered model list")
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    attempts_per_model: int = DEFAULT_ATTEMPTS_PER_MODEL
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    request_timeout_seconds: float = Field(
        default=60.0,
        description="base timeout of one call (a hung call's allowance); a call gets its output ceiling's "
        "time at output_tokens_per_second_floor on top, within the stage's deadline",
    )
    output_tokens_per_second_floor: float = Field(
        default=DEFAULT_OUTPUT_TOKENS_PER_SECOND_FLOOR,
        gt=0,
        description="slowest output rate (tokens/s) a healthy model keeps; sizes a long answer's timeout",
    )
    backoff_base_seconds: float = DEFAULT_BASE_SECONDS
    backoff_cap_seconds: float = DEFAULT_CAP_SECONDS
    retry_after_cap_seconds: float = DEFAULT_RETRY_AFTER_CAP_SECONDS
    retry_after_fallback_seconds: float = Field(
        default=DEFAULT_RETRY_AFTER_FALLBACK_SECONDS,
        description="a retry-after longer than this falls back to another provider's model instead of waiting",
    )
    breaker_store_url: str = Field(
        default="", description="sqlite:///... (default beside DAGSTER_HOME) or postgresql://..."
    )
    breaker_failure_threshold: int = _BREAKER_DEFAULTS.failure_threshold
    breaker_cooldown_seconds: float = Field(
        default=_BREAKER_DEFAULTS.cooldown_seconds,
        description="the longest an open breaker stays open (failed probes lengthen its open period up to it)",
    )
    breaker_first_cooldown_seconds: float = Field(
        default=_BREAKER_DEFAULTS.first_cooldown_seconds,
        description="how long a breaker stays open the first time in an outage "
        "(set it to the cooldown for a fixed open period)",
    )
    breaker_cooldown_multiplier: float = Field(
        default=_BREAKER_DEFAULTS.cooldown_multiplier,
        description="each failed half-open probe multiplies the next open period by this, up to the cooldown",
    )
    breaker_half_open_probes: int = _BREAKER_DEFAULTS.half_open_max_probes
    breaker_failure_rate_threshold: float = Field(
        default=_BREAKER_DEFAULTS.failure_rate_threshold,
        description="open when this share of the calls in the breaker window failed (over the minimum calls)",
    )
    breaker_min_calls_in_window: int = Field(
        default=_BREAKER_DEFAULTS.min_calls_in_window,
        description="calls in the breaker window before its failure rate may open it",
    )
    breaker_streak_chance_limit: float = Field(
        default=_BREAKER_DEFAULTS.streak_chance_limit,
        description="a failure streak opens the breaker only if the provider's earlier failure ratio would "
        "produce it by chance with at most this probability (a brownout is not an outage)",
    )
    breaker_warm_up_calls: int = Field(
        default=_BREAKER_DEFAULTS.warm_up_calls,
        description="calls a provider with no recent success gets before one must succeed",
    )
    retry_budget_enabled: bool = Field(
        default=True, description="limit the fleet's retries and fallback calls per provider (retry_budget.py)"
    )
    retry_budget_ratio: float = Field(
        default=_RETRY_BUDGET_DEFAULTS.ratio, description="extra calls per provider, as a share of first attempts"
    )
    retry_budget_min_per_window: int = Field(
        default=_RETRY_BUDGET_DEFAULTS.min_per_window, description="extra calls per provider always allowed"
    )
    retry_budget_window_seconds: float = _RETRY_BUDGET_DEFAULTS.window_seconds
    hedge_stages: list[str] = Field(
        default_factory=list, description="stages whose slow calls are hedged on the next provider (opt-in)"
    )
    hedge_after_seconds: float | None = Field(
        default=None, description="hedge after this delay; None: the learned hedge_quantile of the model's latency"
    )
    hedge_quantile: float = _HEDGE_DEFAULTS.quantile
    hedge_min_after_seconds: float = _HEDGE_DEFAULTS.min_after_seconds
    hedge_max_after_seconds: float = _HEDGE_DEFAULTS.max_after_seconds
    hedge_max_share: float = Field(default=_HEDGE_DEFAULTS.max_share, description="share of calls hedged at most")
    telemetry_path: str = Field(
        default="", description="JSONL file; default $CINEFORGE_DATA/telemetry/events.jsonl"
    )
    seed: int | None = Field(default=None, description="seed for backoff jitter (tests, replays)")
    run_budget_usd: float | None = Field(
        default=None, description="USD cap per run (default $CINEFORGE_RUN_BUDGET_USD; unset: no cap)"
    )
    daily_budget_usd: float | None = Field(
        default=None,
        description="USD cap per UTC day, fleet-wide, kept in the breaker store (default $CINEFORGE_DAILY_BUDGET_USD)",
    )
    billing_hold_seconds: float = Field(
        default=DEFAULT_BILLING_HOLD_SECONDS,
        description="how long a provider that refused billing (no credit) is skipped by every worker",
    )
    prices_file: str = Field(
        default="", description="price table overriding the shipped one (default $CINEFORGE_PRICES_FILE)"
    )
    call_output_tokens: int | None = Field(
        default=None,
        description="output ceiling of one call of a stage that splits its work (enrich_scenes, normalize); "
        "default 4096 / 8192; capped at the model's own limit",
    )
    batch_concurrency: int = Field(default=4, ge=1, description="parts of a split stage in flight at once")
    response_cache_dir: str = Field(
        default="", description="answers of split stages' parts; default $CINEFORGE_DATA/cache/responses"
    )

    _breaker: CircuitBreaker | None = PrivateAttr(default=None)

    # ------------------------------------------------------------------ assembly

    def stage_policy(self) -> StagePolicy:
        return StagePolicy(
            max_attempts=self.max_attempts,
            deadline_seconds=self.deadline_seconds,
            attempts_per_model=self.attempts_per_model,
            request_timeout_seconds=self.request_timeout_seconds,
            output_tokens_per_second_floor=self.output_tokens_per_second_floor,
            retry_after_fallback_seconds=self.retry_after_fallback_seconds,
            backoff=BackoffPolicy(
                base=self.backoff_base_seconds,
                cap=self.backoff_cap_seconds,
                retry_after_cap=self.retry_after_cap_seconds,
            ),
        )

    def breaker_policy(self) -> BreakerPolicy:
        return BreakerPolicy(
            failure_threshold=self.breaker_failure_threshold,
            cooldown_seconds=self.breaker_cooldown_seconds,
            first_cooldown_seconds=self.breaker_first_cooldown_seconds,
            cooldown_multiplier=self.breaker_cooldown_multiplier,
            half_open_max_probes=self.breaker_half_open_probes,
            warm_up_calls=self.breaker_warm_up_calls,
            failure_rate_threshold=self.breaker_failure_rate_threshold,
            min_calls_in_window=self.breaker_min_calls_in_window,
            streak_chance_limit=self.breaker_streak_chance_limit,
        )

    def breaker(self, listeners: Sequence[Any] = (), *, clock: Callable[[], float] = time.time) -> CircuitBreaker:
        """The shared breakers, each provider's keyed by this resource's mode and that provider's base URL
        (a simulated drill never touches the live breakers, even on one store)."""
        store = store_from_url(self.breaker_store_url or default_store_url())
        return CircuitBreaker(
            store, self.breaker_policy(), clock=clock, listeners=tuple(listeners), identities=self.breaker_identities()
        )

    def retry_budget(self, *, clock: Callable[[], float] = time.time) -> RetryBudget | None:
        """The fleet's retry budget, in the breakers' store, scoped to this mode's provider endpoints (a
        simulated drill never spends the live budget); None when disabled or offline."""
        if not self.retry_budget_enabled or self.mode == "offline":
            return None
        policy = RetryBudgetPolicy(
            ratio=self.retry_budget_ratio,
            min_per_window=self.retry_budget_min_per_window,
            window_seconds=self.retry_budget_window_seconds,
        )
        store = budget_store_from_url(self.breaker_store_url or default_store_url())
        return RetryBudget(store, policy, scope=self.fleet_scope(), clock=clock)

    def fleet_scope(self) -> str:
        """The fleet-wide records' scope (retry budget, latencies): this mode and its provider endpoints, so
        a simulated drill neither spends nor learns from the live fleet's."""
        endpoints = hashlib.sha256("|".join(sorted(self.breaker_identities().values())).encode()).hexdigest()[:16]
        return f"{self.mode}:{endpoints}"

    def hedge_policy(self) -> HedgePolicy:
        return HedgePolicy(
            after_seconds=self.hedge_after_seconds,
            quantile=self.hedge_quantile,
            min_after_seconds=self.hedge_min_after_seconds,
            max_after_seconds=self.hedge_max_after_seconds,
            max_share=self.hedge_max_share,
        )

    def hedger(self, *, clock: Callable[[], float] = time.time) -> Hedger | None:
        """Hedging for the opted-in stages (each racing call on a client of its own), or None."""
        if not self.hedge_stages or self.mode == "offline":
            return None
        clients = CancellableClients(lambda provider, client: self.adapters(client)[provider])
        # Latencies are learned fleet-wide: a step's process makes too few calls to learn them alone.
        tracker = fleet_tracker(self.breaker_store_url or default_store_url(), self.fleet_scope())
        return Hedger(
            self.hedge_policy(), clients, stages=frozenset(self.hedge_stages), tracker=tracker, clock=clock
        )

    def breaker_identities(self) -> dict[str, str]:
        """provider -> the key its breaker is stored under in this mode (see ``breaker_identity``)."""
        return {
            provider: breaker_identity(provider, self.mode, url) for provider, url in self.provider_base_urls().items()
        }

    def provider_base_urls(self) -> dict[str, str]:
        """Where each real provider's calls go in this mode (none offline)."""
        if self.mode == "simulated":
            if not self.simulator_url:
                raise ValueError(
                    "mode='simulated' needs simulator_url (start one with `cineforge simulator`)"
                )
            base = self.simulator_url.rstrip("/")
            return {"anthropic": f"{base}/anthropic", "openai": f"{base}/openai/v1", "gemini": f"{base}/gemini"}
        if self.mode == "live":
            return {
                "anthropic": self.anthropic_base_url,
                "openai": self.openai_base_url,
                "gemini": self.gemini_base_url,
            }
        return {}

    def ledger(self, run_id: str | None = None, *, clock: Callable[[], float] = time.time) -> SpendLedger:
        """The spending caps, in the breakers' database (daily totals kept apart per mode)."""
        store = spend_store_from_url(self.breaker_store_url or default_store_url())
        caps = BudgetCaps.resolve(self.run_budget_usd, self.daily_budget_usd)
        return SpendLedger(store, caps, run_id=run_id, clock=clock, namespace=self.mode)

    def telemetry_file(self) -> str:
        if self.telemetry_path:
            return self.telemetry_path
        return str(default_telemetry_path())

    def _chains(self) -> Mapping[str, Sequence[str]] | None:
        if self.mode == "offline":
            return {stage: [OFFLINE] for stage in ("normalize", "extract_scenes", "project_config", "health")}
        return self.chains or None

    def adapters(self, client: httpx.Client) -> dict[str, ProviderAdapter]:
        adapters: dict[str, ProviderAdapter] = {OFFLINE: OfflineAdapter()}
        if self.mode == "simulated":
            urls = self.provider_base_urls()
            adapters["anthropic"] = AnthropicAdapter(SIMULATED_KEY, urls["anthropic"], client)
            adapters["openai"] = OpenAIAdapter(SIMULATED_KEY, urls["openai"], client)
            adapters["gemini"] = GeminiAdapter(SIMULATED_KEY, urls["gemini"], client)
        elif self.mode == "live":
            if self.anthropic_api_key:
                adapters["anthropic"] = AnthropicAdapter(
                    self.anthropic_api_key, self.anthropic_base_url, client
                )
            if self.openai_api_key:
                adapters["openai"] = OpenAIAdapter(self.openai_api_key, self.openai_base_url, client)
            if self.gemini_api_key:
                adapters["gemini"] = GeminiAdapter(self.gemini_api_key, self.gemini_base_url, client)
        return adapters

    def response_cache(self) -> ResponseCache:
        if self.response_cache_dir:
            return ResponseCache(self.response_cache_dir)
        return ResponseCache(default_response_cache_dir())

    def chain_models(self, stage: str) -> list[str]:
        """The models ``stage`` walks, in order (the offline engine alone in offline mode)."""
        return [ref.model for ref in fallback_chain_for(stage, self._chains())]

    def _has_provider(self, provider: str) -> bool:
        if provider == OFFLINE or self.mode == "simulated":
            return True
        if self.mode == "offline":
            return False
        keys = {"anthropic": self.anthropic_api_key, "openai": self.openai_api_key, "gemini": self.gemini_api_key}
        return bool(keys.get(provider))

    def planning_limits(self, stage: str, task: str) -> PlanningLimits:
        """The limits a split stage plans its parts for: those of the first model of the chain that can be
        called (its provider configured), its output ceiling lowered to ``call_output_tokens`` (or the task's
        ``SPLIT_OUTPUT_TOKENS``). The offline engine has no limits worth splitting for."""
        for ref in fallback_chain_for(stage, self._chains()):
            if not self._has_provider(ref.provider):
                continue
            limits = limits_for(ref.provider, ref.model)
            if ref.provider == OFFLINE:  # its figures only keep the arithmetic finite: half for the answer
                return PlanningLimits(ref.model, limits.context_window, limits.context_window // 2)
            wanted = self.call_output_tokens or SPLIT_OUTPUT_TOKENS.get(task, limits.max_output_tokens)
            return PlanningLimits(ref.model, limits.context_window, limits.output_ceiling(wanted))
        raise ValueError(f"no model of the {stage!r} chain can be called in mode {self.mode!r}")

    # ------------------------------------------------------------------ use

    @contextmanager
    def session(
        self, listeners: Sequence[TelemetryListener] = (), *, clock: Callable[[], float] = time.time
    ) -> Iterator[ProviderSession]:
        """Everything a provider call needs, closed when the block ends: the telemetry sink (the first
        listener, before ``listeners``; it stamps this mode on every line), the shared breaker reporting to
        them, and the adapters on one pooled httpx client whose transport retries stay at 0, so the
        resilience layer owns every retry.
        A stage's call and the health probe both go through here."""
        with ExitStack() as closing:
            # Every line says this mode: the report never reads a drill as a live outage or live money.
            sink = JsonlTelemetrySink(self.telemetry_file(), mode=self.mode)
            closing.callback(sink.close)
            all_listeners = (sink, *listeners)
            breaker = self.breaker(all_listeners, clock=clock)
            closing.callback(breaker.store.close)
            client = closing.enter_context(httpx.Client(transport=httpx.HTTPTransport(retries=0)))
            yield ProviderSession(sink, all_listeners, breaker, self.adapters(client))

    def run_task(
        self,
        *,
        stage: str,
        task: str,
        payload: dict[str, Any],
        listeners: Sequence[TelemetryListener] = (),
        run_id: str | None = None,
        partition: str | None = None,
        clock: Callable[[], float] = time.time,
        max_tokens: int | None = None,
        cache: bool = False,
    ) -> AIResult[Any]:
        """Serve ``task`` for ``stage`` through its fallback chain; raise the taxonomy's errors on failure.

        ``clock`` (epoch seconds) drives deadlines and the breaker; tests inject one. ``max_tokens``: the
        request's output ceiling (default: the task's). ``cache``: read the answer from the response cache
        when this task, chain, prompt and payload were answered by a model before, and keep a model's
        answer there (the offline engine's is not kept: it costs nothing, and a later run should get a
        model's).
        """
        key = None
        if cache:
            key = self.response_key(stage, task, payload)
            hit = self.response_cache().get(key)
            if hit is not None and hit.task == task:
                value = RESPONSE_MODELS[task].model_validate(hit.value)
                return AIResult(value=value, provider=hit.provider, model=hit.model, cached=True)
        result = self._call(stage, task, payload, listeners, run_id, partition, clock, max_tokens)
        if key is not None and result.provider != OFFLINE:
            answer = CachedAnswer(task, result.provider, result.model, result.value.model_dump(mode="json"))
            self.response_cache().put(key, answer)
        return result

    def response_key(self, stage: str, task: str, payload: dict[str, Any]) -> str:
        """The response cache's key for ``task`` on ``payload`` through ``stage``'s chain in this mode."""
        # The mode is part of the chain's identity: a simulated answer must never stand in for a live one.
        chain = [f"{self.mode}:{model}" for model in self.chain_models(stage)]
        return cache_key(task, chain, prompt_version(system_prompt(task)), payload)

    def _call(
        self,
        stage: str,
        task: str,
        payload: dict[str, Any],
        listeners: Sequence[TelemetryListener],
        run_id: str | None,
        partition: str | None,
        clock: Callable[[], float],
        max_tokens: int | None,
    ) -> AIResult[Any]:
        request = build_request(task, payload, stage=stage, max_tokens=max_tokens)
        rng = random.Random(self.seed) if self.seed is not None else random.Random()
        with contextlib.ExitStack() as closing:
            session = closing.enter_context(self.session(listeners, clock=clock))
            # Closed before the session, last made first, whatever the call raised.
            ledger = self.ledger(run_id, clock=clock)
            closing.callback(ledger.store.close)
            retry_budget = self.retry_budget(clock=clock)
            if retry_budget is not None:
                closing.callback(retry_budget.store.close)
                closing.callback(retry_budget.flush)
            hedger = self.hedger(clock=clock)
            if hedger is not None:
                closing.callback(hedger.close)
            caller = ResilientCaller(
                session.adapters,
                session.breaker,
                policy=self.stage_policy(),
                chains=self._chains(),
                clock=clock,
                rng=rng,
                listeners=session.listeners,
                run_id=run_id,
                partition=partition,
                retry_budget=retry_budget,
                hedger=hedger,
                ledger=ledger,
                prices=price_table(self.prices_file or None),
                billing_hold_seconds=self.billing_hold_seconds,
            )
            try:
                outcome: CallOutcome[Any] = caller.call(
                    stage, request, lambda text: parse_response(task, text, payload=request.payload)
                )
            except ProviderError as error:
                _report_cost(session.sink, ledger, stage, error.attempts, None, run_id, partition, clock)
                raise
            served = f"{outcome.provider}/{outcome.model}"
            _report_cost(session.sink, ledger, stage, outcome.attempts, served, run_id, partition, clock)
        return AIResult(
            value=outcome.value, provider=outcome.provider, model=outcome.model, attempts=outcome.attempts
        )


def _report_cost(
    sink: JsonlTelemetrySink,
    ledger: SpendLedger,
    stage: str,
    attempts: Sequence[AttemptRecord],
    served: str | None,
    run_id: str | None,
    partition: str | None,
    clock: Callable[[], float],
) -> None:
    """One ``stage_cost`` telemetry line: this call's cost and the run's and day's spend so far."""
    provider, _, model = served.partition("/") if served else (None, "", None)
    summary = stage_cost_summary(stage, attempts, provider=provider, model=model or None)
    try:
        spent = ledger.spent()
    except Exception:  # the line is still worth writing without the ledger's totals
        spent = {}
    sink.on_stage_cost(
        {
            "ts": clock(),
            "run_id": run_id,
            "partition": partition,
            **summary,
            "run_cost_usd": spent.get("run"),
            "day_cost_usd": spent.get("day"),
        }
    )
