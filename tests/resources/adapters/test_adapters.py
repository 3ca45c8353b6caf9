"""Adapters through real HTTP on loopback against the simulator: every provider x every fault kind."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from resources.adapters.anthropic import AnthropicAdapter
from resources.adapters.gemini import GeminiAdapter
from resources.adapters.http_adapter import HttpProviderAdapter
from resources.adapters.openai import OpenAIAdapter
from resources.providers import prompts
from resources.resilience.errors import (
    PermanentProviderError,
    ProviderError,
    ProviderUnavailableError,
    TransientProviderError,
)
from resources.simulator import ProviderSimulator, SimRequest, SimResponse
from resources.simulator.server import PROVIDER_ROUTES

SENTINEL_KEY = (
    "SENTINEL-key-9f8e7d6c5b4a3210"  # deliberately not sk-/AIza-shaped: our own scrubbing must catch it
)
MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4o-mini", "gemini": "gemini-2.5-flash"}
REQUEST_ID = {
    "anthropic": re.compile(r"^req_011C[A-Za-z0-9]{20}$"),
    "openai": re.compile(r"^req_[0-9a-f]{32}$"),
}
CLIENT_TIMEOUT = 0.3


def make_adapter(provider: str, base_url: str, api_key: str = SENTINEL_KEY) -> HttpProviderAdapter:
    factories: dict[str, Callable[..., HttpProviderAdapter]] = {
        "anthropic": AnthropicAdapter,
        "openai": OpenAIAdapter,
        "gemini": GeminiAdapter,
    }
    return factories[provider](api_key, base_url=base_url)


def provider_url(sim: ProviderSimulator, provider: str) -> str:
    return {"anthropic": sim.anthropic_url, "openai": sim.openai_url, "gemini": sim.gemini_url}[provider]


@pytest.fixture(params=["anthropic", "openai", "gemini"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def adapter(simulator: ProviderSimulator, provider: str) -> Iterator[HttpProviderAdapter]:
    with make_adapter(provider, provider_url(simulator, provider)) as built:
        yield built


def insights_request() -> Any:
    return prompts.build_request(
        "project_insights", {"title": "Big Fish", "characters": ["EDWARD", "WILL"], "excerpt": "a witch"}
    )


def test_success_returns_text_the_task_schema_accepts(
    simulator: ProviderSimulator, adapter: HttpProviderAdapter, provider: str
) -> None:
    completion = adapter.complete(MODELS[provider], insights_request(), timeout=5)
    result = prompts.parse_response("project_insights", completion.text)
    assert result.model_dump() == {  # the offline engine's answer, carried over the wire intact
        "genre": "fantasy",
        "tone": "whimsical",
        "logline": "In Big Fish, Edward, with Will, is pulled into a whimsical fantasy story.",
    }
    assert completion.provider == provider and completion.model == MODELS[provider]
    assert completion.input_tokens > 0 and completion.output_tokens > 0
    assert completion.request_id
    if provider in REQUEST_ID:
        assert REQUEST_ID[provider].match(completion.request_id)
    assert simulator.stats()["by_provider"][provider] == {"total": 1, "ok": 1}


# provider -> kind -> (error class, error_code, status, retry_after) with the rule's retry_after=3
EXPECTED: dict[str, dict[str, tuple[type[ProviderError], str, int | None, float | None]]] = {
    "anthropic": {
        "overloaded": (TransientProviderError, "overloaded_error", 529, 3.0),
        "rate_limit": (TransientProviderError, "rate_limit_error", 429, 3.0),
        "server_error": (TransientProviderError, "api_error", 500, 3.0),
        "auth": (ProviderUnavailableError, "authentication_error", 401, None),
        "bad_request": (PermanentProviderError, "invalid_request_error", 400, None),
        "safety": (PermanentProviderError, "safety_refusal", 200, None),
        "malformed_json": (TransientProviderError, "malformed_response", 200, None),
        "timeout": (TransientProviderError, "timeout", None, None),
        "reset": (TransientProviderError, "connection_reset", None, None),
    },
    "openai": {
        "overloaded": (TransientProviderError, "server_error", 503, 3.0),
        "rate_limit": (TransientProviderError, "rate_limit_exceeded", 429, 3.0),
        "server_error": (TransientProviderError, "server_error", 500, 3.0),
        "auth": (ProviderUnavailableError, "invalid_api_key", 401, None),
        "bad_request": (PermanentProviderError, "invalid_request_error", 400, None),
        "safety": (PermanentProviderError, "safety_refusal", 200, None),
        "malformed_json": (TransientProviderError, "malformed_response", 200, None),
        "timeout": (TransientProviderError, "timeout", None, None),
        "reset": (TransientProviderError, "connection_reset", None, None),
    },
    "gemini": {
        "overloaded": (TransientProviderError, "UNAVAILABLE", 503, None),
        "rate_limit": (TransientProviderError, "RESOURCE_EXHAUSTED", 429, 3.0),  # retry hint from RetryInfo
        "server_error": (TransientProviderError, "INTERNAL", 500, None),
        "auth": (ProviderUnavailableError, "API_KEY_INVALID", 400, None),
        "bad_request": (PermanentProviderError, "INVALID_ARGUMENT", 400, None),
        "safety": (PermanentProviderError, "safety_refusal", 200, None),
        "malformed_json": (TransientProviderError, "malformed_response", 200, None),
        "timeout": (TransientProviderError, "timeout", None, None),
        "reset": (TransientProviderError, "connection_reset", None, None),
    },
}
CASES = [
    pytest.param(provider, kind, id=f"{provider}-{kind}")
    for provider, kinds in EXPECTED.items()
    for kind in kinds
]


@pytest.mark.parametrize(("provider", "kind"), CASES)
def test_fault_maps_to_the_taxonomy(simulator: ProviderSimulator, provider: str, kind: str) -> None:
    simulator.set_profile(f"fault:kind={kind},provider={provider},retry_after=3,hold=30")
    error_class, error_code, status, retry_after = EXPECTED[provider][kind]
    adapter = make_adapter(provider, provider_url(simulator, provider))
    with adapter, pytest.raises(ProviderError) as caught:
        adapter.complete(MODELS[provider], insights_request(), timeout=CLIENT_TIMEOUT)
    error = caught.value
    assert type(error) is error_class, str(error)
    assert (error.provider, error.model) == (provider, MODELS[provider])
    assert error.error_code == error_code
    assert error.status == status
    assert error.retry_after == retry_after
    if status is None:  # below HTTP: nothing identifies the request
        assert error.request_id is None
    elif provider in REQUEST_ID:
        assert error.request_id and REQUEST_ID[provider].match(error.request_id)
    elif kind == "safety":  # Gemini has no request-id header; a 200 body carries responseId
        assert error.request_id
    else:
        assert error.request_id is None
    assert simulator.stats()["by_provider"][provider][kind] == 1


def test_gemini_safety_covers_both_block_shapes(simulator: ProviderSimulator) -> None:
    simulator.set_profile("fault:kind=safety,provider=gemini")
    messages = []
    with make_adapter("gemini", simulator.gemini_url) as adapter:
        for _ in range(2):
            with pytest.raises(PermanentProviderError) as caught:
                adapter.complete(MODELS["gemini"], insights_request(), timeout=5)
            messages.append(caught.value.message)
    assert any("blockReason=SAFETY" in m for m in messages)
    assert any("finishReason=SAFETY" in m for m in messages)


def test_invalid_output_arrives_as_text_that_fails_the_schema(
    simulator: ProviderSimulator, adapter: HttpProviderAdapter, provider: str
) -> None:
    simulator.set_profile("invalid-output:provider=*")
    completion = adapter.complete(MODELS[provider], insights_request(), timeout=5)
    with pytest.raises(ValueError):
        prompts.parse_response("project_insights", completion.text)


def test_connection_refused_is_transient_connection_error(provider: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        make_adapter(provider, f"http://127.0.0.1:{port}") as adapter,
        pytest.raises(TransientProviderError) as caught,
    ):
        adapter.complete(MODELS[provider], insights_request(), timeout=CLIENT_TIMEOUT)
    assert caught.value.error_code == "connection_error"


def test_one_request_per_call_even_for_retryable_failures(
    simulator: ProviderSimulator, provider: str
) -> None:
    simulator.set_profile(f"fault:kind=reset,provider={provider}")
    with (
        make_adapter(provider, provider_url(simulator, provider)) as adapter,
        pytest.raises(TransientProviderError),
    ):
        adapter.complete(MODELS[provider], insights_request(), timeout=CLIENT_TIMEOUT)
    assert simulator.stats()["total"] == 1


# ---------------------------------------------------------------- what goes over the wire


def capture_route(sim: ProviderSimulator, provider: str) -> list[SimRequest]:
    """Mount the provider's route again under /capture, recording each request before answering it."""
    seen: list[SimRequest] = []
    method, pattern = PROVIDER_ROUTES[provider]

    def record_then_answer(request: SimRequest) -> SimResponse:
        seen.append(request)
        return sim.handle(replace(request, path=request.path.removeprefix("/capture")))

    sim.add_route(method, "/capture" + pattern, record_then_answer)
    return seen


