from __future__ import annotations

import pytest

from resources.resilience.backoff import BackoffPolicy
from resources.resilience.chain import DEFAULT_CHAINS, ModelRef, StagePolicy, fallback_chain_for, provider_for


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("claude-sonnet-4-6", "anthropic"),
        ("claude-haiku-4-5-20251001", "anthropic"),
        ("gpt-4.1", "openai"),
        ("gpt-5.2", "openai"),
        ("o3-mini", "openai"),
        ("o1", "openai"),
        ("gemini-3-flash-preview", "gemini"),
        ("offline", "offline"),
    ],
)
def test_provider_for(model: str, provider: str) -> None:
    assert provider_for(model) == provider


@pytest.mark.parametrize("model", ["llama-3", "omni", "", "Claude-3"])
def test_unknown_models_are_rejected(model: str) -> None:
    with pytest.raises(ValueError):
        provider_for(model)


def test_default_chains() -> None:
    assert [str(r) for r in fallback_chain_for("normalize")] == [
        "anthropic/claude-sonnet-4-6",
        "anthropic/claude-opus-4-6",
        "openai/gpt-4.1",
        "gemini/gemini-3-flash-preview",
        "offline/offline",
    ]
    assert [r.model for r in fallback_chain_for("extract_scenes")] == [
        "claude-sonnet-4-6",
        "claude-opus-4-6",
        "gpt-5.2",
        "gemini-3-flash-preview",
        "offline",
    ]
    assert [r.model for r in fallback_chain_for("project_config")] == [
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-6",
        "claude-opus-4-6",
        "gpt-4.1",
        "offline",
    ]
    assert all(chain[-1] == "offline" for chain in DEFAULT_CHAINS.values())


def test_overrides_replace_one_stage_and_drop_duplicates() -> None:
    overrides = {"normalize": ["gpt-4.1", "gpt-4.1", "offline"], "veo3_prompt": ["gemini-3-flash-preview"]}
    assert fallback_chain_for("normalize", overrides) == [
        ModelRef("openai", "gpt-4.1"),
        ModelRef.of("offline"),
    ]
    assert fallback_chain_for("veo3_prompt", overrides) == [ModelRef("gemini", "gemini-3-flash-preview")]
    assert fallback_chain_for("extract_scenes", overrides)[0].model == "claude-sonnet-4-6"


def test_bad_chains_are_rejected() -> None:
    with pytest.raises(ValueError, match="no fallback chain"):
        fallback_chain_for("nope")
    with pytest.raises(ValueError, match="empty"):
        fallback_chain_for("normalize", {"normalize": []})
    with pytest.raises(TypeError):
        fallback_chain_for("normalize", {"normalize": "gpt-4.1"})
    with pytest.raises(ValueError):
        fallback_chain_for("normalize", {"normalize": ["mistral-large"]})


def test_stage_policy_defaults_and_validation() -> None:
    policy = StagePolicy()
    assert (policy.max_attempts, policy.deadline_seconds, policy.attempts_per_model) == (6, 120.0, 2)
    assert policy.backoff == BackoffPolicy(0.5, 20.0, 30.0)
    assert policy.request_timeout_seconds is None
    assert policy.retry_after_fallback_seconds == 2.0
    for bad in (
        {"max_attempts": 0},
        {"deadline_seconds": 0},
        {"attempts_per_model": 0},
        {"request_timeout_seconds": 0},
        {"retry_after_fallback_seconds": -1},
    ):
        with pytest.raises(ValueError):
            StagePolicy(**bad)  # type: ignore[arg-type]
