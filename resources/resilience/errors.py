"""One error taxonomy for every provider.

Every failure an adapter sees becomes exactly one of three classes, decided here and nowhere else:

* ``TransientProviderError`` - worth retrying the same provider after a delay (overload, rate limit,
  5xx, timeouts, connection resets).
* ``PermanentProviderError`` - the *request* is bad; retrying it anywhere is waste (400
  ``invalid_request_error``/``INVALID_ARGUMENT``, safety refusals, context overflow, output that stays
  invalid after repair).
* ``ProviderUnavailableError`` - the *provider* is unusable for us (401/403/404, billing, a Gemini daily
  quota as ``daily_quota_exhausted``): skip it, never retry it, but other providers may still serve the
  request. Its subclass ``UnsupportedParameterError`` is narrower: the *model* does not take a parameter of
  the request (GPT-5 and ``temperature``): skip that model only. Two subclasses of it are model-level too:
  ``RequestOverRateLimitError``, a 429 for a request larger than the model's per-minute token limit itself,
  which no wait lets through, and ``ModelNotFoundError``, a 404 that names the model (retired, renamed, not
  open to the key); a 404 that names no model stays provider-level.

``ContextWindowExceededError`` (permanent) is a prompt over the *model's* context window: permanent for that
model only; the executor moves on to a model of the chain whose window is larger, and raises it only when no
model of the chain can take the prompt (the stage then splits its work).

``OutputTruncatedError`` (permanent) is not an HTTP answer: the executor raises it when an answer is still
cut at its output ceiling after the ceiling was raised to the model's limit; the stage splits its work.

``x-should-retry: false`` on a transient answer (e.g. 529 ``overloaded_error``) keeps it transient: it says
"not this provider now", never "the request is bad"; ``is_provider_overloaded`` is true for it, so the
executor moves to the next provider. Retry hints that are not finite and positive are no hint.

The error keeps what an operator needs to chase it with the provider: request id, error code, provider
message, HTTP status and any ``retry-after`` hint. Every one of those strings that came from the wire
(message, error code / status field, request id) is scrubbed of anything shaped like an API key, because
providers and proxies echo (partial) keys back and these fields reach logs, metadata and telemetry.

The resilience layer adds its own outcomes on top of the three classes: ``BreakerOpenError`` (one provider is
behind an open circuit breaker), ``AllProvidersOpenError`` (every provider of a stage's chain is; wait
``reopens_in_seconds``) and ``ChainExhaustedError`` (budget, deadline or chain ran out on transient errors).
All three are transient: the same stage may succeed later. Every error the resilience layer raises carries
the stage's ``attempts`` (a list of ``AttemptRecord``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from resources.resilience.error_class import ErrorClass

if TYPE_CHECKING:  # keep the contract import-light: adapters import this module
    from resources.resilience.telemetry import AttemptRecord

ExhaustionReason = Literal["budget", "deadline", "chain"]

# The connection broke before any answer came back (reset, closed mid-request): retried at once the first
# time (``backoff.delay_for``).
CONNECTION_RESET = "connection_reset"
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
        CONNECTION_RESET,
        "connection_error",
    }
)
PERMANENT_ERROR_CODES = frozenset(
    {
        "invalid_request_error",
        "INVALID_ARGUMENT",
        "content_policy_violation",
        "content_filter",
        "safety_refusal",
        "SAFETY",
        "context_length_exceeded",
        "request_too_large",
        "invalid_model_output",
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
        # Not the request's fault and not fixed by waiting: billing / region / key problems. OpenAI answers an
        # exhausted balance with HTTP 429 ``insufficient_quota`` (retrying burns the budget for nothing);
        # Gemini answers a bad key with HTTP 400 INVALID_ARGUMENT + ErrorInfo reason ``API_KEY_INVALID``
        # and an unsupported region / disabled billing with 400 ``FAILED_PRECONDITION``. Skipping the
        # provider lets the next one in the chain serve the request instead of failing the stage.
        "insufficient_quota",
        "API_KEY_INVALID",
        "FAILED_PRECONDITION",
        "BILLING_DISABLED",
    }
)
# Billing answers (a subset of the provider-level ones): OpenAI's 429 ``insufficient_quota`` and Google's
# ErrorInfo reason ``BILLING_DISABLED``; Anthropic's has no code of its own (400 invalid_request_error with
# "Your credit balance is too low"), so ``_BILLING_PATTERN`` below recognizes it by its message.
BILLING_ERROR_CODES = frozenset({"insufficient_quota", "BILLING_DISABLED"})
# Why a provider that refused billing is parked (skipped by every caller, ``BillingError``).
BILLING_REFUSED = "billing_refused"
_KNOWN_ERROR_CODES = PERMANENT_ERROR_CODES | TRANSIENT_ERROR_CODES | PROVIDER_LEVEL_ERROR_CODES
# "This model does not take that parameter" (OpenAI's GPT-5 family and o-series on a non-default temperature
# or on the legacy ``max_tokens``): a verdict on the model, not on the request or the provider. Another
# model of the chain, even of the same provider, may serve the same request.
MODEL_LEVEL_ERROR_CODES = frozenset({"unsupported_value", "unsupported_parameter"})
_KNOWN_ERROR_CODES = _KNOWN_ERROR_CODES | MODEL_LEVEL_ERROR_CODES
_MODEL_CAPABILITY_PATTERN = re.compile(
    r"(is )?not supported (with|by|for) this model|only the default \(\S+\) value is supported", re.IGNORECASE
)
# Overload answers mean the provider as a whole is shedding load: its other models will not fare better.
OVERLOAD_STATUSES = frozenset({503, 529})
OVERLOAD_ERROR_CODES = frozenset({"overloaded_error", "UNAVAILABLE", "engine_overloaded"})
_SAFETY_PATTERN = re.compile(r"safety|content[ _-]?policy|content[ _-]?filter|refus", re.IGNORECASE)
_OVER_RATE_LIMIT_PATTERN = re.compile(
    r"request too large for .* per (min|day)|tokens must be reduced in order to run", re.IGNORECASE
)
# How each provider's 404 names the model: Anthropic "model: M", OpenAI "The model `M` does not exist",
# Gemini "models/M is not found for API version ...".
_MODEL_NOT_FOUND_PATTERN = re.compile(r"^model: \S+|the model `[^`]+` does not exist|models/\S+ is not found", re.I)
_CONTEXT_PATTERN = re.compile(
    r"context[ _-]?(length|window|limit)|too many tokens|prompt is too long|exceeds the maximum number of tokens",
    re.IGNORECASE,
)
# Codes by which a provider says the prompt (plus the output ceiling) is larger than the model's window.
CONTEXT_ERROR_CODES = frozenset({"context_length_exceeded", "request_too_large"})
# Anthropic answers an empty balance with 400 invalid_request_error "Your credit balance is too low ...".
# Only consulted for non-transient statuses: Gemini's ordinary per-minute 429 says "check your plan and
# billing details" too, and that one *is* worth waiting for.
_BILLING_PATTERN = re.compile(r"credit balance|spend(ing)? limit|enable billing", re.IGNORECASE)
# Things shaped like credentials: OpenAI/Anthropic ``sk-...``, Google ``AIza...``, bearer tokens.
_SECRET_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{6,}|AIza[0-9A-Za-z_\-]{10,}|(?i:bearer)\s+[A-Za-z0-9._\-~+/]{8,}=*)"
)


# Gemini's daily quota: the same 429 RESOURCE_EXHAUSTED as the per-minute limit; only the QuotaFailure
# violation's ``quotaId`` (``GenerateRequestsPerDayPerProjectPerModel-FreeTier``) tells it apart. Waiting
# seconds does not help, and per-day quotas reset at midnight Pacific time (Gemini API rate-limit docs).
DAILY_QUOTA_EXHAUSTED = "daily_quota_exhausted"
# OpenAI's 429 "Request too large for MODEL ... on tokens per min (TPM): Limit L, Requested R. The input or output
# tokens must be reduced": the request *alone* is larger than the organization's per-minute limit for that model,
# so no wait lets it through. Same status and ``code`` (``rate_limit_exceeded``) as an ordinary rate limit; only
# the message tells it apart.
REQUEST_OVER_RATE_LIMIT = "request_over_rate_limit"
# A 404 that names the model (Anthropic ``not_found_error`` "model: M", OpenAI ``model_not_found``, Gemini
# ``NOT_FOUND`` "models/M is not found"): that model was retired, renamed or is not open to this key.
MODEL_NOT_FOUND = "model_not_found"
_PER_DAY_QUOTA = re.compile(r"PerDay", re.IGNORECASE)
_QUOTA_RESET_ZONE = ZoneInfo("America/Los_Angeles")


def redact_secrets(text: str) -> str:
    """Replace anything shaped like an API key or bearer token with ``[REDACTED]``."""
    return _SECRET_PATTERN.sub("[REDACTED]", text)


def _redact_optional(text: str | None) -> str | None:
    return None if text is None else redact_secrets(text)


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
        # Every string that may have come from the wire is scrubbed, not just the message: a proxy can echo a
        # key into a status field or an x-request-id, and those reach str(error), metadata and telemetry.
        message = redact_secrets(message)
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.error_code = redact_secrets(error_code)
        self.request_id = _redact_optional(request_id)
        self.retry_after = retry_after
        self.should_retry = should_retry
        # Filled by the resilience layer: every attempt the stage made before this error surfaced.
        self.attempts: list[AttemptRecord] = []

    def __reduce__(self) -> tuple[Any, ...]:
        # The default pickling re-calls ``cls(*self.args)`` and drops every keyword field (provider, status,
        # attempts...); errors cross process boundaries (multiprocess executors), so rebuild from __dict__.
        return (_rebuild_error, (type(self), self.message, dict(self.__dict__)))

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


class BillingError(ProviderUnavailableError):
    """The provider refuses to bill us (no credit, quota used up, billing disabled): provider-level.

    Not retried and not a breaker failure (the provider is up); the executor skips the provider and parks it
    in the breaker store (reason ``billing_refused``) so no worker calls it again until the hold ends. The
    message starts with what the operator must do: "add credit to <provider>".
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        provider = kwargs.get("provider") or "the provider"
        super().__init__(f"add credit to {provider} (billing refused the call): {message}", **kwargs)


