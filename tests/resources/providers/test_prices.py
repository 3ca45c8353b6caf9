"""The price table: every chain model priced, the arithmetic, unpriced is not free, user overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resources.adapters.veo import DEFAULT_MODEL as VEO_MODEL
from resources.providers.limits import default_table
from resources.providers.prices import (
    PRICES_FILE_ENV,
    Cost,
    PriceTable,
    TokenUsage,
    cost_of,
    price_table,
    shipped_table,
    sum_costs,
    video_cost,
)
from resources.resilience.chain import DEFAULT_CHAINS, provider_for


def test_every_model_of_every_default_chain_and_of_the_limits_table_has_a_dated_price() -> None:
    table = shipped_table()
    models = {(provider_for(m), m) for chain in DEFAULT_CHAINS.values() for m in chain}
    models |= {(row.provider, row.model) for row in default_table().models()}
    for provider, model in sorted(models):
        row = table.get(provider, model)
        assert row is not None, f"{provider}/{model} has no price"
        assert row.read_on is not None and row.source
    assert table.get("veo", VEO_MODEL) is not None


def test_token_cost_is_rate_times_tokens_per_million() -> None:
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000, cached_input_tokens=4_000)
    cost = cost_of("anthropic", "claude-sonnet-4-6", usage)
    assert cost.usd == pytest.approx((10_000 * 3.0 + 4_000 * 0.3 + 2_000 * 15.0) / 1e6)


def test_dated_snapshot_and_models_prefix_share_the_family_price() -> None:
    usage = TokenUsage(input_tokens=1_000_000)
    assert cost_of("anthropic", "claude-haiku-4-5-20251001", usage).usd == pytest.approx(1.0)
    assert cost_of("gemini", "models/gemini-2.5-flash", usage).usd == pytest.approx(0.3)


def test_long_prompt_pays_the_long_context_rate_on_every_token() -> None:
    short = cost_of("gemini", "gemini-2.5-pro", TokenUsage(input_tokens=200_000, output_tokens=1_000))
    long = cost_of("gemini", "gemini-2.5-pro", TokenUsage(input_tokens=200_001, output_tokens=1_000))
    assert short.usd == pytest.approx((200_000 * 1.25 + 1_000 * 10.0) / 1e6)
    assert long.usd == pytest.approx((200_001 * 2.5 + 1_000 * 15.0) / 1e6)


def test_unknown_model_is_unpriced_not_free_and_poisons_a_sum() -> None:
    cost = cost_of("openai", "gpt-99-turbo", TokenUsage(input_tokens=5))
    assert cost.usd is None and not cost.is_priced
    assert cost.unpriced == ("openai/gpt-99-turbo",)
    total = sum_costs([Cost.priced(1.0), cost, Cost.priced(2.0)])
    assert total.usd is None and total.unpriced == ("openai/gpt-99-turbo",)
    # A chat model has no per-second price and a video model no token price.
    assert video_cost("openai", "gpt-4.1", 8).usd is None
    assert cost_of("veo", VEO_MODEL, TokenUsage(input_tokens=5)).usd is None


def test_offline_engine_is_explicitly_free_and_veo_is_per_second() -> None:
    assert cost_of("offline", "offline", TokenUsage(input_tokens=10**6, output_tokens=10**6)) == Cost.priced(0.0)
    assert video_cost("veo", VEO_MODEL, 8).usd == pytest.approx(3.2)


def test_user_file_overrides_and_adds_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "prices.json"
    override.write_text(
        json.dumps(
            {
                "read_on": "2026-12-01",
                "models": [
                    {
                        "provider": "anthropic",
                        "model": "claude-sonnet-4-6",
                        "input_per_mtok": 1.5,
                        "output_per_mtok": 7.5,
                    },
                    {"provider": "openai", "model": "gpt-99-turbo", "input_per_mtok": 1, "output_per_mtok": 2},
                ],
            }
        )
    )
    monkeypatch.setenv(PRICES_FILE_ENV, str(override))
    table = price_table()
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.cost_of("anthropic", "claude-sonnet-4-6", usage).usd == pytest.approx(9.0)
    assert table.cost_of("openai", "gpt-99-turbo", usage).usd == pytest.approx(3.0)
    assert table.cost_of("anthropic", "claude-opus-4-6", usage).usd == pytest.approx(30.0)  # shipped row kept


def test_malformed_price_file_fails_loudly_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": [{"provider": "openai", "model": "gpt-4.1", "input_per_mtok": -1}]}))
    with pytest.raises(ValueError, match="bad.json"):
        PriceTable.load(bad)
    nothing = tmp_path / "nothing.json"
    nothing.write_text(json.dumps({"models": [{"provider": "openai", "model": "gpt-4.1"}]}))
    with pytest.raises(ValueError, match="needs input_per_mtok"):
        PriceTable.load(nothing)


@pytest.mark.parametrize(
    ("provider", "model", "input_tokens", "output_tokens", "cached"),
    [
        ("anthropic", "claude-sonnet-4-6", 40, 8, 0),
        ("anthropic", "claude-haiku-4-5-20251001", 1234, 567, 0),  # dated snapshot
        ("openai", "gpt-4.1", 2048, 100, 1920),  # mostly from the prompt cache
        ("gemini", "models/gemini-2.5-pro", 199_999, 10, 1024),  # under the long-context threshold
        ("gemini", "gemini-2.5-pro", 200_001, 10, 4096),  # over it: every token at the long rates
        ("offline", "offline", 500, 500, 0),
        ("nobody", "unknown-model", 10, 10, 0),  # unpriced
    ],
)
def test_the_per_call_price_in_plain_floats_is_what_cost_of_says(
    provider: str, model: str, input_tokens: int, output_tokens: int, cached: int
) -> None:
    table = shipped_table()
    # TokenUsage counts uncached input apart from cached; a Completion counts every prompt token as input.
    usage = TokenUsage(input_tokens=input_tokens - cached, cached_input_tokens=cached, output_tokens=output_tokens)
    row = table.get(provider, model)
    expected = None
    if row is not None and row.input_per_mtok is not None and row.output_per_mtok is not None:
        rates = row.long_context if row.long_context and input_tokens > row.long_context.threshold_tokens else row
        assert rates.input_per_mtok is not None and rates.output_per_mtok is not None
        cached_rate = rates.cached_input_per_mtok if rates.cached_input_per_mtok is not None else rates.input_per_mtok
        uncached = input_tokens - cached
        expected = (
            uncached * rates.input_per_mtok + cached * cached_rate + output_tokens * rates.output_per_mtok
        ) / 1_000_000
    for _ in range(2):  # the second answer comes from the remembered rates
        assert table.tokens_usd(provider, model, input_tokens, output_tokens, cached) == pytest.approx(
            table.cost_of(provider, model, usage).usd
        )
        assert table.tokens_usd(provider, model, input_tokens, output_tokens, cached) == pytest.approx(expected)
