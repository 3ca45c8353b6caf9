"""Issue 20's first target: with Anthropic down for the whole run, every AI stage completes on the OpenAI
and Gemini entries of the default chains, in simulated mode with the model limits and capability rules on
(the simulator refuses what the real APIs refuse), through real loopback HTTP and a real Dagster run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance

from cineforge_assets.definitions import defs
from cineforge_assets.sources import register_source
from resources.simulator import ProviderSimulator

pytestmark = pytest.mark.usefixtures("data_root")

PROSE = """The harbor at dawn is grey and quiet. Maria walks along the pier with a letter in her hand.

"I told you he would come back," Maria says.

That night, in the kitchen of the old house, Tomas waits by the stove. He reads the letter twice.

Tomas says, "Then we leave tomorrow."
"""
AI_ASSETS = {"canonical_script": "normalize", "scenes": "extract_scenes", "project_config": "project_config"}


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        yield simulator


def run_config(sim: ProviderSimulator, tmp_path: Path) -> dict[str, Any]:
    config = {
        "mode": "simulated",
        "simulator_url": sim.base_url,
        "max_attempts": 6,
        "backoff_base_seconds": 0.001,
        "backoff_cap_seconds": 0.005,
        "breaker_store_url": f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        "seed": 7,
    }
    return {"resources": {"ai": {"config": config}}}


def materialize(instance: DagsterInstance, source: Path, sim: ProviderSimulator, tmp_path: Path) -> dict[str, Any]:
    key = register_source(source)
    instance.add_dynamic_partitions("screenplays", [key])
    result = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, run_config=run_config(sim, tmp_path), raise_on_error=False
    )
    assert result.success
    served: dict[str, Any] = {}
    for asset in AI_ASSETS:
        event = instance.get_latest_materialization_event(AssetKey(asset))
        assert event is not None and event.asset_materialization is not None
        served[asset] = event.asset_materialization.metadata
    return served


def assert_no_request_beyond_limits(sim: ProviderSimulator) -> None:
    stats = sim.stats()
    assert "beyond_limits" not in stats["by_outcome"], stats["by_model"]
    assert set(stats["by_provider"]["anthropic"]) == {"total", "overloaded"}


def test_prose_runs_every_stage_on_openai_with_anthropic_down(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    sim.set_profile("primary-down")
    source = tmp_path / "harbor-letter.txt"
    source.write_text(PROSE)
    served = materialize(instance, source, sim, tmp_path)
    models = {asset: (meta["provider"].value, meta["model"].value) for asset, meta in served.items()}
    # normalize and project_config fall to gpt-4.1; extract_scenes to gpt-5.2, which takes no temperature
    assert models == {
        "canonical_script": ("openai", "gpt-4.1"),
        "scenes": ("openai", "gpt-5.2"),
        "project_config": ("openai", "gpt-4.1"),
    }
    assert_no_request_beyond_limits(sim)


def test_with_anthropic_and_openai_down_the_gemini_entries_serve(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    sim.set_profile("primary-down+primary-down:provider=openai")
    source = tmp_path / "harbor-letter.txt"
    source.write_text(PROSE)
    served = materialize(instance, source, sim, tmp_path)
    for asset in ("canonical_script", "scenes"):
        assert (served[asset]["provider"].value, served[asset]["model"].value) == ("gemini", "gemini-3-flash-preview")
    # project_config's chain has no Gemini entry: its last resort is the offline engine
    assert served["project_config"]["provider"].value == "offline"
    assert "beyond_limits" not in sim.stats()["by_outcome"]


def test_a_feature_length_script_enriches_on_gpt5_in_batches_that_fit_its_ceiling(
    sim: ProviderSimulator, tmp_path: Path, instance: DagsterInstance, corpus_dir: Path
) -> None:
    """Big Fish's 190-scene enrich_scenes answer (~17,000 tokens) does not fit the stage's 4,096-token
    ceiling in one call: the stage sends it in batches that each fit, so no answer is cut."""
    sim.set_profile("primary-down")
    served = materialize(instance, corpus_dir / "Big-Fish.fountain", sim, tmp_path)
    scenes = served["scenes"]
    assert (scenes["provider"].value, scenes["model"].value) == ("openai", "gpt-5.2")
    batches = scenes["enrich_parts"].value
    assert batches > 1
    assert sim.stats()["by_model"]["openai"]["gpt-5.2"] == {"ok": batches}  # none cut, none resent
    assert_no_request_beyond_limits(sim)