class UnsupportedParameterError(ProviderUnavailableError):
    """The model does not accept a parameter of the request (e.g. ``temperature`` on GPT-5): model-level.

    Not a verdict on the request (another model may take it unchanged) nor on the provider (its other models
    may take it): the executor falls to the next model of the chain without retrying or excluding the
    provider. It is a ``ProviderUnavailableError`` so that, if it ends a stage, it is reported and treated
    as "no usable model" rather than as a bad request.
    """


class RequestOverRateLimitError(UnsupportedParameterError):
    """The request alone is larger than the organization's per-minute (or per-day) token limit for the model:
    OpenAI's 429 "Request too large for MODEL ... on tokens per min (TPM): Limit L, Requested R".

    A 429 like a rate limit, but no wait lets it through, so retrying it is waste. The limit is per model, so
    like ``UnsupportedParameterError`` it is model-level: the executor falls to the next model (the provider's
    own included) without a retry, and the breaker counts the answer as a success (the provider is up).
    ``error_code`` is ``request_over_rate_limit``.
    """


class ModelNotFoundError(UnsupportedParameterError):
    """A 404 that names the model: it was retired or renamed, or is not open to this key (``model_not_found``).

    Providers retire models one at a time, so this says nothing of the provider's other models: model-level,
    like ``UnsupportedParameterError`` (the executor falls to the next model, the provider's own included,
    without a retry; the breaker counts the answer as a success). A 404 that names no model (a wrong base URL)
    stays provider-level.
    """


