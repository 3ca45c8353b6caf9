"""The three providers' wire formats, as the real services speak them.

Each ``WireFormat`` knows how to read a chat request in its provider's shape (and reject it the way the
provider would: missing key -> 401/403, missing fields -> 400), how to answer it, and how every fault
kind looks on that provider: status code, headers (``request-id`` / ``x-request-id``, ``retry-after``,
``x-should-retry``) and error envelope. The official SDKs are pointed at these answers in the tests and
must parse them exactly as they parse the real service's.

Sources (public API references): Anthropic "Errors" (error shapes, ``request-id``, 529
``overloaded_error``), OpenAI "Error codes" + "Rate limits" (``x-request-id``, ``x-ratelimit-*``), Gemini
``generateContent`` + Google API error model (``{"error":{"code","message","status","details"}}``,
``google.rpc.RetryInfo``, bad keys as 400 ``API_KEY_INVALID``; Gemini sends no request-id header).
Answers added for the second provider-edge pass (``docs/providers-and-simulator.md`` has the table with
sources): reasoning tokens as each provider reports them, Anthropic ``model_context_window_exceeded``, OpenAI's
tokens-per-minute 429s (one a request too large to ever pass, one without ``retry-after`` whose wait is a Go
duration), each provider's 404 for a retired model, Gemini candidates stopped before any text, a CDN's HTML 502
page, and Gemini 3 looping below its default temperature.

Limits (``resources.providers.limits``, the same table the adapters read): ``refuse_beyond_limits`` answers a
prompt above the model's context window, an output ceiling above its limit, and a parameter the model does
not take, each with its provider's real 400; ``success`` cuts the answer at the request's output ceiling
(``CHARS_PER_TOKEN`` characters a token) and says so (``stop_reason: "max_tokens"``, ``finish_reason:
"length"``, ``finishReason: "MAX_TOKENS"``), usage never above the ceiling. A request without a ceiling
(OpenAI, Gemini) gets the model's output limit, as the real services apply.
"""

from __future__ import annotations

import gzip
import json
import math
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any, Protocol

from resources.providers.limits import CHARS_PER_TOKEN, TEMPERATURE, ModelLimits
from resources.providers.limits import estimate_tokens as estimate_tokens
from resources.simulator.routing import SimRequest, SimResponse

_ALNUM = string.ascii_letters + string.digits


