from __future__ import annotations

import random

import pytest

from resources.resilience.backoff import BackoffPolicy, delay_for, full_jitter_delay
from tests.resources.resilience.fakes import anthropic_error, openai_error


def test_defaults() -> None:
    assert BackoffPolicy() == BackoffPolicy(base=0.5, cap=20.0, retry_after_cap=30.0)


@pytest.mark.parametrize("attempt", [0, 1, 2, 5, 6, 40, 10_000])
def test_full_jitter_stays_under_the_exponential_ceiling(attempt: int) -> None:
    policy = BackoffPolicy()
    rng = random.Random(7)
    ceiling = min(policy.cap, policy.base * 2.0 ** min(attempt, 62))
    delays = [full_jitter_delay(attempt, policy, rng) for _ in range(200)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # full jitter uses the whole range, not just its top
    assert min(delays) < ceiling / 4 and max(delays) > ceiling * 3 / 4


def test_full_jitter_is_reproducible_with_a_seeded_rng() -> None:
    policy = BackoffPolicy()
    first = [full_jitter_delay(a, policy, random.Random(42)) for a in range(5)]
    second = [full_jitter_delay(a, policy, random.Random(42)) for a in range(5)]
    assert first == second


def test_retry_after_wins_over_jitter_and_is_capped() -> None:
    policy = BackoffPolicy(retry_after_cap=30.0)
    rng = random.Random(1)
    state = rng.getstate()
    asked_7 = openai_error(
        429, "requests", "slow down", code="rate_limit_exceeded", headers={"retry-after": "7"}
    )
    assert delay_for(asked_7, 3, policy, rng) == 7.0
    asked_50 = anthropic_error(429, "rate_limit_error", "slow down", headers={"retry-after": "50"})
    assert delay_for(asked_50, 0, policy, rng) == 30.0
    assert rng.getstate() == state  # the jitter sequence is untouched by retry-after decisions


def test_without_retry_after_delay_is_jittered() -> None:
    policy = BackoffPolicy(base=1.0, cap=8.0)
    error = anthropic_error(500, "api_error", "Internal server error")
    assert delay_for(error, 2, policy, random.Random(3)) == full_jitter_delay(2, policy, random.Random(3))


@pytest.mark.parametrize("kwargs", [{"base": 0}, {"base": 2, "cap": 1}, {"retry_after_cap": -1}])
def test_invalid_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)


def test_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError):
        full_jitter_delay(-1, BackoffPolicy(), random.Random())


def test_a_first_connection_reset_is_retried_at_once_and_a_second_waits_full_jitter() -> None:
    import httpx

    from resources.resilience.errors import transport_error

    policy = BackoffPolicy()
    reset = transport_error("anthropic", "claude-sonnet-4-6", httpx.ReadError("Connection reset by peer"))
    assert reset.error_code == "connection_reset"
    rng = random.Random(5)
    assert delay_for(reset, 0, policy, rng) == 0.0
    assert delay_for(reset, 1, policy, rng) == full_jitter_delay(1, policy, random.Random(5))
    # A refused connection says the endpoint is down, not that one connection broke: it waits.
    refused = transport_error("anthropic", "claude-sonnet-4-6", httpx.ConnectError("Connection refused"))
    assert delay_for(refused, 0, policy, random.Random(5)) == full_jitter_delay(0, policy, random.Random(5))