class ContextWindowExceededError(PermanentProviderError):
    """The prompt (with the output ceiling it asks for) does not fit the model's context window.

    Permanent for this model, not for the request: a model with a larger window may take it unchanged, so the
    executor falls to the next model whose window is larger. It ends a stage only when no model of the chain
    can take the prompt; the stage then splits its work. ``error_code`` stays the provider's own
    (``context_length_exceeded``, Anthropic's ``invalid_request_error``, Gemini's ``INVALID_ARGUMENT``).
    """


def is_context_overflow(error: ProviderError) -> bool:
    """Does ``error`` say the prompt is larger than the model's context window?"""
    return isinstance(error, ContextWindowExceededError) or (
        isinstance(error, PermanentProviderError) and error.error_code in CONTEXT_ERROR_CODES
    )


class OutputTruncatedError(PermanentProviderError):
    """The answer was cut at its output ceiling even after the ceiling was raised to the model's limit.

    Permanent for the request as it stands: resending it anywhere pays for the same cut-off answer again
    (a fallback model with a smaller output limit cannot help). The stage catches this and splits its work
    into smaller requests. ``max_tokens`` is the ceiling of the last request, ``output_tokens`` what the
    provider reported using of it.
    """

    code: ClassVar[str] = "output_truncated"

    def __init__(
        self,
        *,
        provider: str,
        model: str,
        max_tokens: int,
        output_tokens: int,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            f"answer truncated at the output ceiling ({output_tokens} of max_tokens={max_tokens} used); "
            "split the request",
            provider=provider,
            model=model,
            status=200,
            error_code=self.code,
            request_id=request_id,
        )
        self.max_tokens = max_tokens
        self.output_tokens = output_tokens


