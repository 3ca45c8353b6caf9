"""Issue 20 follow-ups over real loopback HTTP against the simulator: a prompt too big for one model's context
window moves on to a model whose window fits (item 1), and a call's timeout grows with its output ceiling so
a long answer is not killed by the timeout meant for a hung call (item 4)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from resources.providers import prompts
from resources.providers.base import CompletionRequest
from resources.providers.limits import CHARS_PER_TOKEN, limits_for
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import MemoryBreakerStore
from resources.resilience.chain import StagePolicy
from resources.resilience.errors import ContextWindowExceededError, classify_http_error
from resources.resilience.executor import CallOutcome, ResilientCaller
from resources.simulator import ProviderSimulator, wire
from tests.resources.test_provider_limits import adapters, insights_request, many_scenes_request, simulator_calls


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.HTTPTransport(retries=0)) as client:
        yield client


def call(
    sim: ProviderSimulator, http: httpx.Client, request: CompletionRequest, chain: list[str], **policy: Any
) -> CallOutcome[Any]:
    breaker = CircuitBreaker(MemoryBreakerStore(), BreakerPolicy(warm_up_calls=50, failure_threshold=50))
    caller = ResilientCaller(
        adapters(sim, http), breaker, policy=StagePolicy(**policy), sleep=lambda _: None, rng=random.Random(1)
    )
    task = request.task
    return caller.call(task, request, lambda text: prompts.parse_response(task, text), chain=chain)


def padded(request: CompletionRequest, tokens: int) -> CompletionRequest:
    """``request`` with filler so its prompt is ~``tokens`` tokens by the table's estimate."""
    filler = "y" * max(0, tokens * CHARS_PER_TOKEN - len(request.system) - len(request.prompt))
    return request.model_copy(update={"prompt": request.prompt + filler})


# ---------------------------------------------------------------- item 1: context overflow is model-level

SMALL, LARGE = "gpt-4o-mini", "gpt-4.1"  # 128,000 and 1,047,576 token windows


def test_a_prompt_too_big_for_the_first_models_window_is_served_by_a_later_model_without_calling_the_first(
    simulator: ProviderSimulator, http: httpx.Client
) -> None:
    assert limits_for("openai", SMALL).context_window < 150_000 < limits_for("openai", LARGE).context_window
    request = padded(insights_request(max_tokens=1024), 150_000)
    outcome = call(simulator, http, request, [SMALL, LARGE, "offline"])
    assert (outcome.provider, outcome.model) == ("openai", LARGE)
    skipped, served = outcome.attempts
    assert (skipped.model, skipped.outcome, skipped.decision, skipped.error_code) == (
        SMALL,
        "skipped",
        "fallback_next_model",
        "context_window_too_small",
    )
    assert served.decision == "success"
    assert simulator_calls(simulator) == {LARGE: {"ok": 1}}  # the small window was never asked


def test_a_provider_refusing_the_prompt_as_too_long_moves_the_call_to_a_model_with_a_larger_window(
    simulator: ProviderSimulator, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provider's tokenizer counts half as many characters a token as our estimate (JSON, non-English
    # text): a prompt the estimate fits in 128,000 tokens is 400 "prompt is too long" there.
    monkeypatch.setattr(wire, "estimate_tokens", lambda text: len(text) // 2)
    request = padded(insights_request(max_tokens=1024), 100_000)
    outcome = call(simulator, http, request, ["claude-haiku-4-5", "gpt-4o-mini", LARGE, "offline"])
    assert (outcome.provider, outcome.model) == ("openai", LARGE)
    refused, skipped, served = outcome.attempts
    assert (refused.model, refused.status, refused.error_class, refused.decision) == (
        "claude-haiku-4-5",
        400,
        "permanent",
        "fallback_next_model",
    )
    # gpt-4o-mini's window is smaller than the one that refused the prompt: not worth a call either
    assert (skipped.model, skipped.outcome, skipped.error_code) == (
        "gpt-4o-mini",
        "skipped",
        "context_window_too_small",
    )
    assert served.decision == "success"


def test_a_prompt_no_model_of_the_chain_can_take_is_permanent_for_the_stage_to_split_not_a_degraded_answer(
    simulator: ProviderSimulator, http: httpx.Client
) -> None:
    request = padded(insights_request(max_tokens=1024), 300_000)
    with pytest.raises(ContextWindowExceededError) as caught:
        call(simulator, http, request, ["claude-haiku-4-5", SMALL, "offline"])
    assert caught.value.error_class == "permanent"
    assert [a.error_code for a in caught.value.attempts] == ["context_window_too_small"] * 2
    assert simulator.stats()["by_outcome"] == {}  # nothing was sent, the offline engine did not answer


CONTEXT_REFUSALS: list[tuple[str, dict[str, Any]]] = [
    (
        "anthropic",
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"},
        },
    ),
    (
        "anthropic",
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "input length and `max_tokens` exceed context limit: 190000 + 20000 > 200000",
            },
        },
    ),
    (
        "openai",
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens.",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
        },
    ),
    (
        "gemini",
        {
            "error": {
                "code": 400,
                "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                "status": "INVALID_ARGUMENT",
            }
        },
    ),
]


