"""Billing refusals in each provider's real wire shape, through the real adapters on loopback, end to end:
one call, no retry, the provider on a fleet-wide hold, and an operator message that says to add credit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from resources.ai import AIProviderResource
from resources.resilience.errors import ProviderUnavailableError
from resources.simulator import ProviderSimulator

FIRST_MODEL = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1", "gemini": "gemini-2.5-flash"}
FALLBACK = {"anthropic": "gpt-4.1-mini", "openai": "claude-haiku-4-5", "gemini": "gpt-4.1-mini"}


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


def model_calls(sim: ProviderSimulator, model: str) -> int:
    return sum(sum(models.get(model, {}).values()) for models in sim.stats()["by_model"].values())


def resource(sim: ProviderSimulator, tmp_path: Path, chain: list[str]) -> AIProviderResource:
    return AIProviderResource(
        mode="simulated",
        simulator_url=sim.base_url,
        chains={"project_config": chain},
        breaker_store_url=f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        breaker_warm_up_calls=10,
        telemetry_path=str(tmp_path / "events.jsonl"),
        backoff_base_seconds=0.001,
        backoff_cap_seconds=0.002,
        seed=3,
    )


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_billing_refusal_is_not_retried_and_holds_the_provider_for_the_next_stage(
    provider: str, sim: ProviderSimulator, tmp_path: Path
) -> None:
    sim.set_profile(f"fault:kind=billing,provider={provider}")
    ai = resource(sim, tmp_path, [FIRST_MODEL[provider], FALLBACK[provider]])
    payload = {"title": "Harbor", "scenes": []}
    served = ai.run_task(stage="project_config", task="project_insights", payload=payload, run_id="r1")
    assert served.model == FALLBACK[provider]
    assert model_calls(sim, FIRST_MODEL[provider]) == 1  # refused once, never retried
    refused = served.attempts[0]
    assert (refused.error_class, refused.decision) == ("provider_unavailable", "skip_provider")

    breaker = ai.breaker()
    parked = breaker.snapshot()[provider]
    breaker.store.close()
    assert parked.parked_reason == "billing_refused" and parked.state == "closed"  # parked, not opened
    # The next stage (another process would read the same store) does not call the provider at all.
    again = ai.run_task(stage="project_config", task="project_insights", payload=payload, run_id="r1")
    assert again.model == FALLBACK[provider]
    assert model_calls(sim, FIRST_MODEL[provider]) == 1
    assert [(a.provider, a.outcome, a.error_code) for a in again.attempts][0] == (
        provider,
        "skipped",
        "billing_refused",
    )
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert any(e.get("kind") == "stage_cost" and e["model"] == FALLBACK[provider] for e in events)


def test_a_stage_with_only_the_unpaid_provider_fails_telling_the_operator_to_add_credit(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    sim.set_profile("fault:kind=billing,provider=anthropic")
    ai = resource(sim, tmp_path, ["claude-sonnet-4-6", "claude-opus-4-6"])
    with pytest.raises(ProviderUnavailableError, match="add credit to anthropic"):
        ai.run_task(stage="project_config", task="project_insights", payload={"title": "x"})
    assert model_calls(sim, "claude-sonnet-4-6") == 1 and model_calls(sim, "claude-opus-4-6") == 0
