"""``veo3_broll`` as a real Dagster materialization (with its upstream) on a temporary instance against
the loopback simulator: MP4s on disk, the job file, metadata, and the retry event in the run's log."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, materialize

from cineforge_assets.assets.broll import veo3_broll
from cineforge_assets.assets.ingest import canonical_script, project_config, raw_input, scenes
from cineforge_assets.definitions import defs
from cineforge_assets.sources import register_source
from resources.adapters.veo import is_playable_mp4
from resources.ai import AIProviderResource
from resources.io_manager import ArtifactIOManager
from resources.simulator import ProviderSimulator
from resources.simulator.veo import VeoFault, VeoSimulator
from resources.veo3 import Veo3Resource

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "the-lighthouse-keepers-ledger.fountain"
ALL_ASSETS = [raw_input, canonical_script, scenes, project_config, veo3_broll]
BROLL = AssetKey("veo3_broll")


def resources(veo3: Veo3Resource) -> dict[str, object]:
    return {"ai": AIProviderResource(mode="offline"), "io_manager": ArtifactIOManager(), "veo3": veo3}


def assert_valid_mp4(path: Path) -> None:
    data = path.read_bytes()
    assert is_playable_mp4(data), path
    if shutil.which("ffprobe"):
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        assert "h264" in {s["codec_name"] for s in json.loads(probe.stdout)["streams"]}


def test_veo3_broll_materializes_clips_through_one_retry_and_logs_it(
    data_root: Path, instance: DagsterInstance, sim: ProviderSimulator, veo: VeoSimulator
) -> None:
    key = register_source(SAMPLE)
    instance.add_dynamic_partitions("screenplays", [key])
    # Every first submission is rate limited: the gate's one auto-retry must rescue all three scenes.
    veo.set_faults([VeoFault(kind="rate_limited", times=3)])
    veo3 = Veo3Resource(mode="simulated", simulator_url=sim.base_url, poll_interval_seconds=0.01)

    result = materialize(ALL_ASSETS, instance=instance, partition_key=key, resources=resources(veo3))

    assert result.success
    folder = data_root / "artifacts" / "veo3_broll" / key
    jobs = json.loads((folder / "jobs.json").read_text())
    assert jobs["partition"] == key and len(jobs["jobs"]) == 3
    assert all(job["status"] == "succeeded" and job["attempts"] == 2 for job in jobs["jobs"])
    assert all(job["prompt"].startswith("Cinematic B-roll shot") for job in jobs["jobs"])
    clips = sorted(folder.glob("scene-*.mp4"))
    assert [c.name for c in clips] == [f"scene-{job['scene']}.mp4" for job in jobs["jobs"]]
    for clip in clips:
        assert_valid_mp4(clip)

    meta = result.asset_materializations_for_node("veo3_broll")[0].metadata
    assert meta["broll_available"].value is True and meta["clip_count"].value == 3
    assert meta["retried"].value is True and meta["gate_outcome"].value == "completed"
    assert meta["jobs_path"].value == str(folder / "jobs.json")
    assert "| scene | status |" in str(meta["jobs"].value)

    observations = [
        e.event_specific_data.asset_observation  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_OBSERVATION
    ]
    retried = [o for o in observations if o.metadata["event"].value == "veo3.gate.retried"]
    assert len(retried) == 1
    assert retried[0].asset_key == BROLL and retried[0].partition == key
    assert retried[0].metadata["job_count"].value == 3
    assert retried[0].metadata["failure_kinds"].value == {"rate_limited": 3}

    # Without a Veo key the asset still materializes - with no clips and the reason in its metadata.
    rerun = materialize(
        ALL_ASSETS,
        selection=[BROLL],
        instance=instance,
        partition_key=key,
        resources=resources(Veo3Resource(mode="live")),
        run_config={"ops": {"veo3_broll": {"config": {"mode": "list", "scene_numbers": [1, 99]}}}},
    )
    assert rerun.success
    meta = rerun.asset_materializations_for_node("veo3_broll")[0].metadata
    assert meta["broll_available"].value is False and meta["clip_count"].value == 0
    assert meta["missing_scenes"].value == [99]
    reasons = meta["reasons"].value
    assert isinstance(reasons, list) and "live mode needs GEMINI_API_KEY" in str(reasons[0])
    assert json.loads((folder / "jobs.json").read_text())["jobs"][0]["error_kind"] == "not_configured"


def test_veo3_broll_is_in_the_code_location_and_the_pipeline_job() -> None:
    assert defs.resolve_assets_def(BROLL).group_names_by_key[BROLL] == "broll"
    assert "veo3" in (defs.resources or {})
    job = defs.resolve_job_def("screenplay_pipeline")
    assert "veo3_broll" in {node.name for node in job.graph.node_defs}


pytestmark = pytest.mark.usefixtures("dagster_home")
