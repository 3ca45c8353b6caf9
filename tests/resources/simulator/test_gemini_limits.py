"""Gemini's answers at a model's limits (no official SDK among the dev dependencies: raw HTTP and our adapter)."""

from __future__ import annotations

import httpx
import pytest

from resources.adapters.gemini import GeminiAdapter
from resources.providers import prompts
from resources.providers.limits import CHARS_PER_TOKEN, limits_for
from resources.resilience.errors import PermanentProviderError
from resources.simulator import ProviderSimulator

MODEL = "gemini-3-flash-preview"
HEADERS = {"x-goog-api-key": "k"}


def generate(sim: ProviderSimulator, body: dict[str, object]) -> httpx.Response:
    url = f"{sim.gemini_url}/v1beta/models/{MODEL}:generateContent"
    return httpx.post(url, json=body, headers=HEADERS, timeout=30)


def hi(**generation_config: object) -> dict[str, object]:
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": generation_config}


def test_an_answer_longer_than_max_output_tokens_stops_with_max_tokens(simulator: ProviderSimulator) -> None:
    body = generate(simulator, hi(maxOutputTokens=3)).json()
    (candidate,) = body["candidates"]
    assert candidate["finishReason"] == "MAX_TOKENS"
    assert len(candidate["content"]["parts"][0]["text"]) == 3 * CHARS_PER_TOKEN
    assert body["usageMetadata"]["candidatesTokenCount"] == 3


def test_max_output_tokens_above_the_models_limit_is_invalid_argument(simulator: ProviderSimulator) -> None:
    limit = limits_for("gemini", MODEL).max_output_tokens
    response = generate(simulator, hi(maxOutputTokens=limit + 1))
    error = response.json()["error"]
    assert response.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert f"to {limit + 1} (exclusive)" in error["message"]
    assert generate(simulator, hi(maxOutputTokens=limit)).status_code == 200


def test_a_prompt_above_the_input_limit_is_invalid_argument_and_permanent(simulator: ProviderSimulator) -> None:
    window = limits_for("gemini", MODEL).context_window
    request = prompts.build_request("normalize", {"text": "x" * ((window + 1) * CHARS_PER_TOKEN)})
    with (
        GeminiAdapter("sim-gemini-key", simulator.gemini_url) as adapter,
        pytest.raises(PermanentProviderError) as caught,
    ):
        adapter.complete(MODEL, request, timeout=60)
    assert caught.value.status == 400 and caught.value.error_code == "INVALID_ARGUMENT"
    assert "exceeds the maximum number of tokens allowed" in caught.value.message
    assert simulator.stats()["by_outcome"] == {"beyond_limits": 1}
