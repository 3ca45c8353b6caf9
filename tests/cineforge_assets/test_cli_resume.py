"""``cineforge resume`` never quietly changes provider, and the CLI summary says who served each stage.

Real runs on a temporary instance, providers on loopback: the CLI's own simulator (simulated mode), or a
simulator standing in for the live endpoints (live mode with base URLs pointing at it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance

from cineforge_assets.cli import _reachable_run_config
from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.definitions import defs
from cineforge_assets.sources import register_source
from resources.simulator import ProviderSimulator

pytestmark = pytest.mark.usefixtures("data_root")

PROSE = """The harbor at dawn is grey and quiet. Maria walks along the pier with a letter in her hand.

"I told you he would come back," Maria says.

That night, in the kitchen of the old house, Tomas waits by the stove. He reads the letter twice.
"""
SCENES_REFUSED = "fault:kind=safety,tasks=enrich_scenes"  # a permanent failure: the run stops at scenes


def last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def source(tmp_path: Path) -> Path:
    path = tmp_path / "harbor-letter.txt"
    path.write_text(PROSE)
    return path


def test_resuming_a_simulated_run_whose_simulator_is_gone_starts_one_instead_of_going_offline(
    tmp_path: Path, instance: DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI starts a simulator for the run and stops it afterwards: the saved config's URL is now dead.
    code = cineforge_main(["ingest", str(source(tmp_path)), "--provider", "simulated", "--faults", SCENES_REFUSED])
    failed = last_json(capsys.readouterr().out)
    assert code == 1 and failed["success"] is False

    code = cineforge_main(["resume", failed["run_id"]])
    captured = capsys.readouterr()
    resumed = last_json(captured.out)
    assert code == 0 and resumed["success"] is True, captured.err[-2000:]
    assert "is not answering; started one at" in captured.err
    assert resumed["mode"] == "simulated"
    assert resumed["served_by"]["scenes"].startswith("anthropic/")
    assert resumed["served_by"]["project_config"].startswith("anthropic/")
    assert resumed["offline_fallback"] == []


def test_resuming_a_live_run_whose_providers_are_unreachable_is_refused(
    tmp_path: Path, instance: DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    key = register_source(source(tmp_path))
    instance.add_dynamic_partitions("screenplays", [key])
    with ProviderSimulator(profile=SCENES_REFUSED) as endpoint:
        config = {
            "mode": "live",
            "anthropic_api_key": "test-key-anthropic",
            "openai_api_key": "test-key-openai",
            "anthropic_base_url": endpoint.anthropic_url,
            "openai_base_url": endpoint.openai_url,
            "breaker_store_url": f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        }
        failed = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
            instance=instance,
            partition_key=key,
            run_config={"resources": {"ai": {"config": config}}},
            raise_on_error=False,
        )
    assert not failed.success
    runs_before = len(instance.get_runs())

    code = cineforge_main(["resume", failed.run_id])  # the endpoint is gone now
    captured = capsys.readouterr()
    assert code == 2
    assert "not resuming" in captured.err and "anthropic at" in captured.err and "openai at" in captured.err
    assert "--provider offline" in captured.err
    refusal = last_json(captured.out)
    assert refusal["success"] is False and refusal["run_id"] is None
    assert len(instance.get_runs()) == runs_before  # nothing ran


def test_the_summary_flags_stages_the_offline_engine_served_in_a_non_offline_run(
    tmp_path: Path, instance: DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cineforge_main(
        ["ingest", str(source(tmp_path)), "--provider", "simulated", "--faults", "primary-down:provider=*"]
    )
    captured = capsys.readouterr()
    summary = last_json(captured.out)
    assert code == 0 and summary["success"] is True
    assert summary["served_by"]["project_config"] == "offline/offline"
    assert "project_config" in summary["offline_fallback"] and "scenes" in summary["offline_fallback"]
    assert "warning: the offline engine served" in captured.err


def dead_url() -> str:
    """A loopback URL nothing listens on (the port was bound, then freed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_simulated_run_configured_by_the_environment_keeps_its_other_resources_on_the_new_simulator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CINEFORGE_PROVIDER_MODE", "simulated")
    monkeypatch.setenv("CINEFORGE_SIMULATOR_URL", dead_url())
    saved = {"resources": {"io_manager": {"config": {"root": "/tmp/x"}}}}
    with contextlib.ExitStack() as stack:
        config = _reachable_run_config(saved, stack, "none", 0)
        ai = config["resources"]["ai"]["config"]
        assert config["resources"]["io_manager"] == saved["resources"]["io_manager"]
        assert ai["mode"] == "simulated" and ai["simulator_url"] != os.environ["CINEFORGE_SIMULATOR_URL"]
        assert httpx.get(f"{ai['simulator_url']}/_sim/health", timeout=5).status_code == 200
    assert "is not answering" in capsys.readouterr().err