def test_anthropic_wire_request(simulator: ProviderSimulator) -> None:
    seen = capture_route(simulator, "anthropic")
    request = insights_request()
    with AnthropicAdapter(SENTINEL_KEY, base_url=f"{simulator.base_url}/capture/anthropic") as adapter:
        adapter.complete("claude-sonnet-4-5", request, timeout=5)
    (sent,) = seen
    assert sent.path == "/capture/anthropic/v1/messages"
    assert sent.header("x-api-key") == SENTINEL_KEY and sent.header("anthropic-version") == "2023-06-01"
    assert json.loads(sent.body) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": request.max_tokens,
        "system": request.system,
        "messages": [{"role": "user", "content": request.prompt}],
        "temperature": 0.0,
    }


def test_openai_wire_request(simulator: ProviderSimulator) -> None:
    seen = capture_route(simulator, "openai")
    request = insights_request()
    with OpenAIAdapter(SENTINEL_KEY, base_url=f"{simulator.base_url}/capture/openai/v1") as adapter:
        adapter.complete("gpt-4o-mini", request, timeout=5)
        adapter.complete("gpt-4o-mini", request.model_copy(update={"json_output": False}), timeout=5)
    json_call, text_call = seen
    assert json_call.header("authorization") == f"Bearer {SENTINEL_KEY}"
    body = json.loads(json_call.body)
    assert body["messages"] == [
        {"role": "system", "content": request.system},
        {"role": "user", "content": request.prompt},
    ]
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_completion_tokens"] == request.max_tokens
    assert "response_format" not in json.loads(text_call.body)


