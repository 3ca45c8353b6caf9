"""The model limits table: every chain model is in it, lookups are predictable, bad files fail loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resources.providers.limits import (
    LIMITS_FILE,
    ModelLimitsTable,
    estimate_prompt_tokens,
    estimate_tokens,
    limits_for,
)
from resources.resilience.chain import DEFAULT_CHAINS, OFFLINE, provider_for


def test_every_model_of_every_default_chain_has_documented_limits() -> None:
    for stage, models in DEFAULT_CHAINS.items():
        for model in models:
            limits = limits_for(provider_for(model), model)
            assert limits.known, f"{stage}: {model} is not in {LIMITS_FILE.name}"
            assert limits.read_on is not None and limits.source
            if model != OFFLINE:
                assert 0 < limits.max_output_tokens <= limits.context_window


def test_gpt5_and_reasoning_models_accept_no_sampling_parameters() -> None:
    for model in ("gpt-5.2", "o4-mini", "o3-mini"):
        limits = limits_for("openai", model)
        assert not limits.accepts("temperature")
        assert not limits.legacy_max_tokens
    assert limits_for("openai", "gpt-4.1").accepts("temperature")
    assert limits_for("anthropic", "claude-sonnet-4-6").accepts("temperature")


def test_dated_snapshots_and_gemini_prefix_resolve_to_their_family() -> None:
    assert limits_for("anthropic", "claude-haiku-4-5-20251001").max_output_tokens == 64_000
    assert limits_for("openai", "gpt-4.1-2025-04-14").context_window == 1_047_576
    assert limits_for("gemini", "models/gemini-3-flash-preview").known


def test_unknown_model_gets_the_conservative_default() -> None:
    limits = limits_for("openai", "gpt-9")
    assert not limits.known
    assert limits.model == "gpt-9" and limits.provider == "openai"
    assert (limits.context_window, limits.max_output_tokens) == (128_000, 8_192)
    assert limits.sampling_parameters == frozenset()
    # the same name under another provider is not that provider's row
    assert not limits_for("gemini", "gpt-4.1").known


def test_ceilings_are_capped_by_the_model() -> None:
    limits = limits_for("openai", "gpt-4.1")
    assert limits.output_ceiling(1_000_000) == 32_768
    assert limits.output_ceiling(100) == 100
    assert limits.room_for_output(limits.context_window - 10) == 10
    assert limits.room_for_output(limits.context_window + 10) == 0


def test_estimate_tokens_is_four_characters_per_token_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 68_700) == 17_175


def test_a_malformed_table_fails_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "limits.json"
    bad.write_text(json.dumps({"default": {}, "models": [{"provider": "openai", "model": "m"}]}))
    with pytest.raises(ValueError, match="limits.json"):
        ModelLimitsTable.load(bad)


@pytest.mark.parametrize(
    ("system", "prompt"), [("", ""), ("a", ""), ("", "abcd"), ("abc", "de"), ("x" * 4001, "y" * 3)]
)
def test_the_prompt_estimate_from_two_parts_equals_the_estimate_of_their_join(system: str, prompt: str) -> None:
    assert estimate_prompt_tokens(system, prompt) == estimate_tokens(system + prompt)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("anthropic", "claude-sonnet-4-6"),
        ("anthropic", "claude-haiku-4-5-20251001"),
        ("gemini", "models/gemini-2.5-pro"),
        ("anthropic", "no-such-model"),
    ],
)
def test_a_remembered_lookup_answers_as_a_fresh_table_does(provider: str, model: str) -> None:
    table = ModelLimitsTable.load()
    first = table.get(provider, model)
    assert table.get(provider, model) is first
    assert ModelLimitsTable.load().get(provider, model) == first
