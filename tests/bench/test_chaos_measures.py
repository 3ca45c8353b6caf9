"""The issue 18 measures of the chaos benchmark, on hand-made traces (pure functions, no processes)."""

from __future__ import annotations

import math

import pytest

from bench.chaos import (
    SCENARIOS,
    Settings,
    arrival_interval,
    failures_with_calls_left,
    open_periods_within,
    overlapping_calls,
    recovery_measures,
    requests_for,
)
from bench.contenders import BenchConfig, ours_breaker_policy
from bench.harness import RequestResult
from resources.resilience.breaker import BreakerPolicy


def test_a_call_sent_while_the_previous_one_was_in_flight_is_a_hedge() -> None:
    trace = [
        (1, "anthropic", "m", "timeout", 0.0),  # held: in flight for the 1 s timeout
        (1, "openai", "m", "ok", 0.25),  # hedge
        (2, "anthropic", "m", "reset", 0.0),  # a reset ends at once ...
        (2, "anthropic", "m", "ok", 0.3),  # ... so this is a retry
        (3, "anthropic", "m", "ok", 0.0),
        (3, "openai", "m", "ok", 0.1),  # sent before the 0.2 s call could have answered: a hedge
        (4, "anthropic", "m", "timeout", 0.0),
        (4, "anthropic", "m", "ok", 1.05),  # after the timeout: a retry
    ]
    assert overlapping_calls(trace, latency_s=0.2, timeout_s=1.0) == 2


def _result(number: int, start: float, provider: str) -> RequestResult:
    return RequestResult(number, True, provider, "", start, start + 0.2)


def test_recovery_is_the_first_second_after_it_with_90_percent_on_the_primary() -> None:
    results = [_result(n, 100.0 + n * 0.1, "openai") for n in range(300)]  # 30 s on the fallback
    results += [_result(300 + n, 130.0 + n * 0.1, "anthropic") for n in range(300)]  # then the primary
    trace = [(0, "anthropic", "m", "overloaded", 0.5), (1, "anthropic", "m", "overloaded", 25.0)]
    measures = recovery_measures(results, start=100.0, trace=trace, recovers_at=20.0)
    assert measures["back_on_primary_s"] == 10.0
    assert measures["primary_share"] == 0.5
    assert measures["primary_calls_in_outage"] == 1  # the call at 25 s came after the recovery


def test_never_back_is_nan() -> None:
    results = [_result(n, 100.0 + n * 0.1, "openai") for n in range(300)]
    assert math.isnan(recovery_measures(results, 100.0, [], 20.0)["back_on_primary_s"])


def test_long_scenarios_get_a_workload_that_spans_their_window() -> None:
    settings = Settings()  # 16 workers, 0.2 s a call: 80 requests a second at the oracle's pace
    assert requests_for(SCENARIOS["3"], settings) == settings.requests
    assert requests_for(SCENARIOS["6"], settings) == 36 * 80
    assert requests_for(SCENARIOS["7"], settings) == 60 * 80


def test_the_long_scenarios_arrive_open_loop_at_three_quarters_of_the_workers_throughput() -> None:
    settings = Settings()  # 80 requests a second at the oracle's pace
    assert arrival_interval(SCENARIOS["6"], settings) == pytest.approx(1 / 60)
    assert arrival_interval(SCENARIOS["7"], settings) == pytest.approx(1 / 60)
    assert arrival_interval(SCENARIOS["1"], settings) == 0.0  # the short scenarios stay closed loop
    assert arrival_interval(None, settings) == 0.0  # and so does the oracle


def test_a_20_s_outage_holds_two_adaptive_open_periods_and_no_fixed_30_s_one() -> None:
    ours = ours_breaker_policy(BenchConfig(sim_url=""))
    assert ours == BreakerPolicy()  # the bench runs a user's defaults
    assert open_periods_within(20.0, ours) == 2  # probes at 5 s and 12.5 s; the next open period ends at 23.75 s
    assert open_periods_within(20.0, BreakerPolicy(first_cooldown_seconds=30.0)) == 0


def test_a_failure_counts_against_the_layer_only_when_it_had_calls_left() -> None:
    def failed(number: int) -> RequestResult:
        return RequestResult(number, False, "", "overloaded", 0.0, 1.0)

    trace = [(1, "anthropic", "m", "overloaded", 0.0)] * 3  # every allowed call drew a 503: nothing left
    trace += [(2, "anthropic", "m", "overloaded", 0.0)] * 2  # gave up after 2 of 3
    trace += [(3, "anthropic", "m", "overloaded", 0.0), (3, "openai", "m", "ok", 0.1)] + [
        (3, "gemini", "m", "overloaded", 0.2)
    ]  # a provider answered, yet the request failed
    results = [failed(1), failed(2), failed(3), failed(4)]  # 4: shed before any call
    results.append(RequestResult(5, True, "openai", "", 0.0, 0.2))
    assert failures_with_calls_left(results, trace, max_calls=3) == 3