class BreakerOpenError(TransientProviderError):
    """The provider's circuit breaker is open (or its half-open probes are all taken) until ``reopens_at``.

    ``reopens_at`` is an epoch timestamp from the breaker's clock, comparable across processes.
    """

    def __init__(self, provider: str, reopens_at: float) -> None:
        super().__init__(
            f"circuit breaker open until {reopens_at:.3f}", provider=provider, error_code="breaker_open"
        )
        self.reopens_at = reopens_at


class ProviderWarmingError(BreakerOpenError):
    """The provider has no proven health yet and its warm-up budget of calls in flight is taken.

    Not an outage: the caller should move on to the next provider of its chain for this call (see the
    cold-start rule in ``breaker.py``). ``reopens_at`` is when the soonest warm-up lease runs out.
    """

    def __init__(self, provider: str, reopens_at: float) -> None:
        TransientProviderError.__init__(
            self,
            f"provider warming up: its warm-up budget is taken (soonest lease ends {reopens_at:.3f})",
            provider=provider,
            error_code="provider_warming",
        )
        self.reopens_at = reopens_at


class ProviderParkedError(BreakerOpenError):
    """The provider is parked until ``reopens_at`` for a provider-level reason that is no outage (``reason``,
    e.g. ``daily_quota_exhausted``): skip it for this call; do not wait for it either."""

    def __init__(self, provider: str, reopens_at: float, reason: str) -> None:
        TransientProviderError.__init__(
            self, f"provider parked ({reason}) until {reopens_at:.3f}", provider=provider, error_code=reason
        )
        self.reopens_at = reopens_at


def describe_reasons(reasons: Mapping[str, str]) -> str:
    """``anthropic: provider_warming, openai: breaker_open``: every provider of a chain and why it did not serve."""
    return ", ".join(
        f"{provider}: {why}" + (f", add credit to {provider}" if why == BILLING_REFUSED else "")
        for provider, why in reasons.items()
    )