def _token(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class ChatCall:
    """A parsed chat request, provider-neutral."""

    provider: str
    model: str
    system: str
    prompt: str
    max_tokens: int | None  # None: the request set no ceiling (the model's output limit applies)
    json_output: bool
    api_key: str
    temperature: float | None = None  # None: not sent (the model's default)
    # OpenAI: the ceiling came as the deprecated ``max_tokens`` rather than ``max_completion_tokens``
    legacy_max_tokens: bool = False

    def input_tokens(self) -> int:
        # Through ``estimate_tokens``: it stands for the provider's tokenizer (tests swap it for another).
        return estimate_tokens(self.system + self.prompt)

    def ceiling(self) -> int:
        """The output ceiling in force (``max_tokens`` after the server filled in a missing one)."""
        return self.max_tokens if self.max_tokens is not None else 1


def cut_at_ceiling(text: str, max_tokens: int) -> tuple[str, bool]:
    """``text`` cut to ``max_tokens`` tokens at the table's estimate, and whether it was cut."""
    limit = max_tokens * CHARS_PER_TOKEN
    return (text[:limit], True) if len(text) > limit else (text, False)


class WireFormat(Protocol):
    provider: str

    def parse(self, request: SimRequest) -> ChatCall | SimResponse: ...

    def new_request_id(self) -> str: ...

    def success(self, call: ChatCall, text: str, request_id: str) -> SimResponse: ...

    def safety(self, call: ChatCall, request_id: str, variant: int) -> SimResponse: ...

    def reasoning(self, call: ChatCall, text: str, request_id: str) -> SimResponse: ...

    def prompt_cached(self, call: ChatCall, text: str, request_id: str) -> SimResponse: ...

    def window_exhausted(self, call: ChatCall, text: str, request_id: str) -> SimResponse: ...

    def request_over_rate_limit(self, call: ChatCall, request_id: str) -> SimResponse: ...

    def error(self, kind: str, model: str, request_id: str, retry_after: float | None) -> SimResponse: ...

    def echo_key(self, api_key: str, request_id: str) -> SimResponse: ...

    def refuse_beyond_limits(self, call: ChatCall, limits: ModelLimits, request_id: str) -> SimResponse | None: ...


def _texts(value: Any) -> list[str]:
    """Text out of a string or a list of content blocks/parts (``{"type":"text","text":...}``)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [
            str(b.get("text", "")) for b in value if isinstance(b, dict) and isinstance(b.get("text"), str)
        ]
    return []


def _retry_seconds(retry_after: float | None, default: float) -> int:
    return max(1, math.ceil(retry_after if retry_after is not None else default))


def garble_gzip_body(response: SimResponse) -> SimResponse:
    """The same answer gzip-encoded, as the real APIs send it to a client that accepts gzip, with its compressed
    bytes damaged (``content-length`` unchanged): what a faulty middlebox delivers. The HTTP message is complete,
    but its body will not decompress. The damage is the first deflate block's header (a reserved block type,
    right after gzip's 10-byte header), so every answer fails to decompress whatever its content."""
    compressed = bytearray(gzip.compress(response.body))
    compressed[10] = 0b111  # BFINAL=1, BTYPE=11 (reserved): "invalid block type"
    response.body = bytes(compressed)
    response.headers = [h for h in response.headers if h[0].lower() != "content-encoding"]
    response.headers.append(("content-encoding", "gzip"))
    return response


def truncate_body(response: SimResponse) -> SimResponse:
    """The same answer with its body cut mid-JSON (what a dropped proxy stream delivers)."""
    cut = max(1, len(response.body) // 2)
    response.body = response.body[:cut]
    return response


# Tokens a reasoning ("thinking") model spends before its answer in the ``reasoning`` fault kind: billed as
# output by all three providers, reported differently by each.
REASONING_TOKENS = 512
# The organization's per-minute token limit in the ``request_over_tpm`` / ``token_rate_limit`` answers.
TPM_LIMIT = 30000


def reasoning_tokens(call: ChatCall, text: str) -> int:
    """The thinking a ``reasoning`` answer reports: ``REASONING_TOKENS``, within what the ceiling leaves."""
    return max(0, min(REASONING_TOKENS, call.ceiling() - estimate_tokens(text)))


# OpenAI caches a prompt's repeated prefix from 1,024 tokens on, in steps of 128; Gemini 2.5 and 3 cache
# implicitly from 1,024 (Flash) tokens. Both report the cached part inside the prompt count.
PROMPT_CACHE_MIN_TOKENS = 1024
PROMPT_CACHE_STEP = 128


def cached_prompt_tokens(call: ChatCall) -> int:
    """The prompt tokens a repeat of ``call`` is served from the provider's prompt cache (0 under the minimum)."""
    tokens = call.input_tokens()
    return tokens // PROMPT_CACHE_STEP * PROMPT_CACHE_STEP if tokens >= PROMPT_CACHE_MIN_TOKENS else 0


def go_duration(seconds: float) -> str:
    """A wait the way OpenAI writes it in ``x-ratelimit-reset-*`` and its 429 messages: ``174ms``, ``3.89s``,
    ``6m0s``, ``1h2m3s`` (Go's ``time.Duration`` format)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    sec_text = f"{secs:.2f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{sec_text}"
    if minutes:
        return f"{minutes}m{sec_text}"
    return sec_text


# ---------------------------------------------------------------- Anthropic


class AnthropicWire:
    provider = "anthropic"

    def new_request_id(self) -> str:
        return "req_011C" + _token(20)

    def _error(
        self, status: int, etype: str, message: str, request_id: str, extra: dict[str, str] | None = None
    ) -> SimResponse:
        body = {"type": "error", "error": {"type": etype, "message": message}, "request_id": request_id}
        headers = {"request-id": request_id, **(extra or {})}
        return SimResponse.json(status, body, headers)

    def parse(self, request: SimRequest) -> ChatCall | SimResponse:
        rid = self.new_request_id()
        api_key = request.header("x-api-key")
        if not api_key and not request.header("authorization"):
            return self._error(401, "authentication_error", "x-api-key header is required", rid)
        if not request.header("anthropic-version"):
            return self._error(400, "invalid_request_error", "anthropic-version: header is required", rid)
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "invalid_request_error", "There was an error parsing the body.", rid)
        if not isinstance(body, dict):
            return self._error(400, "invalid_request_error", "Input should be an object", rid)
        for required in ("model", "max_tokens", "messages"):
            if required not in body:
                return self._error(400, "invalid_request_error", f"{required}: Field required", rid)
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return self._error(
                400, "invalid_request_error", "messages: at least one message is required", rid
            )
        prompt = "\n".join(t for m in messages if isinstance(m, dict) for t in _texts(m.get("content")))
        temperature = body.get("temperature")
        return ChatCall(
            provider=self.provider,
            model=str(body["model"]),
            system="\n".join(_texts(body.get("system"))),
            prompt=prompt,
            max_tokens=int(body["max_tokens"]),
            json_output=False,
            api_key=api_key,
            temperature=float(temperature) if isinstance(temperature, (int, float)) else None,
        )

    def refuse_beyond_limits(self, call: ChatCall, limits: ModelLimits, request_id: str) -> SimResponse | None:
        tokens, ceiling = call.input_tokens(), call.ceiling()
        message = None
        if tokens > limits.context_window:
            message = f"prompt is too long: {tokens} tokens > {limits.context_window} maximum"
        elif ceiling > limits.max_output_tokens:
            message = (
                f"max_tokens: {ceiling} > {limits.max_output_tokens}, which is the maximum allowed number of "
                f"output tokens for {call.model}"
            )
        elif tokens + ceiling > limits.context_window:
            message = (
                f"input length and `max_tokens` exceed context limit: {tokens} + {ceiling} > "
                f"{limits.context_window}, decrease input length or `max_tokens` and try again"
            )
        if message is None:
            return None
        return self._error(400, "invalid_request_error", message, request_id, {"x-should-retry": "false"})

    def _message(
        self, call: ChatCall, content: list[dict[str, Any]], stop_reason: str, text: str, request_id: str
    ) -> SimResponse:
        body = {
            "id": "msg_01" + _token(22),
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": call.input_tokens(),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": estimate_tokens(text) if text else 0,
            },
        }
        return SimResponse.json(200, body, {"request-id": request_id})

    def success(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        text, cut = cut_at_ceiling(text, call.ceiling())
        stop_reason = "max_tokens" if cut else "end_turn"
        return self._message(call, [{"type": "text", "text": text}], stop_reason, text, request_id)

    def safety(self, call: ChatCall, request_id: str, variant: int) -> SimResponse:
        # Claude's safety classifiers stop generation with stop_reason "refusal" on a normal 200.
        return self._message(call, [], "refusal", "", request_id)

    def reasoning(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        """Extended thinking: a ``thinking`` block (with its signature) comes *before* the text block, and
        ``usage.output_tokens`` counts the thinking too (it is billed as output)."""
        text, cut = cut_at_ceiling(text, call.ceiling())
        thinking = reasoning_tokens(call, text)
        content = [
            {"type": "thinking", "thinking": "Let me read the input. " * (thinking // 6), "signature": _token(64)},
            {"type": "text", "text": text},
        ]
        response = self._message(call, content, "max_tokens" if cut else "end_turn", text, request_id)
        body = json.loads(response.body)
        body["usage"]["output_tokens"] += thinking
        response.body = json.dumps(body).encode("utf-8")
        return response

    def prompt_cached(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        """Claude caches only up to a ``cache_control`` breakpoint the request sets, which ours never do: the
        answer is an ordinary one (a cache read would come as ``cache_read_input_tokens``, apart from
        ``input_tokens``)."""
        return self.success(call, text, request_id)

    def window_exhausted(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        """Claude 4.5+ models stop a generation that fills the context window with ``stop_reason:
        "model_context_window_exceeded"`` on a normal 200, the text cut where the window ended."""
        cut = text[: max(1, len(text) // 2)]
        return self._message(call, [{"type": "text", "text": cut}], "model_context_window_exceeded", cut, request_id)

    def request_over_rate_limit(self, call: ChatCall, request_id: str) -> SimResponse:
        # Anthropic's token bucket answers an oversized request with its ordinary 429 (see ``error``).
        return self.error("rate_limit", call.model, request_id, None)

    def error(self, kind: str, model: str, request_id: str, retry_after: float | None) -> SimResponse:
        retry = {"retry-after": str(_retry_seconds(retry_after, 1))} if retry_after is not None else {}
        if kind == "overloaded":
            return self._error(
                529, "overloaded_error", "Overloaded", request_id, {"x-should-retry": "true", **retry}
            )
        if kind == "overloaded_no_retry":
            # Seen from Anthropic under sustained overload: "do not retry *this* provider now".
            return self._error(
                529, "overloaded_error", "Overloaded", request_id, {"x-should-retry": "false", **retry}
            )
        if kind in ("rate_limit", "daily_quota", "token_rate_limit"):  # no per-day quota on this API
            seconds = _retry_seconds(retry_after, 20)
            reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
            return self._error(
                429,
                "rate_limit_error",
                "This request would exceed the rate limit for your organization of 50 requests per minute. "
                "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
                request_id,
                {
                    "retry-after": str(seconds),
                    "x-should-retry": "true",
                    "anthropic-ratelimit-requests-limit": "50",
                    "anthropic-ratelimit-requests-remaining": "0",
                    "anthropic-ratelimit-requests-reset": reset,
                },
            )
        if kind == "server_error":
            return self._error(
                500, "api_error", "Internal server error", request_id, {"x-should-retry": "true", **retry}
            )
        if kind == "auth":
            return self._error(
                401, "authentication_error", "invalid x-api-key", request_id, {"x-should-retry": "false"}
            )
        if kind == "billing":
            # An organization whose prepaid credit ran out: a 400 like any bad request, told apart by its text.
            return self._error(
                400,
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
                "upgrade or purchase credits.",
                request_id,
                {"x-should-retry": "false"},
            )
        if kind == "bad_request":
            return self._error(
                400,
                "invalid_request_error",
                "max_tokens: 1000000 > 64000, which is the maximum allowed number of output tokens for "
                f"{model}",
                request_id,
                {"x-should-retry": "false"},
            )
        if kind == "not_found":
            return self._error(404, "not_found_error", f"model: {model}", request_id)
        raise ValueError(f"anthropic wire has no error kind {kind!r}")

    def echo_key(self, api_key: str, request_id: str) -> SimResponse:
        """A misbehaving proxy: 502 with the caller's key as the error type and the request id."""
        return self._error(502, api_key, "upstream connect error", api_key)


# ---------------------------------------------------------------- OpenAI


def _mask_key(key: str) -> str:
    """How OpenAI echoes a wrong key: first and last characters only."""
    return f"{key[:3]}*****{key[-4:]}" if len(key) > 8 else "*****"


class OpenAIWire:
    provider = "openai"

    def new_request_id(self) -> str:
        return "req_" + secrets.token_hex(16)

    def _error(
        self,
        status: int,
        etype: str,
        message: str,
        request_id: str,
        *,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> SimResponse:
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return SimResponse.json(status, body, {"x-request-id": request_id, **(extra or {})})

    def parse(self, request: SimRequest) -> ChatCall | SimResponse:
        rid = self.new_request_id()
        auth = request.header("authorization")
        api_key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not api_key:
            return self._error(
                401,
                "invalid_request_error",
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                rid,
            )
        try:
            body = request.json()
        except ValueError:
            return self._error(
                400, "invalid_request_error", "We could not parse the JSON body of your request.", rid
            )
        if not isinstance(body, dict):
            return self._error(400, "invalid_request_error", "Invalid type for request body.", rid)
        for required in ("model", "messages"):
            if required not in body:
                return self._error(
                    400,
                    "invalid_request_error",
                    f"Missing required parameter: '{required}'.",
                    rid,
                    param=required,
                )
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return self._error(
                400, "invalid_request_error", "Invalid 'messages': empty array.", rid, param="messages"
            )
        system = [
            t
            for m in messages
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
            for t in _texts(m.get("content"))
        ]
        prompt = [
            t
            for m in messages
            if isinstance(m, dict) and m.get("role") == "user"
            for t in _texts(m.get("content"))
        ]
        fmt = body.get("response_format")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        temperature = body.get("temperature")
        return ChatCall(
            provider=self.provider,
            model=str(body["model"]),
            system="\n".join(system),
            prompt="\n".join(prompt),
            max_tokens=int(max_tokens) if max_tokens is not None else None,
            json_output=isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"),
            api_key=api_key,
            temperature=float(temperature) if isinstance(temperature, (int, float)) else None,
            legacy_max_tokens="max_completion_tokens" not in body and body.get("max_tokens") is not None,
        )

    def refuse_beyond_limits(self, call: ChatCall, limits: ModelLimits, request_id: str) -> SimResponse | None:
        # The order the API checks in: parameters the model does not take, then sizes.
        if call.legacy_max_tokens and not limits.legacy_max_tokens:
            return self._error(
                400,
                "invalid_request_error",
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                request_id,
                param="max_tokens",
                code="unsupported_parameter",
            )
        if call.temperature is not None and call.temperature != 1 and not limits.accepts(TEMPERATURE):
            return self._error(
                400,
                "invalid_request_error",
                f"Unsupported value: 'temperature' does not support {call.temperature} with this model. "
                "Only the default (1) value is supported.",
                request_id,
                param="temperature",
                code="unsupported_value",
            )
        param = "max_tokens" if call.legacy_max_tokens else "max_completion_tokens"
        tokens, ceiling = call.input_tokens(), call.ceiling()
        if ceiling > limits.max_output_tokens:
            return self._error(
                400,
                "invalid_request_error",
                f"max_tokens is too large: {ceiling}. This model supports at most {limits.max_output_tokens} "
                f"completion tokens, whereas you provided {ceiling}.",
                request_id,
                param=param,
                code="invalid_value",
            )
        if tokens > limits.context_window:
            return self._error(
                400,
                "invalid_request_error",
                f"This model's maximum context length is {limits.context_window} tokens. However, your "
                f"messages resulted in {tokens} tokens. Please reduce the length of the messages.",
                request_id,
                param="messages",
                code="context_length_exceeded",
            )
        if tokens + ceiling > limits.context_window:
            return self._error(
                400,
                "invalid_request_error",
                f"This model's maximum context length is {limits.context_window} tokens. However, you "
                f"requested {tokens + ceiling} tokens ({tokens} in the messages, {ceiling} in the completion). "
                "Please reduce the length of the messages or completion.",
                request_id,
                param="messages",
                code="context_length_exceeded",
            )
        return None

    def _completion(
        self, call: ChatCall, message: dict[str, Any], finish_reason: str, text: str, request_id: str
    ) -> SimResponse:
        prompt_tokens = call.input_tokens()
        completion_tokens = estimate_tokens(text)
        body = {
            "id": "chatcmpl-" + _token(29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "service_tier": "default",
            "system_fingerprint": "fp_sim0001",
        }
        headers = {"x-request-id": request_id, "openai-processing-ms": "1", "openai-version": "2020-10-01"}
        return SimResponse.json(200, body, headers)

    def success(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        text, cut = cut_at_ceiling(text, call.ceiling())
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        return self._completion(call, message, "length" if cut else "stop", text, request_id)

    def safety(self, call: ChatCall, request_id: str, variant: int) -> SimResponse:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "refusal": "I'm sorry, but I can't help with that request.",
            "annotations": [],
        }
        return self._completion(call, message, "content_filter", "", request_id)

    def reasoning(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        """A reasoning model: ``usage.completion_tokens`` already includes the hidden reasoning, which
        ``completion_tokens_details.reasoning_tokens`` breaks out (billed as output)."""
        text, cut = cut_at_ceiling(text, call.ceiling())
        thinking = reasoning_tokens(call, text)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        response = self._completion(call, message, "length" if cut else "stop", text, request_id)
        body = json.loads(response.body)
        usage = body["usage"]
        usage["completion_tokens"] += thinking
        usage["total_tokens"] += thinking
        usage["completion_tokens_details"] = {"reasoning_tokens": thinking, "accepted_prediction_tokens": 0}
        response.body = json.dumps(body).encode("utf-8")
        return response

    def prompt_cached(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        """A repeated prompt prefix served from the prompt cache: ``prompt_tokens`` still counts every prompt
        token, ``prompt_tokens_details.cached_tokens`` says how many were cached (billed at the cached rate)."""
        response = self.success(call, text, request_id)
        body = json.loads(response.body)
        body["usage"]["prompt_tokens_details"] = {"cached_tokens": cached_prompt_tokens(call), "audio_tokens": 0}
        response.body = json.dumps(body).encode("utf-8")
        return response

    def window_exhausted(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        # OpenAI has no stop reason of its own for a full window: the answer is cut, finish_reason "length".
        cut = text[: max(1, len(text) // 2)]
        message: dict[str, Any] = {"role": "assistant", "content": cut, "refusal": None, "annotations": []}
        return self._completion(call, message, "length", cut, request_id)

    def request_over_rate_limit(self, call: ChatCall, request_id: str) -> SimResponse:
        """A request that alone is larger than the organization's tokens-per-minute limit for the model: a 429
        like a rate limit (same ``code``), but "must be reduced", no ``retry-after``, and it never succeeds
        however long one waits."""
        requested = max(TPM_LIMIT + 1, call.input_tokens() + call.ceiling())
        return self._error(
            429,
            "tokens",
            f"Request too large for {call.model} in organization org-simulator on tokens per min (TPM): "
            f"Limit {TPM_LIMIT}, Requested {requested}. The input or output tokens must be reduced in order to "
            "run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.",
            request_id,
            code="rate_limit_exceeded",
            extra={
                "x-ratelimit-limit-tokens": str(TPM_LIMIT),
                "x-ratelimit-remaining-tokens": str(TPM_LIMIT),
                "x-ratelimit-reset-tokens": "0s",
            },
        )

    def error(self, kind: str, model: str, request_id: str, retry_after: float | None) -> SimResponse:
        retry = {"retry-after": str(_retry_seconds(retry_after, 1))} if retry_after is not None else {}
        if kind in ("overloaded", "overloaded_no_retry"):
            no_retry = {"x-should-retry": "false"} if kind == "overloaded_no_retry" else {}
            return self._error(
                503,
                "server_error",
                "The server is overloaded or not ready yet.",
                request_id,
                extra={**retry, **no_retry},
            )
        if kind in ("rate_limit", "daily_quota"):
            seconds = _retry_seconds(retry_after, 20)
            return self._error(
                429,
                "requests",
                f"Rate limit reached for {model} in organization org-simulator on requests per min (RPM): "
                f"Limit 500, Used 500, Requested 1. Please try again in {seconds}s. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
                request_id,
                code="rate_limit_exceeded",
                extra={
                    "retry-after": str(seconds),
                    "x-ratelimit-limit-requests": "500",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{seconds}s",
                },
            )
        if kind == "token_rate_limit":
            # The tokens-per-minute limit as the API answers it: no retry-after header; the wait is in the
            # message and in x-ratelimit-reset-tokens, both as Go durations ("174ms", "3.89s", "6m0s").
            wait = go_duration(retry_after if retry_after is not None else 6.5)
            return self._error(
                429,
                "tokens",
                f"Rate limit reached for {model} in organization org-simulator on tokens per min (TPM): Limit "
                f"{TPM_LIMIT}, Used {TPM_LIMIT - 1200}, Requested 2400. Please try again in {wait}. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
                request_id,
                code="rate_limit_exceeded",
                extra={
                    "x-ratelimit-limit-requests": "500",
                    "x-ratelimit-remaining-requests": "499",
                    "x-ratelimit-reset-requests": "120ms",
                    "x-ratelimit-limit-tokens": str(TPM_LIMIT),
                    "x-ratelimit-remaining-tokens": "0",
                    "x-ratelimit-reset-tokens": wait,
                },
            )
        if kind == "server_error":
            return self._error(
                500,
                "server_error",
                "The server had an error while processing your request. Sorry about that!",
                request_id,
                extra=retry,
            )
        if kind == "auth":
            return self._error(
                401,
                "invalid_request_error",
                "Incorrect API key provided: sk-sim*****0000. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                request_id,
                code="invalid_api_key",
            )
        if kind == "billing":
            # Out of credit / over the monthly spend limit: a 429 like a rate limit, but without retry-after.
            return self._error(
                429,
                "insufficient_quota",
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                request_id,
                code="insufficient_quota",
            )
        if kind == "bad_request":
            return self._error(
                400,
                "invalid_request_error",
                "Invalid 'max_completion_tokens': integer above maximum value. Expected a value <= 16384, "
                "but got 1000000 instead.",
                request_id,
                param="max_completion_tokens",
                code="integer_above_max_value",
            )
        if kind == "not_found":
            return self._error(
                404,
                "invalid_request_error",
                f"The model `{model}` does not exist or you do not have access to it.",
                request_id,
                code="model_not_found",
            )
        raise ValueError(f"openai wire has no error kind {kind!r}")

    def echo_key(self, api_key: str, request_id: str) -> SimResponse:
        """A misbehaving proxy: 502 with the caller's key as the error type and the x-request-id."""
        return self._error(502, api_key, "upstream connect error", api_key)

    def auth_error_for_key(self, api_key: str, request_id: str) -> SimResponse:
        return self._error(
            401,
            "invalid_request_error",
            f"Incorrect API key provided: {_mask_key(api_key)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            request_id,
            code="invalid_api_key",
        )


# ---------------------------------------------------------------- Gemini

_GOOGLE_JSON = "application/json; charset=UTF-8"


class GeminiWire:
    provider = "gemini"

    def new_request_id(self) -> str:
        # Not sent as a header (the Gemini API has none); used as the body's ``responseId``.
        return _token(22, string.ascii_letters + string.digits + "-_")

    def error_body(
        self, code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        error: dict[str, Any] = {"code": code, "message": message, "status": status}
        if details:
            error["details"] = details
        return {"error": error}

    def _error(
        self,
        code: int,
        status: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> SimResponse:
        return SimResponse.json(
            code, self.error_body(code, status, message, details), headers, content_type=_GOOGLE_JSON
        )

    def parse(self, request: SimRequest) -> ChatCall | SimResponse:
        api_key = request.header("x-goog-api-key") or (request.query.get("key") or [""])[0]
        if not api_key and not request.header("authorization"):
            return self._error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not isinstance(body, dict):
            return self._error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Expected an object.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return self._error(
                400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified\n"
            )
        system_instruction = body.get("systemInstruction") or body.get("system_instruction") or {}
        system = _texts(system_instruction.get("parts")) if isinstance(system_instruction, dict) else []
        prompt = [t for c in contents if isinstance(c, dict) for t in _texts(c.get("parts"))]
        config = body.get("generationConfig") or body.get("generation_config") or {}
        config = config if isinstance(config, dict) else {}
        mime = config.get("responseMimeType") or config.get("response_mime_type")
        max_tokens = config.get("maxOutputTokens", config.get("max_output_tokens"))
        temperature = config.get("temperature")
        return ChatCall(
            provider=self.provider,
            model=request.params.get("model", ""),
            system="\n".join(system),
            prompt="\n".join(prompt),
            max_tokens=int(max_tokens) if max_tokens is not None else None,
            json_output=mime == "application/json",
            api_key=api_key,
            temperature=float(temperature) if isinstance(temperature, (int, float)) else None,
        )

    def refuse_beyond_limits(self, call: ChatCall, limits: ModelLimits, request_id: str) -> SimResponse | None:
        # Gemini counts its input and output limits separately (no shared context window).
        tokens, ceiling = call.input_tokens(), call.ceiling()
        if tokens > limits.context_window:
            return self._error(
                400,
                "INVALID_ARGUMENT",
                f"The input token count ({tokens}) exceeds the maximum number of tokens allowed "
                f"({limits.context_window}).",
            )
        if ceiling > limits.max_output_tokens:
            return self._error(
                400,
                "INVALID_ARGUMENT",
                f"Unable to submit request because it has a maxOutputTokens value of {ceiling} but the "
                f"supported range is from 1 (inclusive) to {limits.max_output_tokens + 1} (exclusive). "
                "Update the value and try again.",
            )
        return None

    def _usage(self, call: ChatCall, text: str) -> dict[str, int]:
        prompt_tokens = call.input_tokens()
        out = estimate_tokens(text)
        return {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": out,
            "totalTokenCount": prompt_tokens + out,
        }

    def success(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        text, cut = cut_at_ceiling(text, call.ceiling())
        finish_reason = "MAX_TOKENS" if cut else "STOP"
        body = {
            "candidates": [
                {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish_reason, "index": 0}
            ],
            "usageMetadata": self._usage(call, text),
            "modelVersion": call.model,
            "responseId": request_id,
        }
        return SimResponse.json(200, body, content_type=_GOOGLE_JSON)

    def safety(self, call: ChatCall, request_id: str, variant: int) -> SimResponse:
        """Even variants block the prompt (``promptFeedback.blockReason``, no candidates); odd variants
        stop the candidate (``finishReason: SAFETY``, no content) - the two ways Gemini refuses."""
        ratings = [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        ]
        body: dict[str, Any]
        if variant % 2 == 0:
            body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings}}
        else:
            body = {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}]}
        body.update(
            {"usageMetadata": self._usage(call, ""), "modelVersion": call.model, "responseId": request_id}
        )
        return SimResponse.json(200, body, content_type=_GOOGLE_JSON)

    @staticmethod
    def loops_at(call: ChatCall) -> bool:
        """Gemini 3 is tuned for its default temperature (1.0); Google's guide warns that a lower one "may lead
        to unexpected behavior, such as looping": the ``temperature_loop`` fault answers such a call so."""
        model = call.model.removeprefix("models/")
        return model.startswith("gemini-3") and call.temperature is not None and call.temperature < 1.0

    def blocked_candidate(self, call: ChatCall, request_id: str, finish_reason: str) -> SimResponse:
        """A candidate the service stopped before any text (``LANGUAGE``, ``RECITATION``, ``OTHER``...):
        ``content`` is not set, only ``finishReason`` says why (Vertex AI "Process blocked responses").
        ``MAX_TOKENS`` with no content is a thinking model whose thoughts took the whole ceiling."""
        usage: dict[str, int] = self._usage(call, "")
        del usage["candidatesTokenCount"]  # proto3 JSON drops a zero: no candidate tokens, no field
        if finish_reason == "MAX_TOKENS":
            usage["thoughtsTokenCount"] = call.ceiling()
            usage["totalTokenCount"] += call.ceiling()
        body = {
            "candidates": [{"finishReason": finish_reason, "index": 0}],
            "usageMetadata": usage,
            "modelVersion": call.model,
            "responseId": request_id,
        }
        return SimResponse.json(200, body, content_type=_GOOGLE_JSON)

    def reasoning(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        """A thinking model (Gemini 2.5 and 3 think by default): the thoughts are not in the parts (no
        ``includeThoughts``) and not in ``candidatesTokenCount`` either, but in ``thoughtsTokenCount``; they
        count towards ``maxOutputTokens`` and are billed at the output price."""
        text, cut = cut_at_ceiling(text, call.ceiling())
        thinking = reasoning_tokens(call, text)
        response = self.success(call, text, request_id)
        body = json.loads(response.body)
        usage = body["usageMetadata"]
        usage["thoughtsTokenCount"] = thinking
        usage["totalTokenCount"] += thinking
        body["candidates"][0]["finishReason"] = "MAX_TOKENS" if cut else "STOP"
        response.body = json.dumps(body).encode("utf-8")
        return response

    def prompt_cached(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        """Implicit caching: ``promptTokenCount`` counts every prompt token, ``cachedContentTokenCount`` the
        cached ones (billed at the cached rate); proto3 JSON drops it when it is 0."""
        response = self.success(call, text, request_id)
        cached = cached_prompt_tokens(call)
        if cached:
            body = json.loads(response.body)
            body["usageMetadata"]["cachedContentTokenCount"] = cached
            response.body = json.dumps(body).encode("utf-8")
        return response

    def window_exhausted(self, call: ChatCall, text: str, request_id: str) -> SimResponse:
        # Gemini counts input and output separately: a cut answer is MAX_TOKENS.
        cut = text[: max(1, len(text) // 2)]
        body = {
            "candidates": [
                {"content": {"parts": [{"text": cut}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}
            ],
            "usageMetadata": self._usage(call, cut),
            "modelVersion": call.model,
            "responseId": request_id,
        }
        return SimResponse.json(200, body, content_type=_GOOGLE_JSON)

    def request_over_rate_limit(self, call: ChatCall, request_id: str) -> SimResponse:
        return self.error("rate_limit", call.model, request_id, None)

    def error(self, kind: str, model: str, request_id: str, retry_after: float | None) -> SimResponse:
        if kind in ("overloaded", "overloaded_no_retry"):
            return self._error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        if kind == "daily_quota":
            return self._daily_quota(model, retry_after)
        if kind in ("rate_limit", "token_rate_limit"):
            seconds = _retry_seconds(retry_after, 20)
            details: list[dict[str, Any]] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                            "quotaDimensions": {"location": "global", "model": model},
                            "quotaValue": "60",
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"},
            ]
            return self._error(
                429,
                "RESOURCE_EXHAUSTED",
                # Verbatim shape of the real per-minute 429 (yes, it mentions billing even for RPM limits).
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
                "* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_requests, "
                f"limit: 60, model: {model}\nPlease retry in {seconds}s.",
                details,
            )
        if kind == "server_error":
            return self._error(
                500,
                "INTERNAL",
                "An internal error has occurred. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
            )
        if kind == "auth":
            return self._error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                        "locale": "en-US",
                        "message": "API key not valid. Please pass a valid API key.",
                    },
                ],
            )
        if kind == "billing":
            # A paid-tier project whose Cloud billing account was disabled or closed.
            return self._error(
                403,
                "PERMISSION_DENIED",
                "This API method requires billing to be enabled. Please enable billing on project #1 by visiting "
                "https://console.developers.google.com/billing/enable?project=1 then retry. If you enabled "
                "billing for this project recently, wait a few minutes for the action to propagate to our "
                "systems and retry.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "BILLING_DISABLED",
                        "domain": "googleapis.com",
                        "metadata": {"consumer": "projects/1", "service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        if kind == "bad_request":
            return self._error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        if kind == "not_found":
            return self._error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "generateContent.",
            )
        raise ValueError(f"gemini wire has no error kind {kind!r}")

    def _daily_quota(self, model: str, retry_after: float | None) -> SimResponse:
        """The free tier's requests-per-day quota, as Gemini answers it: the same 429 RESOURCE_EXHAUSTED as the
        per-minute limit, told apart only by the QuotaFailure's ``quotaId`` (``...PerDay...``). Its RetryInfo
        still says seconds (the quota itself resets at midnight Pacific time)."""
        seconds = _retry_seconds(retry_after, 37)
        metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": metric,
                        "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": "250",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"},
        ]
        return self._error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details. For more "
            "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
            f"* Quota exceeded for metric: {metric}, limit: 250, model: {model}\nPlease retry in {seconds}s.",
            details,
        )

    def echo_key(self, api_key: str, request_id: str) -> SimResponse:
        """A misbehaving proxy: 502 with the caller's key as the error status and an x-request-id."""
        return self._error(502, api_key, "upstream connect error", headers={"x-request-id": api_key})


def cdn_error_page(status: int) -> SimResponse:
    """What the CDN in front of the API (Cloudflare, for Anthropic and OpenAI) answers when the origin fails:
    an HTML page, not the provider's JSON envelope, with ``cf-ray`` as the only request id."""
    reason = {502: "Bad Gateway", 504: "Gateway Time-out"}.get(status, "Bad Gateway")
    page = (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
    )
    headers = [
        ("content-type", "text/html"),
        ("server", "cloudflare"),
        ("cf-ray", secrets.token_hex(8) + "-LAX"),
    ]
    return SimResponse(status=status, body=page.encode("utf-8"), headers=headers)


WIRE_FORMATS: dict[str, WireFormat] = {
    "anthropic": AnthropicWire(),
    "openai": OpenAIWire(),
    "gemini": GeminiWire(),
}


def invalid_output_text(task: str | None) -> str:
    """A 200 answer whose content fails the task schema: prose around JSON missing every required field."""
    payload = {"status": "incomplete", "note": f"could not complete {task or 'the request'}"}
    return "Here is the JSON you asked for:\n" + json.dumps(payload)
