"""B-roll under a per-run cap: only the clips that fit are submitted, the rest fail as ``over_budget``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from cineforge_assets.assets.broll import veo3_broll
from cineforge_assets.assets.ingest import canonical_script, project_config, raw_input, scenes
from cineforge_assets.broll.budget import clip_price
from cineforge_assets.run_events import spend_from_tags
from cineforge_assets.sources import register_source
from resources.adapters.veo import DEFAULT_MODEL
from resources.ai import AIProviderResource
from resources.io_manager import ArtifactIOManager
from resources.simulator import ProviderSimulator
from resources.simulator.veo import VeoSimulator
from resources.veo3 import Veo3Resource

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "the-lighthouse-keepers-ledger.fountain"


def test_only_the_clips_that_fit_the_run_cap_are_submitted(
    data_root: Path, tmp_path: Path, instance: DagsterInstance, sim: ProviderSimulator, veo: VeoSimulator
) -> None:
    key = register_source(SAMPLE)
    instance.add_dynamic_partitions("screenplays", [key])
    price = clip_price(DEFAULT_MODEL)
    assert price == pytest.approx(3.2)  # 8 s at $0.40
    # Text stages run offline (free): the cap leaves room for two clips of the three selected.
    ai = AIProviderResource(
        mode="offline", run_budget_usd=2.5 * price, breaker_store_url=f"sqlite:///{tmp_path / 'b.sqlite'}"
    )
    veo3 = Veo3Resource(mode="simulated", simulator_url=sim.base_url, poll_interval_seconds=0.01)
    result = materialize(
        [raw_input, canonical_script, scenes, project_config, veo3_broll],
        instance=instance,
        partition_key=key,
        resources={"ai": ai, "io_manager": ArtifactIOManager(), "veo3": veo3},
    )
    assert result.success
    jobs = json.loads((data_root / "artifacts" / "veo3_broll" / key / "jobs.json").read_text())["jobs"]
    assert [job["status"] for job in jobs] == ["succeeded", "succeeded", "failed"]
    refused = jobs[2]["error_message"]
    assert refused.startswith("over_budget: per-run")
    assert f"${2.5 * price:.4f}" in refused and f"${2 * price:.4f} spent" in refused
    assert f"B-roll clip for scene {jobs[2]['scene']}" in refused
    assert sum(veo.state()["submits"].values()) == 2  # the refused clip never reached Veo
    meta = result.asset_materializations_for_node("veo3_broll")[0].metadata
    assert meta["cost_usd"].value == pytest.approx(2 * price)
    spend = spend_from_tags(instance.get_run_by_id(result.run_id).tags)
    assert spend["stages"]["veo3_broll"] == {
        "cost_usd": pytest.approx(2 * price),
        "provider": "veo",
        "model": DEFAULT_MODEL,
    }
    assert spend["cost_usd"] == pytest.approx(2 * price)
