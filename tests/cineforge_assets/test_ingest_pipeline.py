"""The four ingest assets as real Dagster runs on a temporary instance, driven through the CLI and the job."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterEventType, DagsterInstance

from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.definitions import defs
from cineforge_assets.partitions import screenplay_partitions
from cineforge_assets.sources import register_source

pytestmark = pytest.mark.usefixtures("data_root", "dagster_home")
REPO = Path(__file__).resolve().parents[2]
SAMPLE_PDF = REPO / "samples" / "the-lighthouse-keepers-ledger.pdf"
SAMPLE_FOUNTAIN = REPO / "samples" / "the-lighthouse-keepers-ledger.fountain"


def ingest(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    code = cineforge_main(["ingest", str(path), "--provider", "offline", *extra])
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    summary["_stderr"] = captured.err
    return code, summary


def run_partition(instance: DagsterInstance, path: Path) -> tuple[str, bool]:
    key = register_source(path)
    if not instance.has_dynamic_partition("screenplays", key):
        instance.add_dynamic_partitions("screenplays", [key])
    result = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False
    )
    return key, result.success


def test_ingest_big_fish_gives_the_reference_190_scenes(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary = ingest(corpus_dir / "Big-Fish.fountain", capsys)
    assert code == 0 and summary["success"] is True
    assert summary["partition"] == "big-fish"
    assert set(summary["artifacts"]) == {"raw_input", "canonical_script", "scenes", "project_config", "veo3_broll"}
    scenes = pd.read_parquet(summary["artifacts"]["scenes"])
    assert len(scenes) == 190
    config = json.loads(Path(summary["artifacts"]["project_config"]).read_text())
    assert config["scene_count"] == 190
    assert config["title"] == "Big Fish"
    assert "EDWARD" in config["primary_cast"]


def test_last_birthday_card_gives_48_scenes(corpus_dir: Path, instance: DagsterInstance) -> None:
    key, ok = run_partition(instance, corpus_dir / "The-Last-Birthday-Card.fountain")
    assert ok
    from cineforge_assets.paths import artifacts_dir

    scenes = pd.read_parquet(artifacts_dir() / "scenes" / f"{key}.parquet")
    assert len(scenes) == 48
    assert {"summary", "mood", "visual_description"} <= set(scenes.columns)
    assert all(isinstance(s, str) and s for s in scenes["visual_description"])


def test_shipped_sample_pdf_runs_end_to_end_with_forced_heading(capsys: pytest.CaptureFixture[str]) -> None:
    code, summary = ingest(SAMPLE_PDF, capsys)
    assert code == 0, summary
    raw = json.loads(Path(summary["artifacts"]["raw_input"]).read_text())
    assert raw["format"] == "pdf" and raw["page_count"] >= 1
    fountain_scenes = pd.read_parquet(summary["artifacts"]["scenes"])
    assert set(fountain_scenes["int_ext"]) >= {"INT", "EXT"}
    assert {"DAY", "NIGHT"} <= set(fountain_scenes["time_of_day"])


def test_materialization_metadata_has_counts_preview_and_artifact_path(instance: DagsterInstance) -> None:
    key, ok = run_partition(instance, SAMPLE_FOUNTAIN)
    assert ok
    event = instance.get_latest_materialization_event(screenplay_asset("scenes"))
    assert event is not None and event.asset_materialization is not None
    meta = event.asset_materialization.metadata
    assert meta["scene_count"].value > 0
    assert "| # | heading |" in meta["preview"].value
    assert meta["artifact_path"].value.endswith(f"scenes/{key}.parquet")
    assert meta["attempt_count"].value == 1
    assert meta["provider"].value == "offline"


def test_project_config_follows_the_stored_scenes_table_not_a_second_split(instance: DagsterInstance) -> None:
    from cineforge_assets.paths import artifacts_dir

    key, ok = run_partition(instance, SAMPLE_FOUNTAIN)
    assert ok
    scenes_path = artifacts_dir() / "scenes" / f"{key}.parquet"
    table = pd.read_parquet(scenes_path)
    assert len(table) > 2
    # The table as an earlier splitter left it (two scenes): project_config is re-materialized on its own.
    kept = table.iloc[:2]
    kept.to_parquet(scenes_path, index=False)
    result = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, asset_selection=[screenplay_asset("project_config")]
    )
    assert result.success
    config = json.loads((artifacts_dir() / "project_config" / f"{key}.json").read_text())
    assert config["scene_count"] == 2
    assert [location["name"] for location in config["locations"]] == list(dict.fromkeys(kept["location"]))
    assert config["estimated_runtime_minutes"] == round(float(kept["est_screen_seconds"].sum()) / 60.0, 1)


def screenplay_asset(name: str):  # noqa: ANN201 - AssetKey
    from dagster import AssetKey

    return AssetKey(name)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.fountain", b"", "empty"),
        ("binary.pdf", bytes(range(256)) * 8, "pdf"),
        ("blank.fountain", b"   \n\n\t\n  \n", "blank"),
    ],
)
def test_bad_input_fails_raw_input_clearly_and_keeps_the_previous_good_artifact(
    tmp_path: Path,
    instance: DagsterInstance,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    expected: str,
) -> None:
    good = tmp_path / "good" / (Path(name).stem + ".fountain")  # same partition key as the bad file
    good.parent.mkdir()
    good.write_bytes(SAMPLE_FOUNTAIN.read_bytes())
    key, ok = run_partition(instance, good)
    assert ok
    from cineforge_assets.paths import artifacts_dir

    raw_path = artifacts_dir() / "raw_input" / f"{key}.json"
    before = raw_path.read_bytes()
    materializations_before = instance.get_latest_materialization_event(screenplay_asset("raw_input"))

    bad = tmp_path / "bad" / name
    bad.parent.mkdir()
    bad.write_bytes(content)
    code, summary = ingest(bad, capsys)
    assert code == 1 and summary["success"] is False
    assert summary["failure"]["step"] == "raw_input"
    assert summary["failure"]["error_class"] == "permanent"
    message = summary["failure"]["message"].lower()
    assert name.lower() in message and expected in message
    assert "permanent: the request or the input cannot succeed" in summary["_stderr"]
    # The earlier good artifact and its materialization are untouched; no torn temp files remain.
    assert raw_path.read_bytes() == before
    latest = instance.get_latest_materialization_event(screenplay_asset("raw_input"))
    assert latest is not None and materializations_before is not None
    assert latest.run_id == materializations_before.run_id
    assert not list(raw_path.parent.glob(".*.tmp"))


def test_failed_raw_input_stops_the_run_before_downstream_steps(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    blank = tmp_path / "blank.fountain"
    blank.write_text("\n\n")
    key, ok = run_partition(instance, blank)
    assert not ok
    run = instance.get_runs(limit=1)[0]
    started = {
        r.event_log_entry.dagster_event.step_key
        for r in instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_START).records
        if r.event_log_entry.dagster_event
    }
    assert started == {"raw_input"}


def test_dynamic_partition_is_registered_by_ingest(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary = ingest(corpus_dir / "The-Last-Birthday-Card.fountain", capsys)
    assert code == 0
    with DagsterInstance.get() as instance:
        assert summary["partition"] in instance.get_dynamic_partitions(screenplay_partitions.name or "")
