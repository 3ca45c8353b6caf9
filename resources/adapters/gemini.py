"""Gemini API adapter (``POST /v1beta/models/{model}:generateContent``).

Wire format: ``x-goog-api-key`` header (never the ``?key=`` query parameter, which would put the key
in URLs and therefore in logs); body ``{contents, systemInstruction, generationConfig}``; the answer is
the text parts of ``candidates[0].content``. Safety: ``promptFeedback.blockReason`` (prompt blocked,
no candidates) or a candidate ``finishReason`` of ``SAFETY``/``PROHIBITED_CONTENT``/``BLOCKLIST``/
``SPII``/``IMAGE_SAFETY`` -> permanent ``safety_refusal``. ``finishReason: "LANGUAGE"`` (no content: the
input's language is not one the model supports) is a verdict on this model, not a garbled answer:
model-level ``UnsupportedParameterError`` (``unsupported_language``), so the next model is tried at once.

An invalid API key is 400 INVALID_ARGUMENT with ``ErrorInfo.reason = API_KEY_INVALID`` (not 401);
``classify_http_error`` reads that reason and makes it provider-level. The retry hint of a 429 lives in
the body (``google.rpc.RetryInfo.retryDelay: "20s"``), not in a ``retry-after`` header; this adapter
copies it into ``retry_after`` when no header gave one.

Gemini sends no request-id header; ``responseId`` from a successful body is used as ``request_id``.

``finishReason: "MAX_TOKENS"`` means the answer was cut at ``maxOutputTokens`` (it may then carry no
parts at all, when thinking used the whole ceiling): the completion comes back ``truncated``. The ceiling
is capped at the model's output limit and ``temperature`` is sent only to a model that accepts it
(``resources.providers.limits``).

Usage: ``candidatesTokenCount`` counts the answer only; a thinking model's thoughts are in
``thoughtsTokenCount``, count towards ``maxOutputTokens`` and are billed at the output price, so
``output_tokens`` is the sum of the two.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx

from resources.adapters.http_adapter import HttpProviderAdapter, as_dict
from resources.providers.base import Completion, CompletionRequest
from resources.providers.limits import TEMPERATURE, limits_for
from resources.resilience.errors import (
    PermanentProviderError,
    ProviderError,
    UnsupportedParameterError,
    request_id_from,
)

# A candidate stopped because its language is not one the model supports: a verdict on the input for this
# model (another model may read it), not a garbled answer.
UNSUPPORTED_LANGUAGE = "unsupported_language"
SAFETY_FINISH_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY"})
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)s\s*$")


def _error_details(body: bytes) -> list[dict[str, Any]]:
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    error = decoded.get("error") if isinstance(decoded, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def retry_delay_from_details(details: list[dict[str, Any]], *, cap: float = 60.0) -> float | None:
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return max(0.0, min(float(match.group(1)), cap))
    return None


class GeminiAdapter(HttpProviderAdapter):
    name = "gemini"

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://generativelanguage.googleapis.com",
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(api_key, base_url, client)

    def request_body(self, request: CompletionRequest, model: str = "") -> dict[str, Any]:
        limits = limits_for(self.name, model)
        generation_config: dict[str, Any] = {"maxOutputTokens": limits.output_ceiling(request.max_tokens)}
        if limits.accepts(TEMPERATURE):
            generation_config["temperature"] = request.temperature
        if request.json_output:
            generation_config["responseMimeType"] = "application/json"
        body: dict[str, Any] = {
            "contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
            "generationConfig": generation_config,
        }
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        return body

    def complete(self, model: str, request: CompletionRequest, *, timeout: float) -> Completion:
        headers = {"x-goog-api-key": self._api_key, "content-type": "application/json"}
        model_id = model.removeprefix("models/")  # both spellings are common in Google's own docs
        url = f"{self.base_url}/v1beta/models/{quote(model_id, safe='.-_')}:generateContent"
        body = self.request_body(request, model_id)
        data, response_headers = self.post_json(model=model, url=url, headers=headers, body=body, timeout=timeout)
        completion = self._completion(model, data, response_headers)
        return completion.model_copy(update={"max_tokens": body["generationConfig"]["maxOutputTokens"]})

    def refine_http_error(self, error: ProviderError, response: httpx.Response) -> ProviderError:
        if error.retry_after is None:
            error.retry_after = retry_delay_from_details(_error_details(response.content))
        return error

    def _completion(self, model: str, data: dict[str, Any], headers: httpx.Headers) -> Completion:
        request_id = request_id_from(headers) or (str(data["responseId"]) if data.get("responseId") else None)
        feedback = as_dict(data.get("promptFeedback"))
        block_reason = feedback.get("blockReason")
        candidates = data.get("candidates")
        if block_reason:
            raise self._safety(model, request_id, f"prompt blocked (blockReason={block_reason})")
        if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
            raise self.malformed(model, headers, 200, "no candidates")
        candidate = candidates[0]
        finish_reason = str(candidate.get("finishReason") or "")
        if finish_reason in SAFETY_FINISH_REASONS:
            raise self._safety(model, request_id, f"candidate blocked (finishReason={finish_reason})")
        if finish_reason == "RECITATION":
            raise PermanentProviderError(
                "candidate blocked (finishReason=RECITATION)",
                provider=self.name,
                model=model,
                status=200,
                error_code="recitation",
                request_id=request_id,
            )
        if finish_reason == "LANGUAGE":
            raise UnsupportedParameterError(
                "candidate blocked (finishReason=LANGUAGE): the input's language is not supported by this model",
                provider=self.name,
                model=model,
                status=200,
                error_code=UNSUPPORTED_LANGUAGE,
                request_id=request_id,
            )
        content = as_dict(candidate.get("content"))
        parts = content.get("parts")
        truncated = finish_reason == "MAX_TOKENS"
        if truncated and parts is None:
            parts = []  # thinking took the whole ceiling: a cut answer with no text, not a malformed one
        if not isinstance(parts, list):
            raise self.malformed(model, headers, 200, "candidate has no content parts")
        text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and not p.get("thought"))
        usage = as_dict(data.get("usageMetadata"))
        return Completion(
            provider=self.name,
            model=str(data.get("modelVersion") or model),
            text=text,
            request_id=request_id,
            input_tokens=int(usage.get("promptTokenCount") or 0),
            # Implicit caching (2.5, 3): the cached part of promptTokenCount.
            cached_input_tokens=int(usage.get("cachedContentTokenCount") or 0),
            # Thinking models (2.5, 3) report their thoughts apart from the answer; they are billed as output.
            output_tokens=int(usage.get("candidatesTokenCount") or 0) + int(usage.get("thoughtsTokenCount") or 0),
            truncated=truncated,
        )

    def _safety(self, model: str, request_id: str | None, message: str) -> PermanentProviderError:
        return PermanentProviderError(
            message,
            provider=self.name,
            model=model,
            status=200,
            error_code="safety_refusal",
            request_id=request_id,
        )
