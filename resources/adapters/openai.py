"""OpenAI Chat Completions adapter (``POST /chat/completions``).

Wire format: ``Authorization: Bearer``; body ``{model, messages:[system, user], max_completion_tokens,
temperature, response_format}``; the answer is ``choices[0].message.content``; ``x-request-id``
identifies the request. ``finish_reason: "content_filter"`` or a non-null ``message.refusal`` is a
safety refusal: permanent, ``error_code="safety_refusal"``.

``max_completion_tokens`` rather than the deprecated ``max_tokens``: the reasoning models reject
``max_tokens`` with a 400. ``finish_reason: "length"`` means the answer was cut at that ceiling: the
completion comes back ``truncated``.

Rate limits: a 429 often comes without ``retry-after``; its wait is then in the message ("Please try again in
3.89s") and in ``x-ratelimit-reset-tokens`` / ``-requests``, as Go durations (``174ms``, ``6m0s``), which
``rate_limit_wait`` reads. A 429 "Request too large ... tokens per min" is no rate limit to wait out: the
taxonomy makes it model-level (``RequestOverRateLimitError``).

Limits (``resources.providers.limits``): the ceiling is capped at the model's output limit, and
``temperature`` is sent only to a model that accepts it: the GPT-5 family and the o-series answer any
value but the default with 400 ``unsupported_value``, so they get none (their default).
"""

from __future__ import annotations

import math
import re
from typing import Any

import httpx

from resources.adapters.http_adapter import HttpProviderAdapter, as_dict
from resources.providers.base import Completion, CompletionRequest
from resources.providers.limits import TEMPERATURE, limits_for
from resources.resilience.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    request_id_from,
)

_GO_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns))")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go ``time.Duration`` string, the way OpenAI writes waits (``x-ratelimit-reset-tokens: 6m0s``,
    ``174ms``, "Please try again in 3.89s"); None when ``text`` is not one. Hand-written: the format is a
    sequence of number+unit pairs and no maintained library parses exactly this one."""
    text = text.strip()
    if not text or _GO_DURATION.sub("", text):
        return None
    total = sum(float(number) * _GO_UNITS[unit] for number, unit in _GO_DURATION.findall(text))
    return total if math.isfinite(total) else None


_TRY_AGAIN = re.compile(r"try again in ([0-9][0-9.a-zµ]*)", re.IGNORECASE)
RATE_LIMIT_HINT_CAP = 60.0  # the same cap as ``retry-after`` (``classify_http_error``)


def rate_limit_wait(headers: httpx.Headers, message: str, *, cap: float = RATE_LIMIT_HINT_CAP) -> float | None:
    """The wait an OpenAI 429 gives when it sends no ``retry-after``: the message's "Please try again in
    3.89s" (it names the limit that was hit), else the ``x-ratelimit-reset-*`` of a limit with nothing
    remaining. Finite and positive, capped; else None (the caller waits full jitter)."""
    candidates: list[float | None] = []
    if match := _TRY_AGAIN.search(message):
        candidates.append(parse_go_duration(match.group(1).rstrip(".")))
    for limit in ("tokens", "requests"):
        if headers.get(f"x-ratelimit-remaining-{limit}", "").strip() == "0":
            candidates.append(parse_go_duration(headers.get(f"x-ratelimit-reset-{limit}", "")))
    for seconds in candidates:
        if seconds is not None and seconds > 0:
            return min(seconds, cap)
    return None


class OpenAIAdapter(HttpProviderAdapter):
    name = "openai"

    def __init__(
        self, api_key: str, base_url: str = "https://api.openai.com/v1", client: httpx.Client | None = None
    ) -> None:
        super().__init__(api_key, base_url, client)

    def request_body(self, model: str, request: CompletionRequest) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
        limits = limits_for(self.name, model)
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_completion_tokens": limits.output_ceiling(request.max_tokens),
        }
        if limits.accepts(TEMPERATURE):
            body["temperature"] = request.temperature
        if request.json_output:
            body["response_format"] = {"type": "json_object"}
        return body

    def refine_http_error(self, error: ProviderError, response: httpx.Response) -> ProviderError:
        if isinstance(error, TransientProviderError) and error.status == 429 and error.retry_after is None:
            error.retry_after = rate_limit_wait(response.headers, error.message)
        return error

    def complete(self, model: str, request: CompletionRequest, *, timeout: float) -> Completion:
        headers = {"authorization": f"Bearer {self._api_key}", "content-type": "application/json"}
        body = self.request_body(model, request)
        data, response_headers = self.post_json(
            model=model, url=f"{self.base_url}/chat/completions", headers=headers, body=body, timeout=timeout
        )
        request_id = request_id_from(response_headers)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self.malformed(model, response_headers, 200, "no choices")
        choice = choices[0]
        message = as_dict(choice.get("message"))
        refusal = message.get("refusal")
        if choice.get("finish_reason") == "content_filter" or refusal:
            raise PermanentProviderError(
                f"model refused the request (finish_reason={choice.get('finish_reason')})",
                provider=self.name,
                model=model,
                status=200,
                error_code="safety_refusal",
                request_id=request_id,
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise self.malformed(model, response_headers, 200, "message has no text content")
        usage = as_dict(data.get("usage"))
        return Completion(
            provider=self.name,
            model=str(data.get("model") or model),
            text=content,
            request_id=request_id,
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            # A repeated prompt prefix (1,024 tokens on) comes from OpenAI's prompt cache, counted in
            # prompt_tokens and broken out here.
            cached_input_tokens=int(as_dict(usage.get("prompt_tokens_details")).get("cached_tokens") or 0),
            truncated=choice.get("finish_reason") == "length",
            max_tokens=body["max_completion_tokens"],
        )