@pytest.mark.parametrize(("provider", "body"), CONTEXT_REFUSALS)
def test_each_providers_context_refusal_is_recognised_as_model_level(provider: str, body: dict[str, Any]) -> None:
    error = classify_http_error(provider=provider, model="m", status=400, headers={}, body=body)
    assert isinstance(error, ContextWindowExceededError)


# ---------------------------------------------------------------- item 4: timeouts sized from the ceiling


def test_the_timeout_of_a_call_is_a_base_plus_its_output_ceiling_at_the_floor_rate() -> None:
    policy = StagePolicy(request_timeout_seconds=60, output_tokens_per_second_floor=25)
    assert policy.timeout_for(4096) == pytest.approx(60 + 4096 / 25)
    assert policy.timeout_for(0) == 60
    assert StagePolicy(request_timeout_seconds=60).timeout_for(4096) == 60  # no floor: the base alone
    with pytest.raises(ValueError, match="floor"):
        StagePolicy(output_tokens_per_second_floor=0)


def test_the_simulator_paces_an_answer_by_its_output_tokens(http: httpx.Client) -> None:
    waits: list[float] = []

    class RecordingWaits(ProviderSimulator):
        def wait(self, seconds: float) -> bool:  # no real sleep: the pacing asked for is what is checked
            waits.append(seconds)
            return False

    with RecordingWaits(latency_s=0.5, output_tokens_per_s=70.0, extensions=()) as sim:
        completion = adapters(sim, http)["openai"].complete(LARGE, insights_request(), timeout=5)
    assert completion.output_tokens > 10
    (waited,) = waits
    # latency plus the tokens at 70/s, less the few ms the simulator spent composing the answer
    assert 0.5 + completion.output_tokens / 70 - 0.2 < waited <= 0.5 + completion.output_tokens / 70


def test_a_long_answer_at_a_realistic_rate_is_not_cut_by_the_timeout_meant_for_a_hung_call(
    http: httpx.Client,
) -> None:
    """At 1/100 scale: a 4,096-token answer at 70 tokens/s takes ~59 s against a 60 s timeout; here an answer
    of ~2,000 tokens at 100 x 70 tokens/s takes ~0.3 s against a base timeout a third of that."""
    rate = 7000.0
    with ProviderSimulator(output_tokens_per_s=rate, extensions=()) as sim:
        request = many_scenes_request(20).model_copy(update={"max_tokens": 4096})
        probe = adapters(sim, http)["openai"].complete(LARGE, request, timeout=30)
        assert not probe.truncated
        answer_s = probe.output_tokens / rate
        assert answer_s > 0.2
        base = answer_s / 3  # a hung call's allowance: far shorter than the answer takes to write
        sim.reset()
        served = call(sim, http, request, [LARGE], request_timeout_seconds=base, output_tokens_per_second_floor=1000)
        assert served.model == LARGE and [a.decision for a in served.attempts] == ["success"]
        started = time.monotonic()
        with pytest.raises(Exception) as caught:  # the base alone kills every try of the same answer
            call(sim, http, request, [LARGE], request_timeout_seconds=base)
        assert "timeout" in str(caught.value)
        assert time.monotonic() - started < 10
