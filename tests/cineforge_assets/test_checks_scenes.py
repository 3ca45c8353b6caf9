"""The scenes plausibility check (issue 17 item 5) in real materializations of the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.paths import artifacts_dir
from cineforge_assets.run_tags import FAILED_STAGE_TAG, FAILURE_CLASS_TAG

pytestmark = pytest.mark.usefixtures("data_root", "dagster_home")


def _good_script() -> str:
    scenes = []
    for n in range(1, 31):
        scenes.append(f"INT. ROOM {n} - DAY\n\nAnna waits by the window.\n\nANNA\nStill here.\n\nBEN (O.S.)\nComing.\n")
    return "Title: Rooms\n\n" + "\n".join(scenes)


def _broken_read() -> str:
    """What a reader hands back when printed scene numbers glue onto the headings (issue 17): two
    headings survive, the other 38 are numbered lines that read as action, over ~20 pages."""
    body = ["INT. HOUSE - NIGHT\n\nThe house is dark.\n", "EXT. YARD - NIGHT\n\nWind.\n"]
    speech = "ANNA\n" + "We should go, it is late and the road is long and nobody knows we are here. " * 3 + "\n"
    for n in range(3, 41):
        body.append(f"{n} INT. ROOM {n} - DAY {n}\n\nAnna paces.\n\n{speech}\nBEN\nNot yet.\n")
    return "Title: Rooms\n\n" + "\n".join(body)


def _ingest(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = cineforge_main(["ingest", str(path), "--provider", "offline"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return code, summary


def test_implausible_split_fails_permanently_and_keeps_the_earlier_scenes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good" / "rooms.fountain"
    good.parent.mkdir()
    good.write_text(_good_script())
    code, summary = _ingest(good, capsys)
    assert code == 0, summary
    key = summary["partition"]
    scenes_path = artifacts_dir() / "scenes" / f"{key}.parquet"
    before = scenes_path.read_bytes()
    assert len(pd.read_parquet(scenes_path)) == 30

    bad = tmp_path / "bad" / "rooms.fountain"  # same partition key, a read that lost its headings
    bad.parent.mkdir()
    bad.write_text(_broken_read())
    code, summary = _ingest(bad, capsys)
    assert code == 1 and summary["partition"] == key
    failure = summary["failure"]
    assert failure["step"] == "scenes" and failure["error_class"] == "permanent"
    assert failure["message"].startswith("rooms.fountain: 2 scenes from ")
    assert "pages: scene numbers or headings not recognised" in failure["message"]

    with DagsterInstance.get() as instance:
        run = instance.get_run_by_id(summary["run_id"])
        assert run is not None
        assert (run.tags[FAILURE_CLASS_TAG], run.tags[FAILED_STAGE_TAG]) == ("permanent", "scenes")
        retries = instance.get_records_for_run(summary["run_id"], of_type=DagsterEventType.STEP_UP_FOR_RETRY)
        assert not retries.records  # permanent: the step ran once
        started = {
            r.event_log_entry.dagster_event.step_key
            for r in instance.get_records_for_run(summary["run_id"], of_type=DagsterEventType.STEP_START).records
            if r.event_log_entry.dagster_event
        }
        assert "project_config" not in started
        latest = instance.get_latest_materialization_event(AssetKey("scenes"))
        assert latest is not None and latest.run_id != summary["run_id"]
    # The earlier artifact is untouched.
    assert scenes_path.read_bytes() == before


def test_plausible_split_records_the_check_with_its_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rooms.fountain"
    path.write_text(_good_script())
    code, summary = _ingest(path, capsys)
    assert code == 0, summary
    with DagsterInstance.get() as instance:
        records = instance.get_records_for_run(
            summary["run_id"], of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        evaluations = {}
        for record in records:
            event = record.event_log_entry.dagster_event
            if event is not None:
                evaluations[event.event_specific_data.check_name] = event.event_specific_data  # type: ignore[union-attr]
    plausible = evaluations["plausible_for_source"]
    assert plausible.passed
    meta = {k: v.value for k, v in plausible.metadata.items()}
    assert meta["scene_count"] == 30 and meta["speaking_characters"] == 2
    assert meta["pages_from_source"] is False and meta["file"] == "rooms.fountain"
