"""The official SDKs, pointed at the simulator, must see what they see from the real services."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from resources.providers import prompts
from resources.providers.base import CompletionRequest
from resources.simulator import ProviderSimulator

TIMEOUT = 0.3


def claude(sim: ProviderSimulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-ant-test", base_url=sim.anthropic_url, max_retries=0, timeout=TIMEOUT
    )


def gpt(sim: ProviderSimulator) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=sim.openai_url, max_retries=0, timeout=TIMEOUT)


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
