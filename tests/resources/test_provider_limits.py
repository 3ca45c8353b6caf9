"""Model limits and capabilities end to end: real adapters over loopback HTTP against the simulator, which
keeps each model's limits from the same table (issue 20 items 1, 3 and 5)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from resources.adapters.anthropic import AnthropicAdapter
from resources.adapters.gemini import GeminiAdapter
from resources.adapters.http_adapter import HttpProviderAdapter
from resources.adapters.openai import OpenAIAdapter
from resources.providers import prompts
from resources.providers.base import CompletionRequest, ProviderAdapter
from resources.providers.limits import CHARS_PER_TOKEN, limits_for
from resources.providers.offline import OfflineAdapter
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import MemoryBreakerStore
from resources.resilience.chain import StagePolicy
from resources.resilience.errors import (
    OutputTruncatedError,
    PermanentProviderError,
    UnsupportedParameterError,
    classify_http_error,
)
from resources.resilience.executor import CallOutcome, ResilientCaller
from resources.simulator import ProviderSimulator

KEY = "sim-key-not-a-secret"


def insights_request(max_tokens: int | None = None) -> CompletionRequest:
    return prompts.build_request(
        "project_insights", {"title": "Big Fish", "characters": ["EDWARD", "WILL"]}, max_tokens=max_tokens
    )


def many_scenes_request(scenes: int) -> CompletionRequest:
    """An enrich_scenes request whose whole answer (~430 characters a scene) is far above 16,384 tokens."""
    payload = {
        "title": "Big Fish",
        "scenes": [
            {
                "scene_number": n,
                "heading": f"EXT. RIVER {n} - DAY",
                "text": "Edward walks to the river and talks to Will about the witch. " * 3,
                "characters": ["EDWARD", "WILL"],
            }
            for n in range(1, scenes + 1)
        ],
    }
    return prompts.build_request("enrich_scenes", payload)


class StaleTableOpenAIAdapter(OpenAIAdapter):
    """An OpenAI adapter whose idea of the model is out of date: it sends temperature to every model."""

    def request_body(self, model: str, request: CompletionRequest) -> dict[str, Any]:
        return {**super().request_body(model, request), "temperature": request.temperature}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.HTTPTransport(retries=0)) as client:
        yield client


def adapters(
    sim: ProviderSimulator, http: httpx.Client, openai: type[OpenAIAdapter] = OpenAIAdapter
) -> dict[str, ProviderAdapter]:
    return {
        "anthropic": AnthropicAdapter(KEY, sim.anthropic_url, http),
        "openai": openai(KEY, sim.openai_url, http),
        "gemini": GeminiAdapter(KEY, sim.gemini_url, http),
        "offline": OfflineAdapter(),
    }


def caller(found: dict[str, ProviderAdapter], policy: StagePolicy | None = None) -> ResilientCaller:
    breaker = CircuitBreaker(MemoryBreakerStore(), BreakerPolicy(warm_up_calls=50, failure_threshold=50))
    return ResilientCaller(found, breaker, policy=policy or StagePolicy(), sleep=lambda _: None, rng=random.Random(1))


def call(found: dict[str, ProviderAdapter], request: CompletionRequest, chain: Sequence[str]) -> CallOutcome[Any]:
    task = request.task
    return caller(found).call(task, request, lambda text: prompts.parse_response(task, text), chain=chain)


def simulator_calls(sim: ProviderSimulator) -> dict[str, dict[str, int]]:
    return {model: counts for models in sim.stats()["by_model"].values() for model, counts in models.items()}


# ---------------------------------------------------------------- item 5: capabilities


def test_openai_adapter_sends_temperature_only_to_models_that_take_it() -> None:
    adapter = OpenAIAdapter(KEY)
    request = insights_request()
    assert "temperature" not in adapter.request_body("gpt-5.2", request)
    assert "temperature" not in adapter.request_body("o4-mini", request)
    assert adapter.request_body("gpt-4.1", request)["temperature"] == 0.0
    assert "max_tokens" not in adapter.request_body("gpt-5.2", request)


@pytest.mark.parametrize("model", ["gpt-5.2", "o4-mini"])
def test_gpt5_and_o_series_serve_the_default_request(
    simulator: ProviderSimulator, http: httpx.Client, model: str
) -> None:
    completion = OpenAIAdapter(KEY, simulator.openai_url, http).complete(model, insights_request(), timeout=5)
    assert prompts.parse_response("project_insights", completion.text)
    assert simulator.stats()["by_outcome"] == {"ok": 1}


def test_unsupported_value_is_classified_as_model_level_not_as_a_bad_request() -> None:
    body = {
        "error": {
            "message": "Unsupported value: 'temperature' does not support 0.0 with this model. "
            "Only the default (1) value is supported.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        }
    }
    error = classify_http_error(provider="openai", model="gpt-5.2", status=400, headers={}, body=json.dumps(body))
    assert isinstance(error, UnsupportedParameterError) and error.error_code == "unsupported_value"
    context = {"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}
    still_permanent = classify_http_error(provider="openai", model="m", status=400, headers={}, body=context)
    assert isinstance(still_permanent, PermanentProviderError)


def test_a_model_that_rejects_a_parameter_is_skipped_for_the_next_model_of_the_same_provider(
    simulator: ProviderSimulator, http: httpx.Client
) -> None:
    found = adapters(simulator, http, openai=StaleTableOpenAIAdapter)
    outcome = call(found, insights_request(), ["gpt-5.2", "gpt-4.1", "offline"])
    assert (outcome.provider, outcome.model) == ("openai", "gpt-4.1")
    first, second = outcome.attempts
    assert (first.error_code, first.error_class, first.decision) == (
        "unsupported_value",
        "provider_unavailable",
        "fallback_next_model",
    )
    assert second.decision == "success"
    assert simulator_calls(simulator)["gpt-5.2"] == {"beyond_limits": 1}


# ---------------------------------------------------------------- item 3: truncation


@pytest.mark.parametrize(
    ("provider", "model"),
    [("anthropic", "claude-sonnet-4-6"), ("openai", "gpt-4.1"), ("gemini", "gemini-3-flash-preview")],
)
def test_adapters_recognise_each_providers_truncation_signal(
    simulator: ProviderSimulator, http: httpx.Client, provider: str, model: str
) -> None:
    completion = adapters(simulator, http)[provider].complete(model, insights_request(max_tokens=8), timeout=5)
    assert completion.truncated
    assert (completion.max_tokens, completion.output_tokens) == (8, 8)
    assert len(completion.text) == 8 * CHARS_PER_TOKEN
    whole = adapters(simulator, http)[provider].complete(model, insights_request(), timeout=5)
    assert not whole.truncated and whole.output_tokens < whole.max_tokens  # type: ignore[operator]


def test_adapters_cap_the_ceiling_at_the_models_limit(simulator: ProviderSimulator, http: httpx.Client) -> None:
    found = adapters(simulator, http)
    for provider, model in (("anthropic", "claude-haiku-4-5-20251001"), ("openai", "gpt-4.1")):
        adapter = found[provider]
        assert isinstance(adapter, HttpProviderAdapter)
        completion = adapter.complete(model, insights_request(max_tokens=10_000_000), timeout=5)
        assert completion.max_tokens == limits_for(provider, model).max_output_tokens
    assert "beyond_limits" not in simulator.stats()["by_outcome"]


def test_a_truncated_answer_is_resent_once_with_the_ceiling_raised_to_the_models_limit(
    simulator: ProviderSimulator, http: httpx.Client
) -> None:
    outcome = call(adapters(simulator, http), insights_request(max_tokens=8), ["gpt-4.1", "offline"])
    assert (outcome.provider, outcome.model) == ("openai", "gpt-4.1")
    cut, served = outcome.attempts
    assert cut.truncated and cut.error_code == "output_truncated" and cut.decision == "retry_same_model"
    assert (cut.max_tokens, cut.output_tokens) == (8, 8)
    assert served.decision == "success" and not served.truncated
    assert served.max_tokens == limits_for("openai", "gpt-4.1").max_output_tokens
    assert simulator_calls(simulator) == {"gpt-4.1": {"ok": 2}}


def test_an_answer_that_does_not_fit_the_models_limit_raises_output_truncated_for_the_stage_to_split(
    simulator: ProviderSimulator, http: httpx.Client
) -> None:
    request = many_scenes_request(300)
    limit = limits_for("openai", "gpt-4o-mini").max_output_tokens  # 16,384: the answer needs ~32,000
    with pytest.raises(OutputTruncatedError) as caught:
        call(adapters(simulator, http), request, ["gpt-4o-mini", "gemini-3-flash-preview", "offline"])
    error = caught.value
    assert (error.provider, error.model, error.max_tokens, error.output_tokens) == (
        "openai",
        "gpt-4o-mini",
        limit,
        limit,
    )
    ceilings = [a.max_tokens for a in error.attempts]
    assert ceilings == [request.max_tokens, limit]  # never the same ceiling twice
    assert [a.decision for a in error.attempts] == ["retry_same_model", "stop"]
    assert all(a.truncated for a in error.attempts)
    # the smaller-or-equal fallback and the offline engine are not asked: the stage splits instead
    assert simulator_calls(simulator) == {"gpt-4o-mini": {"ok": 2}}


def test_no_room_to_raise_within_the_context_window_means_split_at_once(
    simulator: ProviderSimulator, http: httpx.Client
) -> None:
    request = insights_request(max_tokens=8)
    window = limits_for("openai", "gpt-4o-mini").context_window
    filler = "y" * ((window - 8) * CHARS_PER_TOKEN - len(request.system) - len(request.prompt))
    request = request.model_copy(update={"prompt": request.prompt + filler})
    with pytest.raises(OutputTruncatedError) as caught:
        call(adapters(simulator, http), request, ["gpt-4o-mini", "offline"])
    assert [a.decision for a in caught.value.attempts] == ["stop"]
