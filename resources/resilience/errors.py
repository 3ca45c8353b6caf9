"""One error taxonomy for every provider.

Every failure an adapter sees becomes exactly one of three classes, decided here and nowhere else:

* ``TransientProviderError`` - worth retrying the same provider after a delay (overload, rate limit,
  5xx, timeouts, connection resets).
* ``PermanentProviderError`` - the *request* is bad; retrying it anywhere is waste (400
  ``invalid_request_error``/``INVALID_ARGUMENT``, safety refusals, context overflow, output that stays
  invalid after repair).
* ``ProviderUnavailableError`` - the *provider* is unusable for us (401/403/404): skip it, never retry it,
  but other providers may still serve the request.

The error keeps what an operator needs to chase it with the provider: request id, error code, provider
message, HTTP status and any ``retry-after`` hint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

ErrorClass = Literal["transient", "permanent", "provider_unavailable"]

TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
PROVIDER_LEVEL_STATUSES = frozenset({401, 403, 404})
TRANSIENT_ERROR_CODES = frozenset(
    {
        # Anthropic error.type
        "overloaded_error",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        # Gemini / Google RPC status
        "RESOURCE_EXHAUSTED",
        "UNAVAILABLE",
        "DEADLINE_EXCEEDED",
        "INTERNAL",
        # OpenAI error.type / code
        "server_error",
        "rate_limit_exceeded",
        "insufficient_quota_retryable",
        # transport
        "timeout",
        "connection_reset",
        "connection_error",
    }
)
PERMANENT_ERROR_CODES = frozenset(
    {
        "invalid_request_error",
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "content_policy_violation",
        "content_filter",
        "safety_refusal",
        "SAFETY",
        "context_length_exceeded",
        "request_too_large",
        "invalid_model_output",
        "malformed_response",
    }
)
PROVIDER_LEVEL_ERROR_CODES = frozenset(
    {
        "authentication_error",
        "permission_error",
        "not_found_error",
        "invalid_api_key",
        "model_not_found",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "NOT_FOUND",
    }
)
_SAFETY_PATTERN = re.compile(r"safety|content[ _-]?policy|content[ _-]?filter|refus", re.IGNORECASE)
_CONTEXT_PATTERN = re.compile(r"context[ _-]?(length|window)|too many tokens|prompt is too long", re.IGNORECASE)


class ProviderError(Exception):
    """Base of every provider failure; never raised directly."""

    error_class: ClassVar[ErrorClass]

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        error_code: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.error_code = error_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.should_retry = should_retry

    def as_dict(self) -> dict[str, Any]:
        return {
            "error_class": self.error_class,
            "error_type": type(self).__name__,
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "error_code": self.error_code,
            "request_id": self.request_id,
            "message": self.message[:500],
        }

    def __str__(self) -> str:
        where = f"{self.provider}/{self.model}" if self.model else self.provider
        status = f" HTTP {self.status}" if self.status else ""
        rid = f" request_id={self.request_id}" if self.request_id else ""
        code = f" {self.error_code}" if self.error_code else ""
        return f"{where}{status}{code}: {self.message}{rid}"


class TransientProviderError(ProviderError):
    error_class: ClassVar[ErrorClass] = "transient"


class PermanentProviderError(ProviderError):
    error_class: ClassVar[ErrorClass] = "permanent"


class InvalidModelOutputError(PermanentProviderError):
    """The model answered, but its output failed validation even after a repair attempt."""


class ProviderUnavailableError(ProviderError):
    error_class: ClassVar[ErrorClass] = "provider_unavailable"


def parse_retry_after(headers: Mapping[str, str], *, cap: float = 60.0) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (preferred, finer) or ``retry-after`` (seconds or HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, min(float(raw_ms) / 1000.0, cap))
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, min(float(raw), cap))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        when = parsedate_to_datetime(raw)
        return max(0.0, min((when - datetime.now(UTC)).total_seconds(), cap))
    except (TypeError, ValueError):
        return None


def _should_retry_header(headers: Mapping[str, str]) -> bool | None:
    for key, value in headers.items():
        if key.lower() == "x-should-retry":
            if value.strip().lower() == "true":
                return True
            if value.strip().lower() == "false":
                return False
    return None


def request_id_from(headers: Mapping[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    for key in ("request-id", "x-request-id", "x-goog-request-id", "cf-ray"):
        if lowered.get(key):
            return lowered[key]
    return None


def _error_code_and_message(body: Any) -> tuple[str, str]:
    """Pull (code, message) out of any of the three providers' error envelopes."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, TypeError):
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return "", text[:500]
    if not isinstance(body, dict):
        return "", ""
    err = body.get("error", body)
    if isinstance(err, dict):
        # Anthropic: {"type":"error","error":{"type":"overloaded_error","message":...}}
        # OpenAI:    {"error":{"message":...,"type":"invalid_request_error","code":"context_length_exceeded"}}
        # Gemini:    {"error":{"code":429,"message":...,"status":"RESOURCE_EXHAUSTED"}}
        code = err.get("code") if isinstance(err.get("code"), str) else None
        status = err.get("status") if isinstance(err.get("status"), str) else None
        etype = err.get("type") if isinstance(err.get("type"), str) else None
        chosen = code if code in PERMANENT_ERROR_CODES | TRANSIENT_ERROR_CODES | PROVIDER_LEVEL_ERROR_CODES else None
        return str(chosen or status or etype or code or ""), str(err.get("message", ""))
    return "", str(err)