class AllProvidersOpenError(TransientProviderError):
    """Every provider of the stage's chain is behind an open breaker (or otherwise unusable): nothing was called.

    ``reopens_in_seconds`` is the soonest any of them may be tried again; the orchestration layer should
    reschedule the step after it (Dagster ``RetryRequested(seconds_to_wait=...)``) instead of failing.
    ``providers`` are the ones behind an open breaker; ``reasons`` names every provider of the chain and why.
    """

    def __init__(
        self,
        stage: str,
        reopens_in_seconds: float,
        *,
        providers: tuple[str, ...] = (),
        reasons: Mapping[str, str] | None = None,
    ) -> None:
        reasons = dict(reasons) if reasons else {p: "breaker_open" for p in providers}
        super().__init__(
            f"stage {stage!r}: no provider could be called ({describe_reasons(reasons)}); "
            f"soonest breaker reopens in {reopens_in_seconds:.1f}s",
            error_code="all_providers_open",
            retry_after=reopens_in_seconds,
        )
        self.stage = stage
        self.reopens_in_seconds = reopens_in_seconds
        self.providers = providers
        self.reasons = reasons


class ChainExhaustedError(TransientProviderError):
    """The stage's attempt budget, deadline or fallback chain ran out while failures were transient.

    ``reason`` is ``"budget"``, ``"deadline"`` or ``"chain"``; ``last_error`` is the last provider failure;
    ``reasons`` names every provider of the chain and why it did not serve.
    """

    def __init__(
        self,
        stage: str,
        reason: ExhaustionReason,
        *,
        last_error: ProviderError | None = None,
        reasons: Mapping[str, str] | None = None,
    ) -> None:
        detail = f"; last error: {last_error}" if last_error is not None else ""
        providers = f" ({describe_reasons(reasons)})" if reasons else ""
        super().__init__(
            f"stage {stage!r}: fallback chain exhausted ({reason}){providers}{detail}",
            provider=last_error.provider if last_error else "",
            model=last_error.model if last_error else "",
            status=last_error.status if last_error else None,
            error_code="chain_exhausted",
            request_id=last_error.request_id if last_error else None,
        )
        self.stage = stage
        self.reason = reason
        self.last_error = last_error
        self.reasons = dict(reasons or {})


def _rebuild_error(cls: type[ProviderError], message: str, state: dict[str, Any]) -> ProviderError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def is_provider_overloaded(error: ProviderError) -> bool:
    """True when the answer says the whole provider is shedding load (529 / 503 / overloaded / UNAVAILABLE),
    or tells us not to retry it now (a transient answer with ``x-should-retry: false``).

    A rate limit (429) is per model or per key and is *not* an overload: another model of the same provider
    may still answer.
    """
    return isinstance(error, TransientProviderError) and (
        error.status in OVERLOAD_STATUSES
        or error.error_code in OVERLOAD_ERROR_CODES
        or error.should_retry is False
    )


def _usable_hint(seconds: float, cap: float) -> float | None:
    """A wait worth honouring: finite and positive (capped), else None. A hint of 0 or less would send every
    worker that failed together back at the same instant, without jitter; NaN/inf are no information."""
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, cap)


def parse_http_date(raw: str) -> datetime | None:
    """An HTTP date in any RFC 7231 form (IMF-fixdate, RFC 850, asctime), also with a numeric zone such as
    ``-0000`` / ``+0000``; naive results are UTC (RFC 7231: HTTP dates are always GMT). None if unparsable."""
    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    # email.utils reads "-0000" (and asctime, which carries no zone) as "zone unknown" and returns a naive
    # datetime; in HTTP every date is GMT.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def parse_retry_after(
    headers: Mapping[str, str], *, cap: float = 60.0, now: datetime | None = None
) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (preferred, finer) or ``retry-after`` (seconds / HTTP date).

    A value that is not a finite positive number (``nan``, ``inf``, ``0``, negative, a date in the past) is
    "no hint" and does not hide the other header. ``now`` (aware) is for tests; default the current time.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms", "").strip()
    if raw_ms:
        try:
            hint = _usable_hint(float(raw_ms) / 1000.0, cap)
        except ValueError:
            hint = None
        if hint is not None:
            return hint
    raw = lowered.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        return _usable_hint(float(raw), cap)
    except ValueError:
        pass
    when = parse_http_date(raw)
    if when is None:
        return None
    return _usable_hint((when - (now or datetime.now(UTC))).total_seconds(), cap)


