"""How long to wait before retrying the same model.

Three rules, in this order:

1. A connection reset (the connection broke before any answer came back: ``connection_reset``) is retried
   at once the first time. A reset is most often a property of that one connection (a keep-alive
   connection a load balancer or proxy dropped, one replica restarting), not of the provider's load, and
   the retry goes out on a fresh connection; waiting first only adds the backoff to the request's latency.
   The second reset in a row waits like any other failure (urllib3's ``Retry`` likewise sleeps nothing
   before its first retry), and a provider that resets everything still meets the breaker and the
   fleet's retry budget.
2. If the provider said how long (``retry-after`` / ``retry-after-ms``, already parsed onto the error as
   ``retry_after``; only a finite, positive hint counts), wait that long, but never more than
   ``retry_after_cap``: a provider asking for minutes is better answered by falling back than by sleeping
   (the caller compares the delay with its deadline).
3. Otherwise AWS "full jitter": ``uniform(0, min(cap, base * 2**attempt))``. Full jitter spreads the
   retries of many workers that failed together, which is what an overload needs.

tenacity's ``wait_random_exponential`` computes the same curve, but it cannot see the error's
``retry_after`` and wants to own the retry loop; our loop also decides fallbacks, so only the arithmetic
is needed, and it is two lines. The random source is injected so tests and benchmarks are deterministic.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from resources.resilience.errors import CONNECTION_RESET, ProviderError

DEFAULT_BASE_SECONDS = 0.5
DEFAULT_CAP_SECONDS = 20.0
DEFAULT_RETRY_AFTER_CAP_SECONDS = 30.0

# 2**62 * base already dwarfs any cap; stopping the exponent here keeps the float finite for any attempt.
_MAX_EXPONENT = 62


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Backoff parameters, in seconds.

    Defaults: ``base`` 0.5 s, ``cap`` 20 s (the jittered ceiling), ``retry_after_cap`` 30 s.
    """

    base: float = DEFAULT_BASE_SECONDS
    cap: float = DEFAULT_CAP_SECONDS
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP_SECONDS

    def __post_init__(self) -> None:
        if self.base <= 0:
            raise ValueError(f"base must be > 0, got {self.base}")
        if self.cap < self.base:
            raise ValueError(f"cap ({self.cap}) must be >= base ({self.base})")
        if self.retry_after_cap < 0:
            raise ValueError(f"retry_after_cap must be >= 0, got {self.retry_after_cap}")


def full_jitter_delay(attempt: int, policy: BackoffPolicy, rng: random.Random) -> float:
    """AWS full jitter for the ``attempt``-th retry (0-based): uniform(0, min(cap, base * 2**attempt))."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    ceiling = min(policy.cap, policy.base * 2.0 ** min(attempt, _MAX_EXPONENT))
    return rng.uniform(0.0, ceiling)


def delay_for(error: ProviderError, attempt: int, policy: BackoffPolicy, rng: random.Random) -> float:
    """The wait before the ``attempt``-th retry (0-based) after ``error``: none for a first connection reset,
    else its ``retry_after`` (capped) if any, else full jitter.

    The rng is not consumed when ``retry_after`` decides, so a seeded sequence only depends on the
    jittered retries. A ``retry_after`` that is not finite and positive is no hint: a wait of 0 would send
    every worker that failed together back in lockstep, so those get full jitter like an answer without one.
    """
    if attempt == 0 and error.error_code == CONNECTION_RESET:
        return 0.0
    hint = error.retry_after
    if hint is not None and math.isfinite(hint) and hint > 0:
        return min(hint, policy.retry_after_cap)
    return full_jitter_delay(attempt, policy, rng)
