"""The chaos benchmark, shrunk to seconds: it runs end to end and counts what it claims to count.

Real processes and real HTTP on loopback (the benchmark's own simulator process and spawned workers);
only behavioural facts are asserted, never timings.
"""

from __future__ import annotations

import pytest

from bench.chaos import SCENARIOS, Layout, Settings, run_all
from bench.workload import is_refusal_candidate

pytestmark = pytest.mark.slow

SETTINGS = Settings(requests=20, concurrency=4, latency_s=0.02, window_scale=1.0)


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], object]:
    metrics = run_all(SETTINGS, [SCENARIOS["1"], SCENARIOS["4"]], ["ours", "naive"], [Layout(2, 2)], log=lambda _: None)
    return {(m.scenario, m.contender): m for m in metrics}


def test_the_oracle_serves_every_request(runs: dict) -> None:
    oracle = runs[("oracle", "oracle")]
    assert (oracle.succeeded, oracle.failed) == (SETTINGS.requests, 0)


def test_ours_never_retries_a_refusal_and_fails_only_the_refused_requests(runs: dict) -> None:
    ours = runs[("4", "ours")]
    refused = sum(1 for n in range(SETTINGS.requests) if is_refusal_candidate(n))
    assert refused >= 1
    assert ours.permanent_retries == 0
    assert ours.failed == refused
    assert all(reason.startswith("permanent:") for reason in ours.failures)


def test_the_permanent_retry_count_sees_a_contender_that_retries_refusals(runs: dict) -> None:
    assert runs[("4", "naive")].permanent_retries > 0


def test_ours_serves_everything_from_the_fallback_while_the_primary_answers_529(runs: dict) -> None:
    ours = runs[("1", "ours")]
    assert ours.failed == 0
    assert "anthropic" not in ours.served_by
    assert 1 <= ours.down_provider_calls <= ours.total_calls


def test_every_run_is_priced_and_a_served_request_costs_something(runs: dict) -> None:
    for metrics in runs.values():
        assert metrics.cost_usd > 0 and metrics.usd_per_success > 0
