"""Anthropic Messages API adapter (``POST /v1/messages``).

Wire format: headers ``x-api-key`` and ``anthropic-version: 2023-06-01``; body ``{model, max_tokens,
system, messages, temperature}``; the answer is the concatenated ``text`` content blocks. Every
response carries a ``request-id`` header. ``stop_reason: "refusal"`` means the model declined for
safety reasons: permanent, ``error_code="safety_refusal"``. ``stop_reason: "max_tokens"`` means the answer
was cut at the ceiling, ``"model_context_window_exceeded"`` that it was cut where the context window ended:
either way the completion comes back ``truncated`` (the executor decides what follows). Thinking blocks
(which come before the text) are not part of the answer; ``usage.output_tokens`` already counts them.

Limits (``resources.providers.limits``): ``max_tokens`` is capped at the model's output limit and
``temperature`` is sent only to a model that accepts it.
"""

from __future__ import annotations

from typing import Any

import httpx

from resources.adapters.http_adapter import HttpProviderAdapter, as_dict
from resources.providers.base import Completion, CompletionRequest
from resources.providers.limits import TEMPERATURE, limits_for
from resources.resilience.errors import PermanentProviderError, request_id_from

ANTHROPIC_VERSION = "2023-06-01"
# Stop reasons that cut the answer: the output ceiling, or (Claude 4.5 and later) the context window filled
# during generation, which arrives as a normal 200 with the text cut where the window ended.
TRUNCATING_STOP_REASONS = frozenset({"max_tokens", "model_context_window_exceeded"})


class AnthropicAdapter(HttpProviderAdapter):
    name = "anthropic"

    def __init__(
        self, api_key: str, base_url: str = "https://api.anthropic.com", client: httpx.Client | None = None
    ) -> None:
        super().__init__(api_key, base_url, client)

    def request_body(self, model: str, request: CompletionRequest) -> dict[str, Any]:
        limits = limits_for(self.name, model)
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": limits.output_ceiling(request.max_tokens),
            "messages": [{"role": "user", "content": request.prompt}],
        }
        if limits.accepts(TEMPERATURE):
            body["temperature"] = request.temperature
        if request.system:
            body["system"] = request.system
        return body

    def complete(self, model: str, request: CompletionRequest, *, timeout: float) -> Completion:
        headers = {
            "x-api-key": self._api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }
        body = self.request_body(model, request)
        data, response_headers = self.post_json(
            model=model, url=f"{self.base_url}/v1/messages", headers=headers, body=body, timeout=timeout
        )
        request_id = request_id_from(response_headers)
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise self.malformed(model, response_headers, 200, "no content blocks")
        text = "".join(
            str(block.get("text", ""))
            for block in blocks
            if isinstance(block, dict) and block.get("type") == "text"
        )
        if data.get("stop_reason") == "refusal":
            raise PermanentProviderError(
                "model refused the request (stop_reason=refusal)",
                provider=self.name,
                model=model,
                status=200,
                error_code="safety_refusal",
                request_id=request_id,
            )
        usage = as_dict(data.get("usage"))
        return Completion(
            provider=self.name,
            model=str(data.get("model") or model),
            text=text,
            request_id=request_id,
            # Anthropic's input_tokens leaves out what a cache_control breakpoint read from or wrote to its
            # cache: every prompt token is the sum (a write is billed above the input rate; counted as input).
            input_tokens=int(usage.get("input_tokens") or 0)
            + int(usage.get("cache_read_input_tokens") or 0)
            + int(usage.get("cache_creation_input_tokens") or 0),
            cached_input_tokens=int(usage.get("cache_read_input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            truncated=data.get("stop_reason") in TRUNCATING_STOP_REASONS,
            max_tokens=body["max_tokens"],
        )
