"""The chaos benchmark's cost column: every call of a run priced from the same table as the pipeline."""

from __future__ import annotations

import math
from datetime import date

import pytest

from bench.chaos import request_usage, trace_cost
from resources.providers.prices import ModelPrice, PriceTable

TABLE = PriceTable(
    [
        ModelPrice(provider="anthropic", model="claude-sonnet-4-6", input_per_mtok=3.0, output_per_mtok=15.0),
        ModelPrice(provider="openai", model="gpt-4.1", input_per_mtok=2.0, output_per_mtok=8.0),
    ],
    date(2026, 11, 30),
)


def usd(rate_in: float, rate_out: float, number: int, *, prompt_only: bool = False) -> float:
    usage = request_usage(number)
    return (usage.input_tokens * rate_in + (0 if prompt_only else usage.output_tokens) * rate_out) / 1e6


def test_answered_calls_are_billed_in_full_refusals_for_their_prompt_and_failures_not_at_all() -> None:
    trace = [
        (0, "anthropic", "claude-sonnet-4-6", "overloaded", 0.0),  # 529: not billed
        (0, "openai", "gpt-4.1", "ok", 0.1),
        (1, "anthropic", "claude-sonnet-4-6", "ok", 0.2),
        (7, "anthropic", "claude-sonnet-4-6", "safety", 0.3),  # a refusal: prompt billed, no answer
        (7, "openai", "gpt-4.1", "reset", 0.4),
    ]
    expected = usd(2.0, 8.0, 0) + usd(3.0, 15.0, 1) + usd(3.0, 15.0, 7, prompt_only=True)
    assert trace_cost(trace, TABLE) == pytest.approx(expected)
    assert request_usage(0).input_tokens > 0 and request_usage(0).output_tokens > 0


def test_a_run_on_an_unpriced_model_has_no_cost_rather_than_a_low_one() -> None:
    assert math.isnan(trace_cost([(0, "gemini", "gemini-3-flash-preview", "ok", 0.0)], TABLE))
