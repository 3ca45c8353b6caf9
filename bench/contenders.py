"""The contenders of the chaos benchmark: the same requests, chains and budgets, four ways of surviving.

Each contender turns one benchmark request into a served answer (the provider that served it) or an
exception. They all walk the same chain (``BenchConfig.chain``), cap one request at the same number of
provider calls (``max_calls``; LiteLLM cannot be capped exactly, see ``LiteLLMContender``), use the same
per-call timeout and the same breaker numbers (open after ``failure_threshold`` failures, stay open
``cooldown_s``). Ours, the naive baseline and tenacity+pybreaker share our httpx adapters, so the
differences measured are the retry / breaker / fallback logic and nothing else; LiteLLM speaks to the
same simulator endpoints through its own clients (``api_base``), which is how its users run it.

* ``oracle``   - one call straight to the primary, no retries; run only against a healthy simulator.
* ``ours``     - ``ResilientCaller`` + ``CircuitBreaker`` over ``SQLiteBreakerStore`` (shared by every
  worker process of a run), default ``StagePolicy``/``BreakerPolicy`` except the per-call timeout, with the
  fleet-wide retry budget (same SQLite file) and hedging of the stage at the default learned p95.
* ``naive``    - three tries per model with a fixed 0.5 s pause, any error retried, then the next model;
  a per-process in-memory breaker (consecutive failures per provider).
* ``tenacity`` - tenacity ``Retrying`` (3 attempts, ``wait_random_exponential``, retry only transient
  errors) around pybreaker ``CircuitBreaker.call`` (one breaker per provider, in process memory,
  permanent errors excluded), falling to the next model when either gives up.
* ``litellm``  - ``litellm.Router`` with one model group per chain entry, ``fallbacks``, ``num_retries``,
  ``allowed_fails`` and ``cooldown_time``, as its reliability docs show.
* ``tenacity-redis`` / ``litellm-redis`` - the same two with the shared state their docs offer for
  several processes: pybreaker's ``CircuitRedisStorage`` and the Router's ``redis_host``/``redis_port``
  (cooldowns and failure counts in Redis). Each run uses its own key prefix, deleted afterwards.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.attempt_trace import TRACE_DIR_ENV, RequestTraceWriter
from resources.adapters.anthropic import AnthropicAdapter
from resources.adapters.gemini import GeminiAdapter
from resources.adapters.openai import OpenAIAdapter
from resources.providers.base import CompletionRequest, ProviderAdapter
from resources.providers.prompts import parse_response
from resources.resilience.backoff import BackoffPolicy
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import SQLiteBreakerStore
from resources.resilience.chain import StagePolicy, provider_for
from resources.resilience.errors import (
    PermanentProviderError,
    ProviderError,
    ProviderUnavailableError,
    TransientProviderError,
)
from resources.resilience.executor import ResilientCaller
from resources.resilience.hedge import CancellableClients, HedgePolicy, Hedger, fleet_tracker
from resources.resilience.retry_budget import RetryBudget, SQLiteBudgetStore

SIM_KEY = "sim-key-not-a-secret"
CONTENDERS = ("ours", "naive", "tenacity", "litellm")
STAGE = "normalize"


@dataclass(frozen=True)
class BenchConfig:
    """What every contender is given: the same chain, budget, timeout and breaker numbers."""

    sim_url: str
    chain: tuple[str, ...] = ("claude-sonnet-4-6", "claude-opus-4-6", "gpt-4.1", "gemini-3-flash-preview")
    max_calls: int = 6
    tries_per_model: int = 3  # naive / tenacity / LiteLLM (1 + num_retries); ours: attempts_per_model=2
    request_timeout_s: float = 1.0
    failure_threshold: int = 5
    cooldown_s: float = 30.0
    backoff_base_s: float = 0.5
    breaker_dir: str = ""
    seed: int = 0
    redis_url: str = ""  # for the *-redis contenders
    redis_prefix: str = ""
    hedging: bool = True  # ours: hedge the stage (learned p95); False to measure without it
    # ours: write per-request attempt traces here (``bench/attempt_trace.py``; chaos.py ``--trace``)
    trace_dir: str = dataclasses.field(default_factory=lambda: os.environ.get(TRACE_DIR_ENV, ""))


@dataclass(frozen=True)
class BenchRequest:
    number: int
    task: str
    request: CompletionRequest


class Contender(Protocol):
    name: str

    def serve(self, item: BenchRequest) -> str:
        """Serve ``item``; return the provider that answered, or raise."""
        ...

    def close(self) -> None: ...


def _client(threads: int) -> httpx.Client:
    limits = httpx.Limits(max_connections=max(16, threads * 4), max_keepalive_connections=max(16, threads * 4))
    return httpx.Client(transport=httpx.HTTPTransport(retries=0, limits=limits), follow_redirects=False)


def _adapters(config: BenchConfig, client: httpx.Client) -> dict[str, ProviderAdapter]:
    base = config.sim_url.rstrip("/")
    return {
        "anthropic": AnthropicAdapter(SIM_KEY, f"{base}/anthropic", client),
        "openai": OpenAIAdapter(SIM_KEY, f"{base}/openai/v1", client),
        "gemini": GeminiAdapter(SIM_KEY, f"{base}/gemini", client),
    }


class _Budget:
    """Calls left for one request (the same cap every contender gets)."""

    def __init__(self, calls: int) -> None:
        self.left = calls

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class BudgetExhausted(Exception):
    pass


# ------------------------------------------------------------------------------------------ oracle


class OracleContender:
    """Every call straight to the primary model: the floor the others are measured against."""

    name = "oracle"

    def __init__(self, config: BenchConfig, threads: int) -> None:
        self.config = config
        self._client = _client(threads)
        self._adapters = _adapters(config, self._client)

    def serve(self, item: BenchRequest) -> str:
        model = self.config.chain[0]
        provider = provider_for(model)
        completion = self._adapters[provider].complete(model, item.request, timeout=self.config.request_timeout_s)
        parse_response(item.task, completion.text)
        return provider

    def close(self) -> None:
        self._client.close()


# ------------------------------------------------------------------------------------------ ours


def ours_breaker_policy(config: BenchConfig) -> BreakerPolicy:
    """The breaker policy of "ours": a user's defaults (adaptive open period included), with the threshold and
    the longest open period every contender is given."""
    return BreakerPolicy(failure_threshold=config.failure_threshold, cooldown_seconds=config.cooldown_s)


class OursContender:
    """``ResilientCaller`` with the SQLite breaker store every worker process of the run shares."""

    name = "ours"

    def __init__(self, config: BenchConfig, threads: int) -> None:
        self.config = config
        self._client = _client(threads)
        store = SQLiteBreakerStore(Path(config.breaker_dir) / "breakers.sqlite")
        breakers = CircuitBreaker(store, ours_breaker_policy(config))
        self.caller = ResilientCaller(
            _adapters(config, self._client),
            breakers,
            policy=StagePolicy(
                max_attempts=config.max_calls,
                request_timeout_seconds=config.request_timeout_s,
                backoff=BackoffPolicy(base=config.backoff_base_s),
            ),
            chains={STAGE: list(config.chain)},
            rng=random.Random(config.seed * 7919 + os.getpid()),
            retry_budget=RetryBudget(SQLiteBudgetStore(Path(config.breaker_dir) / "breakers.sqlite"), scope="bench"),
            hedger=self._hedger(config, threads) if config.hedging else None,
        )
        self._trace = (
            RequestTraceWriter(config.trace_dir, Path(config.breaker_dir).name, self.name) if config.trace_dir else None
        )

    @staticmethod
    def _hedger(config: BenchConfig, threads: int) -> Hedger:
        clients = CancellableClients(lambda provider, client: _adapters(config, client)[provider], keep=threads * 2)
        # Latencies learned fleet-wide in the breakers' file, as the resource does (every worker process of
        # the run shares them; each run starts with a new file).
        tracker = fleet_tracker(f"sqlite:///{Path(config.breaker_dir) / 'breakers.sqlite'}", "bench")
        return Hedger(HedgePolicy(), clients, stages=frozenset({STAGE}), tracker=tracker)

    def serve(self, item: BenchRequest) -> str:
        task = item.task
        if self._trace is None:
            return self.caller.call(STAGE, item.request, lambda text: parse_response(task, text)).provider
        return self._traced_serve(item, self._trace)

    def _traced_serve(self, item: BenchRequest, trace: RequestTraceWriter) -> str:
        first = self.config.chain[0]
        hedger = self.caller.hedger
        delay = hedger.delay(provider_for(first), first, STAGE, self.config.request_timeout_s) if hedger else None
        trace.log.begin()
        start = time.time()
        try:
            outcome = self.caller.call(STAGE, item.request, lambda text: parse_response(item.task, text))
        except ProviderError as error:
            trace.write(item.number, start, time.time(), False, delay, error.attempts)
            raise
        trace.write(item.number, start, time.time(), True, delay, outcome.attempts)
        return outcome.provider

    def close(self) -> None:
        self.caller.breakers.store.close()
        if self.caller.retry_budget is not None:
            self.caller.retry_budget.flush()
            self.caller.retry_budget.store.close()
        if self.caller.hedger is not None:
            self.caller.hedger.close()
        self._client.close()


# ------------------------------------------------------------------------------------------ naive


class _NaiveBreaker:
    """Per-process, per-provider: open after N consecutive failures for a cooldown, then let calls
    through again (the first failure re-opens it, the first success closes it)."""

    def __init__(self, threshold: int, cooldown_s: float) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def allows(self, provider: str) -> bool:
        with self._lock:
            return time.time() >= self._open_until.get(provider, 0.0)

    def success(self, provider: str) -> None:
        with self._lock:
            self._failures[provider] = 0

    def failure(self, provider: str) -> None:
        with self._lock:
            count = self._failures.get(provider, 0) + 1
            self._failures[provider] = count
            if count >= self.threshold:
                self._open_until[provider] = time.time() + self.cooldown_s
                self._failures[provider] = self.threshold - 1  # half-open: one more failure re-opens


class NaiveContender:
    """Three tries per model, fixed pause, every error retried; an in-memory breaker per process."""

    name = "naive"

    def __init__(self, config: BenchConfig, threads: int) -> None:
        self.config = config
        self._client = _client(threads)
        self._adapters = _adapters(config, self._client)
        self._breaker = _NaiveBreaker(config.failure_threshold, config.cooldown_s)

    def serve(self, item: BenchRequest) -> str:
        budget = _Budget(self.config.max_calls)
        last: Exception = BudgetExhausted("no provider tried")
        for model in self.config.chain:
            provider = provider_for(model)
            for attempt in range(self.config.tries_per_model):
                if not self._breaker.allows(provider):
                    break
                if not budget.take():
                    raise last
                try:
                    completion = self._adapters[provider].complete(
                        model, item.request, timeout=self.config.request_timeout_s
                    )
                    parse_response(item.task, completion.text)
                except Exception as error:  # naive: everything is worth another try
                    self._breaker.failure(provider)
                    last = error
                    if attempt + 1 < self.config.tries_per_model:
                        time.sleep(self.config.backoff_base_s)
                    continue
                self._breaker.success(provider)
                return provider
        raise last

    def close(self) -> None:
        self._client.close()


# ------------------------------------------------------------------------------------------ tenacity


class TenacityContender:
    """tenacity around pybreaker, per their READMEs, walking the same chain."""

    name = "tenacity"

    shared_state = False

    def __init__(self, config: BenchConfig, threads: int) -> None:
        import pybreaker

        self.config = config
        self._pybreaker = pybreaker
        self._client = _client(threads)
        self._adapters = _adapters(config, self._client)
        self._redis: Any = None
        if self.shared_state:
            import redis

            # pybreaker's docs: decode_responses must stay off for CircuitRedisStorage.
            self._redis = redis.Redis.from_url(config.redis_url)
        # pybreaker: fail_max / reset_timeout; business errors listed in ``exclude`` do not count.
        self._breakers = {
            provider: pybreaker.CircuitBreaker(
                fail_max=config.failure_threshold,
                reset_timeout=config.cooldown_s,
                exclude=[PermanentProviderError, ProviderUnavailableError],
                name=provider,
                state_storage=self._storage(provider),
            )
            for provider in {provider_for(m) for m in config.chain}
        }

    def _storage(self, provider: str) -> Any:
        if self._redis is None:
            return None  # pybreaker's default: CircuitMemoryStorage, per process
        return self._pybreaker.CircuitRedisStorage(
            self._pybreaker.STATE_CLOSED, self._redis, namespace=f"{self.config.redis_prefix}:{provider}"
        )

    def _retrying(self, budget: _Budget) -> Any:
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential
        from tenacity.stop import stop_base

        class BudgetSpent(stop_base):
            """Stop when the request's call budget is spent (shared across the chain's models)."""

            def __call__(self, retry_state: Any) -> bool:
                return budget.left <= 0

        return Retrying(
            stop=stop_after_attempt(self.config.tries_per_model) | BudgetSpent(),
            wait=wait_random_exponential(multiplier=self.config.backoff_base_s, max=20),
            retry=retry_if_exception_type(TransientProviderError),
            reraise=True,
        )

    def serve(self, item: BenchRequest) -> str:
        budget = _Budget(self.config.max_calls)
        last: Exception = BudgetExhausted("no provider tried")
        for model in self.config.chain:
            provider = provider_for(model)
            adapter = self._adapters[provider]
            breaker = self._breakers[provider]

            def attempt(model: str = model, adapter: ProviderAdapter = adapter, breaker: Any = breaker) -> str:
                if not budget.take():
                    raise BudgetExhausted("call budget spent")
                completion = breaker.call(adapter.complete, model, item.request, timeout=self.config.request_timeout_s)
                return completion.text

            try:
                text = self._retrying(budget)(attempt)
            except (self._pybreaker.CircuitBreakerError, TransientProviderError, ProviderUnavailableError) as error:
                last = error
                continue
            except BudgetExhausted:
                raise last from None
            parse_response(item.task, text)
            return provider
        raise last

    def close(self) -> None:
        self._client.close()
        if self._redis is not None:
            self._redis.close()


class TenacityRedisContender(TenacityContender):
    name = "tenacity-redis"
    shared_state = True


# ------------------------------------------------------------------------------------------ litellm


class LiteLLMContender:
    """``litellm.Router``: a model group per chain entry, fallbacks down the chain, retries, cooldowns.

    Budget: LiteLLM retries each model group ``num_retries`` times and then walks ``fallbacks``; it has
    no per-request cap across the groups, so a request may make more calls than ``max_calls``.
    """

    name = "litellm"
    shared_state = False

    def __init__(self, config: BenchConfig, threads: int) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no cost-map download at import
        import litellm
        from litellm import Router

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        self.config = config
        base = config.sim_url.rstrip("/")
        api_base = {
            "anthropic": f"{base}/anthropic",
            "openai": f"{base}/openai/v1",
            "gemini": f"{base}/gemini/v1beta",
        }
        model_list = [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"{provider_for(model)}/{model}",
                    "api_base": api_base[provider_for(model)],
                    "api_key": SIM_KEY,
                    "timeout": config.request_timeout_s,
                    "max_retries": 0,  # the SDK's own retries off: the Router owns them
                },
            }
            for model in config.chain
        ]
        shared: dict[str, Any] = {}
        if self.shared_state:
            from urllib.parse import urlsplit

            url = urlsplit(config.redis_url)
            shared = {
                "redis_host": url.hostname,
                "redis_port": url.port or 6379,
                "cache_kwargs": {"namespace": config.redis_prefix},
            }
        self.router = Router(
            model_list=model_list,
            fallbacks=[{config.chain[0]: list(config.chain[1:])}],
            num_retries=config.tries_per_model - 1,
            allowed_fails=config.failure_threshold - 1,
            cooldown_time=config.cooldown_s,
            timeout=config.request_timeout_s,
            **shared,
        )

    def serve(self, item: BenchRequest) -> str:
        request = item.request
        messages = [{"role": "system", "content": request.system}, {"role": "user", "content": request.prompt}]
        response: Any = self.router.completion(
            model=self.config.chain[0], messages=messages, max_tokens=request.max_tokens, temperature=0.0
        )
        text = response.choices[0].message.content or ""
        parse_response(item.task, text)
        model = str(getattr(response, "model", "") or "")
        hidden = getattr(response, "_hidden_params", {}) or {}
        provider = hidden.get("custom_llm_provider") or (provider_for(model) if model else "")
        return str(provider)

    def close(self) -> None:
        pass


class LiteLLMRedisContender(LiteLLMContender):
    name = "litellm-redis"
    shared_state = True


BUILDERS: dict[str, Callable[[BenchConfig, int], Contender]] = {
    "oracle": OracleContender,
    "ours": OursContender,
    "naive": NaiveContender,
    "tenacity": TenacityContender,
    "litellm": LiteLLMContender,
    # ours without hedging (on request, for comparison: ``--contenders ours,ours-nohedge``)
    "ours-nohedge": lambda config, threads: OursContender(dataclasses.replace(config, hedging=False), threads),
    "tenacity-redis": TenacityRedisContender,
    "litellm-redis": LiteLLMRedisContender,
}
SHARED_STATE_CONTENDERS = ("tenacity-redis", "litellm-redis")


def classify_failure(error: BaseException) -> str:
    """A short label for why a request failed (for the results file)."""
    if isinstance(error, ProviderError):
        return f"{error.error_class}:{error.error_code or type(error).__name__}"
    return type(error).__name__
