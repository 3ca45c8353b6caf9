"""The taxonomy decides every provider answer's class; these are the providers' real error envelopes."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from resources.resilience.errors import (
    AllProvidersOpenError,
    BreakerOpenError,
    ChainExhaustedError,
    InvalidModelOutputError,
    PermanentProviderError,
    ProviderUnavailableError,
    TransientProviderError,
    is_provider_overloaded,
    parse_retry_after,
    redact_secrets,
    request_id_from,
    transport_error,
)
from resources.resilience.telemetry import AttemptRecord
from tests.resources.resilience.fakes import anthropic_error, gemini_error, http_error, openai_error


def test_anthropic_529_overloaded_is_transient_overload_with_request_id() -> None:
    error = anthropic_error(529, "overloaded_error", "Overloaded")
    assert isinstance(error, TransientProviderError)
    assert error.error_code == "overloaded_error"
    assert error.status == 529
    assert error.request_id == "req_011CTest"
    assert is_provider_overloaded(error)


def test_rate_limits_are_transient_but_not_overload() -> None:
    error = openai_error(
        429,
        "requests",
        "Rate limit reached",
        code="rate_limit_exceeded",
        headers={"retry-after-ms": "1500", "retry-after": "9"},
    )
    assert isinstance(error, TransientProviderError)
    assert error.retry_after == pytest.approx(1.5)  # the finer header wins
    assert not is_provider_overloaded(error)


def test_gemini_per_minute_quota_429_is_transient_despite_mentioning_billing() -> None:
    error = gemini_error(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more information "
        "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    )
    assert isinstance(error, TransientProviderError)
    assert error.error_code == "RESOURCE_EXHAUSTED"


def test_gemini_unavailable_is_overload_even_wrapped_in_a_list() -> None:
    body = [{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}]
    error = http_error("gemini", 503, body)
    assert isinstance(error, TransientProviderError)
    assert error.error_code == "UNAVAILABLE"
    assert error.message == "The model is overloaded."
    assert is_provider_overloaded(error)


@pytest.mark.parametrize(
    "error",
    [
        anthropic_error(400, "invalid_request_error", "Output blocked by content filtering policy"),
        openai_error(
            400,
            "invalid_request_error",
            "This model's maximum context length is 128000 tokens",
            code="context_length_exceeded",
        ),
        gemini_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
        http_error(
            "anthropic", 413, {"type": "error", "error": {"type": "request_too_large", "message": "big"}}
        ),
        http_error("openai", 418, "I'm a teapot"),
    ],
)
def test_bad_requests_are_permanent(error: Exception) -> None:
    assert isinstance(error, PermanentProviderError)


def test_safety_message_without_code_gets_a_safety_code() -> None:
    error = http_error(
        "openai", 422, {"error": {"message": "Your request was rejected by our safety system"}}
    )
    assert isinstance(error, PermanentProviderError)
    assert error.error_code == "safety_refusal"


@pytest.mark.parametrize(
    "error",
    [
        anthropic_error(401, "authentication_error", "invalid x-api-key"),
        anthropic_error(403, "permission_error", "no access"),
        openai_error(
            404, "invalid_request_error", "The model `gpt-9` does not exist", code="model_not_found"
        ),
        # OpenAI answers an empty balance with 429; waiting does not refill it.
        openai_error(
            429,
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
            code="insufficient_quota",
        ),
        # Anthropic answers an empty balance with 400 invalid_request_error.
        anthropic_error(400, "invalid_request_error", "Your credit balance is too low to access the API."),
        # Gemini answers a bad key with 400 INVALID_ARGUMENT + ErrorInfo API_KEY_INVALID.
        http_error(
            "gemini",
            400,
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ],
                }
            },
        ),
        gemini_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
    ],
)
def test_provider_level_problems_are_provider_unavailable(error: Exception) -> None:
    assert isinstance(error, ProviderUnavailableError)


def test_x_should_retry_false_skips_the_provider_but_never_makes_the_request_permanent() -> None:
    no_retry = http_error("anthropic", 500, "boom", {"x-should-retry": "false"})
    assert isinstance(no_retry, TransientProviderError)
    assert is_provider_overloaded(no_retry)  # the executor moves on to the next provider
    assert isinstance(http_error("anthropic", 400, "hmm", {"x-should-retry": "true"}), TransientProviderError)


def test_unknown_5xx_is_transient() -> None:
    assert isinstance(http_error("openai", 520, "<html>cloudflare</html>"), TransientProviderError)


def test_retry_after_http_date_and_cap() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after({"Retry-After": soon}, cap=30.0) == 30.0
    assert parse_retry_after({"retry-after": "-5"}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_request_id_headers() -> None:
    assert request_id_from({"X-Request-Id": "abc"}) == "abc"
    assert request_id_from({}) is None


def test_transport_errors_are_transient() -> None:
    assert transport_error("openai", "gpt-4.1", httpx.ReadTimeout("slow")).error_code == "timeout"
    assert (
        transport_error("openai", "gpt-4.1", httpx.ConnectError("refused")).error_code == "connection_error"
    )
    reset = transport_error("openai", "gpt-4.1", httpx.RemoteProtocolError(""))
    assert reset.error_code == "connection_reset"
    assert reset.message == "RemoteProtocolError"


def test_keys_echoed_by_providers_are_redacted_everywhere() -> None:
    error = openai_error(
        401,
        "invalid_request_error",
        "Incorrect API key provided: sk-proj-abc123****wxyz.",
        code="invalid_api_key",
    )
    assert "sk-proj" not in error.message and "sk-proj" not in str(error)
    assert "sk-proj" not in repr(error.as_dict())
    assert redact_secrets("key=AIzaSyA1234567890abcdef and Bearer abcdefgh12345") == (
        "key=[REDACTED] and [REDACTED]"
    )


def _record() -> AttemptRecord:
    return AttemptRecord(
        ts=1.0,
        stage="normalize",
        attempt=1,
        provider="anthropic",
        model="claude-sonnet-4-6",
        outcome="error",
        decision="fallback_next_provider",
    )


def test_errors_survive_pickling_with_all_fields() -> None:
    error = anthropic_error(529, "overloaded_error", "Overloaded", headers={"retry-after": "3"})
    error.attempts = [_record()]
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is TransientProviderError
    assert (clone.provider, clone.status, clone.error_code, clone.retry_after, clone.request_id) == (
        "anthropic",
        529,
        "overloaded_error",
        3.0,
        "req_011CTest",
    )
    assert clone.attempts == error.attempts
    assert str(clone) == str(error)

    exhausted = ChainExhaustedError("normalize", "budget", last_error=error)
    clone2 = pickle.loads(pickle.dumps(exhausted))
    assert isinstance(clone2, ChainExhaustedError) and clone2.reason == "budget"
    assert clone2.last_error is not None and clone2.last_error.status == 529


def test_layer_errors_are_transient_and_informative() -> None:
    opened = BreakerOpenError("anthropic", 1234.5)
    assert (
        opened.error_class == "transient" and opened.reopens_at == 1234.5 and opened.provider == "anthropic"
    )

    all_open = AllProvidersOpenError("normalize", 12.5, providers=("anthropic", "openai"))
    assert all_open.error_class == "transient"
    assert all_open.reopens_in_seconds == all_open.retry_after == 12.5
    assert "anthropic" in str(all_open)

    last = openai_error(500, "server_error", "oops")
    exhausted = ChainExhaustedError("extract_scenes", "deadline", last_error=last)
    assert exhausted.error_class == "transient"
    assert exhausted.last_error is last and exhausted.status == 500 and exhausted.attempts == []

    invalid = InvalidModelOutputError("bad json", provider="openai", error_code="invalid_model_output")
    assert invalid.error_class == "permanent"
