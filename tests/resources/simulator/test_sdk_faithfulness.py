"""The official SDKs, pointed at the simulator, must see what they see from the real services."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from resources.providers import prompts
from resources.providers.base import CompletionRequest
from resources.providers.limits import CHARS_PER_TOKEN, limits_for
from resources.simulator import ProviderSimulator

TIMEOUT = 0.3


def claude(sim: ProviderSimulator, timeout: float = TIMEOUT) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-ant-test", base_url=sim.anthropic_url, max_retries=0, timeout=timeout
    )


def gpt(sim: ProviderSimulator, timeout: float = TIMEOUT) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=sim.openai_url, max_retries=0, timeout=timeout)


def insights_request() -> CompletionRequest:
    return prompts.build_request("project_insights", {"title": "Big Fish", "characters": ["EDWARD"]})


def ask_claude(sim: ProviderSimulator) -> anthropic.types.Message:
    req = insights_request()
    return claude(sim).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=1024,
        system=req.system,
        messages=[{"role": "user", "content": req.prompt}],
    )


def ask_gpt(sim: ProviderSimulator) -> openai.types.chat.ChatCompletion:
    req = insights_request()
    return gpt(sim).chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": req.system},
            {"role": "user", "content": req.prompt},
        ],
        response_format={"type": "json_object"},
    )


# ---------------------------------------------------------------- Anthropic SDK


def test_anthropic_sdk_parses_a_message(simulator: ProviderSimulator) -> None:
    message = ask_claude(simulator)
    assert message.type == "message" and message.role == "assistant" and message.stop_reason == "end_turn"
    (block,) = message.content
    assert block.type == "text"
    assert prompts.parse_response("project_insights", block.text).genre  # type: ignore[attr-defined]
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message._request_id and message._request_id.startswith("req_")


def test_anthropic_sdk_overloaded_is_529_overloaded_error(simulator: ProviderSimulator) -> None:
    simulator.set_profile("primary-down")
    with pytest.raises(anthropic.InternalServerError) as caught:
        ask_claude(simulator)
    error = caught.value
    assert isinstance(error, anthropic.OverloadedError) and isinstance(error, anthropic.APIStatusError)
    assert error.status_code == 529
    assert error.type == "overloaded_error"
    assert error.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": error.request_id,
    }
    assert error.response.headers["x-should-retry"] == "true"


def test_anthropic_sdk_rate_limit_carries_retry_after(simulator: ProviderSimulator) -> None:
    simulator.set_profile("rate-limit:retry_after=7")
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask_claude(simulator)
    assert caught.value.status_code == 429 and caught.value.type == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.request_id


@pytest.mark.parametrize(
    ("profile", "error_class", "status", "error_type"),
    [
        ("server-errors", anthropic.InternalServerError, 500, "api_error"),
        ("auth", anthropic.AuthenticationError, 401, "authentication_error"),
        ("bad-request", anthropic.BadRequestError, 400, "invalid_request_error"),
    ],
)
def test_anthropic_sdk_error_classes(
    simulator: ProviderSimulator,
    profile: str,
    error_class: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
) -> None:
    simulator.set_profile(profile)
    with pytest.raises(error_class) as caught:
        ask_claude(simulator)
    assert caught.value.status_code == status and caught.value.type == error_type


def test_anthropic_sdk_sees_refusal_as_a_stop_reason(simulator: ProviderSimulator) -> None:
    simulator.set_profile("safety:rate=1")
    message = ask_claude(simulator)
    assert message.stop_reason == "refusal" and message.content == []


def test_anthropic_sdk_transport_faults(simulator: ProviderSimulator) -> None:
    simulator.set_profile("resets")
    with pytest.raises(anthropic.APIConnectionError) as reset:
        ask_claude(simulator)
    assert not isinstance(reset.value, anthropic.APITimeoutError)
    simulator.set_profile("timeouts")
    with pytest.raises(anthropic.APITimeoutError):
        ask_claude(simulator)


def test_anthropic_sdk_truncated_body_fails_to_decode(simulator: ProviderSimulator) -> None:
    simulator.set_profile("malformed")
    with pytest.raises(json.JSONDecodeError):
        ask_claude(simulator)


def test_anthropic_sdk_missing_required_field_is_rejected_like_the_api(simulator: ProviderSimulator) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(simulator).post("/v1/messages", body={"model": "m", "messages": []}, cast_to=object)
    assert caught.value.type == "invalid_request_error" and "max_tokens" in str(caught.value.api_message)
    assert simulator.stats()["by_outcome"] == {"rejected": 1}


# ---------------------------------------------------------------- OpenAI SDK


def test_openai_sdk_parses_a_chat_completion(simulator: ProviderSimulator) -> None:
    completion = ask_gpt(simulator)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.refusal is None
    assert prompts.parse_response("project_insights", choice.message.content or "").genre  # type: ignore[attr-defined]
    assert completion.usage and completion.usage.total_tokens > 0
    assert completion._request_id and completion._request_id.startswith("req_")


def test_openai_sdk_rate_limit_error(simulator: ProviderSimulator) -> None:
    simulator.set_profile("rate-limit:provider=openai,retry_after=4")
    with pytest.raises(openai.RateLimitError) as caught:
        ask_gpt(simulator)
    assert caught.value.status_code == 429 and caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "4"
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("profile", "error_class", "status", "code"),
    [
        ("primary-down:provider=openai", openai.InternalServerError, 503, None),
        ("server-errors:provider=openai", openai.InternalServerError, 500, None),
        ("auth:provider=openai", openai.AuthenticationError, 401, "invalid_api_key"),
        ("bad-request:provider=openai", openai.BadRequestError, 400, "integer_above_max_value"),
    ],
)
def test_openai_sdk_error_classes(
    simulator: ProviderSimulator,
    profile: str,
    error_class: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    simulator.set_profile(profile)
    with pytest.raises(error_class) as caught:
        ask_gpt(simulator)
    assert caught.value.status_code == status and caught.value.code == code


def test_openai_sdk_content_filter(simulator: ProviderSimulator) -> None:
    simulator.set_profile("safety:rate=1,provider=openai")
    choice = ask_gpt(simulator).choices[0]
    assert (
        choice.finish_reason == "content_filter" and choice.message.refusal and choice.message.content is None
    )


def test_openai_sdk_transport_faults(simulator: ProviderSimulator) -> None:
    simulator.set_profile("resets:provider=openai")
    with pytest.raises(openai.APIConnectionError):
        ask_gpt(simulator)
    simulator.set_profile("timeouts:provider=openai")
    with pytest.raises(openai.APITimeoutError):
        ask_gpt(simulator)


# ---------------------------------------------------------------- model limits (resources/providers/limits.py)

HAIKU = "claude-haiku-4-5-20251001"  # 200,000-token context window, 64,000 output tokens
BIG_BODY_TIMEOUT = 30.0  # a context window's worth of prompt is ~1 MB to send and read on a shared machine


def long_prompt(tokens: int) -> str:
    return "x" * (tokens * CHARS_PER_TOKEN)


def test_anthropic_sdk_reads_an_answer_cut_at_max_tokens(simulator: ProviderSimulator) -> None:
    req = insights_request()
    message = claude(simulator).messages.create(
        model=HAIKU, max_tokens=8, system=req.system, messages=[{"role": "user", "content": req.prompt}]
    )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 8
    (block,) = message.content
    assert block.type == "text" and len(block.text) == 8 * CHARS_PER_TOKEN


def test_anthropic_sdk_prompt_above_the_context_window_is_a_bad_request(simulator: ProviderSimulator) -> None:
    window = limits_for("anthropic", HAIKU).context_window
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(simulator, BIG_BODY_TIMEOUT).messages.create(
            model=HAIKU, max_tokens=16, messages=[{"role": "user", "content": long_prompt(window + 10)}]
        )
    assert caught.value.type == "invalid_request_error"
    assert f"prompt is too long: {window + 10} tokens > {window} maximum" in str(caught.value.message)
    assert simulator.stats()["by_outcome"] == {"beyond_limits": 1}


def test_anthropic_sdk_max_tokens_above_the_model_limit_is_a_bad_request(simulator: ProviderSimulator) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(simulator).messages.create(model=HAIKU, max_tokens=64_001, messages=[{"role": "user", "content": "hi"}])
    assert "max_tokens: 64001 > 64000" in str(caught.value.message)


def test_openai_sdk_reads_an_answer_cut_at_the_ceiling(simulator: ProviderSimulator) -> None:
    req = insights_request()
    completion = gpt(simulator).chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "system", "content": req.system}, {"role": "user", "content": req.prompt}],
        max_completion_tokens=8,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage and completion.usage.completion_tokens == 8


def test_openai_sdk_context_length_exceeded(simulator: ProviderSimulator) -> None:
    window = limits_for("openai", "gpt-4o-mini").context_window
    with pytest.raises(openai.BadRequestError) as caught:
        gpt(simulator, BIG_BODY_TIMEOUT).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": long_prompt(window + 1)}]
        )
    assert caught.value.code == "context_length_exceeded" and caught.value.param == "messages"
    assert f"maximum context length is {window} tokens" in caught.value.message


def test_openai_sdk_ceiling_above_the_model_limit_is_a_bad_request(simulator: ProviderSimulator) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gpt(simulator).chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=32_769
        )
    assert caught.value.param == "max_completion_tokens" and "at most 32768 completion tokens" in caught.value.message


def test_openai_sdk_gpt5_rejects_a_non_default_temperature_and_legacy_max_tokens(
    simulator: ProviderSimulator,
) -> None:
    client = gpt(simulator)
    hi: list[Any] = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as temperature:
        client.chat.completions.create(model="gpt-5.2", messages=hi, temperature=0.0)
    assert (temperature.value.code, temperature.value.param) == ("unsupported_value", "temperature")
    assert "Only the default (1) value is supported" in temperature.value.message
    with pytest.raises(openai.BadRequestError) as legacy:
        client.chat.completions.create(model="gpt-5.2", messages=hi, max_tokens=100)
    assert (legacy.value.code, legacy.value.param) == ("unsupported_parameter", "max_tokens")
    # the default temperature and max_completion_tokens are what the model takes
    ok = client.chat.completions.create(model="gpt-5.2", messages=hi, temperature=1, max_completion_tokens=100)
    assert ok.choices[0].finish_reason in ("stop", "length")
    # a model that takes temperature still does
    assert client.chat.completions.create(model="gpt-4.1", messages=hi, temperature=0.0, max_tokens=100).choices


# ---------------------------------------------------------------- answers added for the second provider-edge pass


def test_anthropic_sdk_reads_a_thinking_block_before_the_text(simulator: ProviderSimulator) -> None:
    simulator.set_profile("reasoning:provider=anthropic")
    message = ask_claude(simulator)
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].signature  # type: ignore[union-attr]


def test_anthropic_sdk_reads_the_context_window_stop_reason(simulator: ProviderSimulator) -> None:
    simulator.set_profile("window-exhausted")
    assert ask_claude(simulator).stop_reason == "model_context_window_exceeded"


def test_openai_sdk_reads_reasoning_tokens_in_the_usage(simulator: ProviderSimulator) -> None:
    simulator.set_profile("reasoning:provider=openai")
    usage = ask_gpt(simulator).usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 512
    assert usage.completion_tokens > usage.completion_tokens_details.reasoning_tokens


@pytest.mark.parametrize("profile", ["request-over-tpm", "token-rate-limit"])
def test_openai_sdk_reads_the_tokens_per_minute_429s_as_rate_limit_errors(
    simulator: ProviderSimulator, profile: str
) -> None:
    simulator.set_profile(profile)
    with pytest.raises(openai.RateLimitError) as caught:
        ask_gpt(simulator)
    assert caught.value.code == "rate_limit_exceeded" and caught.value.type == "tokens"
    assert "retry-after" not in caught.value.response.headers


@pytest.mark.parametrize(
    ("provider", "error"), [("anthropic", anthropic.NotFoundError), ("openai", openai.NotFoundError)]
)
def test_sdks_read_a_retired_model_as_not_found(
    simulator: ProviderSimulator, provider: str, error: type[Exception]
) -> None:
    simulator.set_profile(f"model-not-found:provider={provider}")
    with pytest.raises(error):
        ask_claude(simulator) if provider == "anthropic" else ask_gpt(simulator)


def test_sdks_read_a_cdn_error_page_as_a_server_error(simulator: ProviderSimulator) -> None:
    simulator.set_profile("proxy-html")
    with pytest.raises(anthropic.InternalServerError):
        ask_claude(simulator)
    with pytest.raises(openai.InternalServerError):
        ask_gpt(simulator)