def seconds_until_daily_quota_reset(now: datetime | None = None) -> float:
    """Seconds from ``now`` (aware; default the current time) to the next midnight Pacific time."""
    local = (now or datetime.now(UTC)).astimezone(_QUOTA_RESET_ZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=_QUOTA_RESET_ZONE)
    return max(1.0, (midnight - local).total_seconds())


def is_daily_quota(body: Any) -> bool:
    """True for a Google ``RESOURCE_EXHAUSTED`` whose QuotaFailure names a per-day quota (``...PerDay...``)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, TypeError):
            return False
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or err.get("status") != "RESOURCE_EXHAUSTED":
        return False
    details = err.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            continue
        violations = detail.get("violations")
        for violation in violations if isinstance(violations, list) else ():
            if isinstance(violation, dict) and _PER_DAY_QUOTA.search(str(violation.get("quotaId", ""))):
                return True
    return False


def _should_retry_header(headers: Mapping[str, str]) -> bool | None:
    for key, value in headers.items():
        if key.lower() == "x-should-retry":
            if value.strip().lower() == "true":
                return True
            if value.strip().lower() == "false":
                return False
    return None


def request_id_from(headers: Mapping[str, str]) -> str | None:
    """The provider's request id header, scrubbed (a proxy may echo the key into it)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for key in ("request-id", "x-request-id", "x-goog-request-id", "cf-ray"):
        if lowered.get(key):
            return redact_secrets(lowered[key])
    return None


_HTML_HEADING = re.compile(r"<(title|h1)[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]+>")


def _text_of_page(text: str) -> str:
    """A non-JSON error body as one line: an HTML page (a CDN's or proxy's, e.g. Cloudflare's "502 Bad
    Gateway") by its title or first heading, else the text without markup; at most 500 characters."""
    if "<" in text and (heading := _HTML_HEADING.search(text)):
        title = " ".join(_HTML_TAG.sub(" ", heading.group(2)).split())
        if title:
            return title[:500]
    return " ".join(_HTML_TAG.sub(" ", text).split())[:500]


