"""Smoke test of the code location through Dagster's own CLI, as an operator would run it.

``dagster asset materialize -m cineforge_assets.definitions --select '*' --partition KEY`` in a subprocess, on a
temporary DAGSTER_HOME and CINEFORGE_DATA with one registered partition, offline (no API keys). ``'*'``
is every asset of the code location, including ones added later (reports, b-roll): all of them must
materialize offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from cineforge_assets.definitions import defs
from cineforge_assets.sources import register_source
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"


def offline_env(home: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("CINEFORGE_")}
    env.update(DAGSTER_HOME=str(home), CINEFORGE_DATA=str(data), CINEFORGE_PROVIDER_MODE="offline")
    return env


def test_dagster_asset_materialize_every_asset_for_one_partition(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    key = register_source(SAMPLE, root=data)
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("screenplays", [key])

    dagster = Path(sys.executable).parent / "dagster"
    code_location = ["-m", "cineforge_assets.definitions"]
    command = [str(dagster), "asset", "materialize", *code_location, "--select", "*", "--partition", key]
    proc = subprocess.run(
        command, cwd=REPO_ROOT, env=offline_env(home, data), capture_output=True, text=True, timeout=600
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output, output[-4000:]

    with DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == key
        every_asset = {k for k in defs.resolve_asset_graph().get_all_asset_keys() if _executable(k)}
        materialized = {
            k for k in every_asset if instance.get_latest_materialization_event(k) is not None
        }
        assert materialized == every_asset
        for name in ("raw_input", "canonical_script", "scenes", "project_config"):
            event = instance.get_latest_materialization_event(AssetKey(name))
            assert event is not None and event.dagster_event is not None
            assert event.dagster_event.partition == key
    assert (data / "artifacts" / "project_config" / f"{key}.json").exists()


def _executable(key: AssetKey) -> bool:
    return defs.resolve_asset_graph().get(key).is_executable