def test_gemini_wire_request_keeps_the_key_out_of_the_url(simulator: ProviderSimulator) -> None:
    seen = capture_route(simulator, "gemini")
    request = insights_request()
    with GeminiAdapter(SENTINEL_KEY, base_url=f"{simulator.base_url}/capture/gemini") as adapter:
        adapter.complete("gemini-2.5-flash", request, timeout=5)
        adapter.complete("models/gemini-2.5-flash", request, timeout=5)
    sent, prefixed = seen
    assert sent.path == prefixed.path == "/capture/gemini/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.header("x-goog-api-key") == SENTINEL_KEY and not sent.query
    body = json.loads(sent.body)
    assert body["contents"] == [{"role": "user", "parts": [{"text": request.prompt}]}]
    assert body["systemInstruction"] == {"parts": [{"text": request.system}]}
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert body["generationConfig"]["maxOutputTokens"] == request.max_tokens


# ---------------------------------------------------------------- secrets


def _everything_printable(error: ProviderError) -> str:
    return " ".join([str(error), repr(error), json.dumps(error.as_dict()), repr(error.args), error.message])


@pytest.mark.parametrize("kind", sorted(EXPECTED["anthropic"]))
def test_api_key_never_appears_in_errors_or_reprs(
    simulator: ProviderSimulator, provider: str, kind: str
) -> None:
    simulator.set_profile(f"fault:kind={kind},provider={provider},hold=30")
    with make_adapter(provider, provider_url(simulator, provider)) as adapter:
        assert SENTINEL_KEY not in repr(adapter) and SENTINEL_KEY not in str(adapter)
        with pytest.raises(ProviderError) as caught:
            adapter.complete(MODELS[provider], insights_request(), timeout=CLIENT_TIMEOUT)
    assert SENTINEL_KEY not in _everything_printable(caught.value)


def test_api_key_echoed_by_the_server_is_scrubbed(simulator: ProviderSimulator, provider: str) -> None:
    """Providers echo keys in auth errors; a proxy might echo all of it. The adapter must scrub it."""
    method, pattern = PROVIDER_ROUTES[provider]
    wire = simulator.wire(provider)

    def echo_key(request: SimRequest) -> SimResponse:
        key = (
            request.header("x-api-key") or request.header("x-goog-api-key") or request.header("authorization")
        )
        response = wire.error("auth", "m", wire.new_request_id(), None)
        response.body = response.body.replace(b"API key", f"API key {key}".encode()).replace(
            b"x-api-key", f"x-api-key {key}".encode()
        )
        return response

    simulator.add_route(method, "/echo" + pattern, echo_key)
    base = provider_url(simulator, provider).replace(simulator.base_url, simulator.base_url + "/echo")
    with make_adapter(provider, base) as adapter, pytest.raises(ProviderUnavailableError) as caught:
        adapter.complete(MODELS[provider], insights_request(), timeout=5)
    assert SENTINEL_KEY not in _everything_printable(caught.value)


def test_adapters_refuse_an_empty_key() -> None:
    with pytest.raises(ValueError, match="API key"):
        AnthropicAdapter("")
