"""No paid call twice for the same input (issue 15 item 6).

The planner is tested as a pure function; the whole behaviour through ``cineforge ingest`` against the
loopback simulator, whose call counter says whether any provider was asked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance

from cineforge_assets import versioning
from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.definitions import defs
from cineforge_assets.freshness import recorded_materialization
from cineforge_assets.versioning import (
    RecordedMaterialization,
    code_version,
    plan_ingest,
    source_fingerprint,
    task_fingerprint,
)
from resources.simulator import ProviderSimulator
from tests.conftest import REPO_ROOT

CHAIN = ("raw_input", "canonical_script", "scenes", "project_config")
UPSTREAMS = {
    "canonical_script": ["raw_input"],
    "scenes": ["canonical_script"],
    "project_config": ["raw_input", "canonical_script", "scenes"],
}
CODE = {name: f"code-{name}" for name in CHAIN}
SAMPLE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"


def fresh_records() -> dict[str, RecordedMaterialization]:
    data = {name: f"data-{name}" for name in CHAIN}
    data["raw_input"] = "sha-of-file"
    ids = {name: 10 + index for index, name in enumerate(CHAIN)}
    return {
        name: RecordedMaterialization(
            CODE[name], data[name], ids[name], {up: ids[up] for up in UPSTREAMS.get(name, [])}
        )
        for name in CHAIN
    }


def plan(recorded: dict[str, Any], code: dict[str, str] = CODE, sha: str = "sha-of-file") -> versioning.IngestPlan:
    return plan_ingest(CHAIN, UPSTREAMS, code, recorded, source_data_version=sha)


def test_an_unchanged_file_with_unchanged_code_needs_nothing() -> None:
    result = plan(fresh_records())
    assert result.up_to_date and result.to_run == ()


def test_a_changed_file_reruns_everything() -> None:
    result = plan(fresh_records(), sha="another-sha")
    assert result.to_run == CHAIN
    assert result.reasons["raw_input"] == "the file's content changed"


def test_a_prompt_change_reruns_that_stage_and_what_reads_it_only() -> None:
    result = plan(fresh_records(), code={**CODE, "scenes": "code-scenes-2"})
    assert result.to_run == ("scenes", "project_config")
    assert "code version changed" in result.reasons["scenes"]


def test_a_run_that_stopped_between_stages_reruns_from_where_the_inputs_moved() -> None:
    records = fresh_records()
    # canonical_script was re-materialized by a run that then failed at scenes: scenes read the old one.
    old = records["canonical_script"]
    records["canonical_script"] = RecordedMaterialization(old.code_version, "data-new", 99, old.inputs_read)
    result = plan(records)
    assert result.to_run == ("scenes", "project_config")
    assert result.reasons["scenes"] == "upstream canonical_script changed since it ran"


def test_a_never_materialized_asset_runs() -> None:
    records: dict[str, Any] = {**fresh_records(), "project_config": None}
    assert plan(records).to_run == ("project_config",)


def test_fingerprints_ignore_comments_and_docstrings_but_not_code() -> None:
    base = 'def f(x):\n    """Doc."""\n    return x + 1\n'
    assert source_fingerprint(base) == source_fingerprint("# note\ndef f(x):\n\n    return x + 1  # why\n")
    assert source_fingerprint(base) != source_fingerprint('def f(x):\n    """Doc."""\n    return x + 2\n')


def test_a_prompt_or_chain_change_changes_the_code_version(monkeypatch: pytest.MonkeyPatch) -> None:
    from resources.providers import prompts
    from resources.resilience import chain

    before = code_version("scenes"), code_version("project_config")
    instructions = {**prompts._INSTRUCTIONS, "enrich_scenes": prompts._INSTRUCTIONS["enrich_scenes"] + " Be brief."}
    monkeypatch.setattr(prompts, "_INSTRUCTIONS", instructions)
    assert code_version("scenes") != before[0]
    assert code_version("project_config") == before[1]  # its prompt did not change
    monkeypatch.undo()
    chains = {**chain.DEFAULT_CHAINS, "project_config": ("gpt-4.1", "offline")}
    monkeypatch.setattr(chain, "DEFAULT_CHAINS", chains)
    assert task_fingerprint("project_config", "project_insights") != task_fingerprint("extract_scenes", "enrich_scenes")
    assert code_version("project_config") != before[1]


def test_every_pipeline_asset_carries_its_code_version() -> None:
    graph = defs.resolve_asset_graph()
    for name in (*CHAIN, "veo3_broll"):
        assert graph.get(AssetKey(name)).code_version == code_version(name)


def last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.usefixtures("data_root")
def test_a_second_ingest_of_the_same_file_calls_no_provider_and_force_does(
    tmp_path: Path, instance: DagsterInstance, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "ledger.fountain"
    script.write_bytes(SAMPLE.read_bytes())
    with ProviderSimulator() as sim:
        monkeypatch.setenv("CINEFORGE_SIMULATOR_URL", sim.base_url)
        ingest = ["ingest", str(script), "--provider", "simulated"]

        assert cineforge_main(ingest) == 0
        first = last_json(capsys.readouterr().out)
        paid = sim.stats()["total"]
        assert first["up_to_date"] is False and paid > 0
        runs = len(instance.get_runs())

        assert cineforge_main(ingest) == 0
        captured = capsys.readouterr()
        again = last_json(captured.out)
        assert again["up_to_date"] is True, [line for line in captured.err.splitlines() if "cineforge:" in line]
        assert again["run_id"] is None and again["materialized"] == [] and again["cost_usd"] == 0.0
        assert "is up to date" in captured.err
        assert again["artifacts"] == first["artifacts"]
        assert sim.stats()["total"] == paid  # no provider was asked
        assert len(instance.get_runs()) == runs  # nothing was materialized

        # What Dagster recorded is what the planner compares: the code versions of today's definitions.
        recorded = recorded_materialization(instance, "scenes", first["partition"])
        assert recorded is not None and recorded.code_version == code_version("scenes")
        upstream = recorded_materialization(instance, "canonical_script", first["partition"])
        assert upstream is not None and recorded.inputs_read["canonical_script"] == upstream.storage_id

        assert cineforge_main([*ingest, "--force"]) == 0
        forced = last_json(capsys.readouterr().out)
        assert forced["up_to_date"] is False and forced["run_id"] not in (None, first["run_id"])
        assert sim.stats()["total"] > paid

        # The same name with other content is another input: everything runs again.
        paid = sim.stats()["total"]
        script.write_text(SAMPLE.read_text() + "\nINT. LIGHTHOUSE - NIGHT\n\nThe lamp turns.\n")
        assert cineforge_main(ingest) == 0
        changed = last_json(capsys.readouterr().out)
        assert changed["materialized"] == [*CHAIN, "veo3_broll"]
        assert sim.stats()["total"] > paid


@pytest.mark.usefixtures("data_root")
def test_a_run_that_failed_at_scenes_is_re_ingested_from_scenes_only(
    tmp_path: Path, instance: DagsterInstance, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "ledger.fountain"
    script.write_bytes(SAMPLE.read_bytes())
    with ProviderSimulator(profile="fault:kind=bad_request,tasks=enrich_scenes") as sim:
        monkeypatch.setenv("CINEFORGE_SIMULATOR_URL", sim.base_url)
        ingest = ["ingest", str(script), "--provider", "simulated"]
        assert cineforge_main(ingest) == 1  # refused at scenes: raw_input and canonical_script are done
        capsys.readouterr()
        sim.set_profile("none")
        assert cineforge_main(ingest) == 0
        captured = capsys.readouterr()
        again = last_json(captured.out)
        assert again["materialized"] == ["scenes", "project_config", "veo3_broll"]
        assert "up to date, kept: raw_input, canonical_script; materializing: scenes (never materialized" in (
            captured.err
        )