def _error_code_and_message(body: Any) -> tuple[str, str]:
    """Pull (code, message) out of any of the three providers' error envelopes (or a proxy's page)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, TypeError):
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return "", _text_of_page(text)
    if isinstance(body, list) and len(body) == 1:
        # Gemini's streaming endpoints wrap the error envelope in a one-element JSON array.
        body = body[0]
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
        chosen = code if code in _KNOWN_ERROR_CODES else None
        reason = _provider_level_reason(err.get("details"))
        return str(reason or chosen or status or etype or code or ""), str(err.get("message", ""))
    return "", str(err)


def _provider_level_reason(details: Any) -> str | None:
    """A Google ``ErrorInfo.reason`` that marks a provider-level problem (e.g. ``API_KEY_INVALID``)."""
    if not isinstance(details, list):
        return None
    for item in details:
        if isinstance(item, dict) and item.get("reason") in PROVIDER_LEVEL_ERROR_CODES:
            return str(item["reason"])
    return None


def classify_http_error(
    *,
    provider: str,
    model: str,
    status: int,
    headers: Mapping[str, str],
    body: Any,
    retry_after_cap: float = 60.0,
    now: datetime | None = None,
) -> ProviderError:
    """Turn a non-2xx provider answer into the one error class it belongs to.

    Precedence: a per-day quota (provider-level ``daily_quota_exhausted``, ``retry_after`` = seconds to the
    quota's reset) first; then a 429 for a request larger than the rate limit itself (model-level
    ``RequestOverRateLimitError``, ``request_over_rate_limit``); then a 404 that names the model (model-level
    ``ModelNotFoundError``, ``model_not_found``); then a model-level capability answer
    (``unsupported_value`` / ``unsupported_parameter`` or "not supported with this model" on a non-transient
    4xx other than 401/403/404 -> ``UnsupportedParameterError``); then provider-level statuses/codes (incl. billing and
    bad-key answers); then, unless the status itself is transient, an explicit permanent signal in the body
    (safety, context overflow, invalid request); then transient statuses/codes (``x-should-retry: false``
    keeps them transient: it says "not this provider now", which the executor answers by moving to the next
    provider, never "the request is bad"); then ``x-should-retry: true``; anything else 4xx is permanent and
    anything else 5xx transient. ``now`` (aware) is for tests.
    """
    code, message = _error_code_and_message(body)
    kwargs: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "status": status,
        "error_code": code,
        "request_id": request_id_from(headers),
        "retry_after": parse_retry_after(headers, cap=retry_after_cap, now=now),
        "should_retry": _should_retry_header(headers),
    }
    text = message or f"HTTP {status}"
    if status == 429 and is_daily_quota(body):
        kwargs["error_code"] = DAILY_QUOTA_EXHAUSTED
        kwargs["retry_after"] = seconds_until_daily_quota_reset(now)
        return ProviderUnavailableError(text, **kwargs)
    if status == 429 and _OVER_RATE_LIMIT_PATTERN.search(message):
        kwargs["error_code"] = REQUEST_OVER_RATE_LIMIT
        kwargs["retry_after"] = None
        return RequestOverRateLimitError(text, **kwargs)
    if status == 404 and (code == MODEL_NOT_FOUND or _MODEL_NOT_FOUND_PATTERN.search(message)):
        kwargs["error_code"] = MODEL_NOT_FOUND
        return ModelNotFoundError(text, **kwargs)
    if status not in TRANSIENT_STATUSES and status not in PROVIDER_LEVEL_STATUSES and (
        code in MODEL_LEVEL_ERROR_CODES or _MODEL_CAPABILITY_PATTERN.search(message)
    ):
        return UnsupportedParameterError(text, **kwargs)
    if (
        status in PROVIDER_LEVEL_STATUSES
        or code in PROVIDER_LEVEL_ERROR_CODES
        or (status not in TRANSIENT_STATUSES and _BILLING_PATTERN.search(message))
    ):
        if code in BILLING_ERROR_CODES or (status not in TRANSIENT_STATUSES and _BILLING_PATTERN.search(message)):
            return BillingError(text, **kwargs)
        return ProviderUnavailableError(text, **kwargs)
    if status not in TRANSIENT_STATUSES and (
        code in PERMANENT_ERROR_CODES or _SAFETY_PATTERN.search(message) or _CONTEXT_PATTERN.search(message)
    ):
        context = code in CONTEXT_ERROR_CODES or (
            not _SAFETY_PATTERN.search(message) and bool(_CONTEXT_PATTERN.search(message))
        )
        if not code:
            kwargs["error_code"] = "context_length_exceeded" if context else "safety_refusal"
        return (ContextWindowExceededError if context else PermanentProviderError)(text, **kwargs)
    if status in TRANSIENT_STATUSES or code in TRANSIENT_ERROR_CODES:
        return TransientProviderError(text, **kwargs)
    if kwargs["should_retry"] is True:
        return TransientProviderError(text, **kwargs)
    if 400 <= status < 500:
        return PermanentProviderError(text, **kwargs)
    return TransientProviderError(text, **kwargs)


def transport_error(provider: str, model: str, exc: BaseException) -> TransientProviderError:
    """Timeouts and connection failures below HTTP are transient by definition."""
    import httpx

    code = "timeout" if isinstance(exc, httpx.TimeoutException) else CONNECTION_RESET
    if isinstance(exc, httpx.ConnectError):
        code = "connection_error"
    detail = str(exc)
    message = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return TransientProviderError(message, provider=provider, model=model, error_code=code)