def classify_http_error(
    *,
    provider: str,
    model: str,
    status: int,
    headers: Mapping[str, str],
    body: Any,
    retry_after_cap: float = 60.0,
) -> ProviderError:
    """Turn a non-2xx provider answer into the one error class it belongs to.

    Precedence: an explicit permanent signal in the body (safety, context overflow, invalid request)
    wins over the status, then provider-level statuses, then transient statuses/codes, then
    ``x-should-retry``; anything else 4xx is permanent and anything else 5xx transient.
    """
    code, message = _error_code_and_message(body)
    kwargs: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "status": status,
        "error_code": code,
        "request_id": request_id_from(headers),
        "retry_after": parse_retry_after(headers, cap=retry_after_cap),
        "should_retry": _should_retry_header(headers),
    }
    text = message or f"HTTP {status}"
    if status in PROVIDER_LEVEL_STATUSES or code in PROVIDER_LEVEL_ERROR_CODES:
        return ProviderUnavailableError(text, **kwargs)
    if status not in TRANSIENT_STATUSES and (
        code in PERMANENT_ERROR_CODES or _SAFETY_PATTERN.search(message) or _CONTEXT_PATTERN.search(message)
    ):
        if not code:
            kwargs["error_code"] = (
                "safety_refusal" if _SAFETY_PATTERN.search(message) else "context_length_exceeded"
            )
        return PermanentProviderError(text, **kwargs)
    if status in TRANSIENT_STATUSES or code in TRANSIENT_ERROR_CODES:
        if kwargs["should_retry"] is False:
            return PermanentProviderError(text, **kwargs)
        return TransientProviderError(text, **kwargs)
    if kwargs["should_retry"] is True:
        return TransientProviderError(text, **kwargs)
    if 400 <= status < 500:
        return PermanentProviderError(text, **kwargs)
    return TransientProviderError(text, **kwargs)


def transport_error(provider: str, model: str, exc: BaseException) -> TransientProviderError:
    """Timeouts and connection failures below HTTP are transient by definition."""
    import httpx

    code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_reset"
    if isinstance(exc, httpx.ConnectError):
        code = "connection_error"
    return TransientProviderError(
        f"{type(exc).__name__}: {exc}" or type(exc).__name__, provider=provider, model=model, error_code=code
    )
