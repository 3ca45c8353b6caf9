"""``cineforge ingest`` / ``resume`` as a person (or a script) sees them: subprocesses whose stderr is a pipe,
not a terminal. Providers are the CLI's own simulator on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

CINEFORGE = Path(sys.executable).parent / "cineforge"
PIPELINE_STEPS = ("raw_input", "canonical_script", "scenes", "project_config", "veo3_broll")
PROSE = """The harbor at dawn is grey and quiet. Maria walks along the pier with a letter in her hand.

"I told you he would come back," Maria says.

That night, in the kitchen of the old house, Tomas waits by the stove. He reads the letter twice.
"""
SCENES_REFUSED = "fault:kind=safety,tasks=enrich_scenes"  # permanent: the run stops at scenes


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("CINEFORGE_")}
    env.update(
        DAGSTER_HOME=str(tmp_path / "home"),
        CINEFORGE_DATA=str(tmp_path / "data"),
        PYTHONPATH=str(REPO_ROOT),  # this checkout's code, whatever the shared install points at
    )
    env.pop("NO_COLOR", None)
    return env


def cineforge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CINEFORGE), *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "harbor-letter.txt"
    path.write_text(PROSE)
    return path


def test_a_fallback_run_shows_a_line_per_stage_and_the_summary_and_keeps_dagster_in_its_log_file(
    tmp_path: Path, script: Path
) -> None:
    env = cli_env(tmp_path)
    proc = cineforge(env, "ingest", str(script), "--provider", "simulated", "--faults", "primary-down")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()

    assert "DEBUG" not in proc.stderr and "dagster - " not in proc.stderr
    (log_line,) = [line for line in lines if line.startswith("Dagster's log: ")]
    log = Path(log_line.removeprefix("Dagster's log: "))
    assert log.parent == tmp_path / "home" / "logs"
    logged = log.read_text()
    assert "DEBUG" in logged and "RUN_SUCCESS" in logged and "STEP_START" in logged
    for step in PIPELINE_STEPS:
        assert len([line for line in lines if re.fullmatch(rf"{step} \.\.\. done in [\d.]+ s", line)]) == 1, lines

    # The summary: who failed, the class, and who served instead.
    scenes_line = next(line for line in lines if line.startswith("scenes: "))
    assert re.fullmatch(
        r"scenes: Anthropic overloaded \(transient, 529 x1\)(, Anthropic breaker opened: [\w -]+)?"
        r", served by openai/[\w.-]+ \(fallback\)",
        scenes_line,
    ), scenes_line
    assert lines[-1] == f"run {last_json(proc.stdout)['run_id']} succeeded"

    # The last stdout line is the same JSON contract as before.
    summary = last_json(proc.stdout)
    assert summary["success"] is True and summary["served_by"]["scenes"].startswith("openai/")
    assert set(summary) >= {"partition", "run_id", "success", "artifacts", "mode", "served_by"}


def test_a_failed_run_prints_the_stage_the_class_the_request_id_and_a_resume_command_that_works(
    tmp_path: Path, script: Path
) -> None:
    env = cli_env(tmp_path)
    failed = cineforge(env, "ingest", str(script), "--provider", "simulated", "--faults", SCENES_REFUSED)
    assert failed.returncode == 1, failed.stderr[-3000:]
    run_id = last_json(failed.stdout)["run_id"]
    lines = failed.stderr.splitlines()
    assert "scenes ... failed after" in failed.stderr
    assert "failed at scenes: permanent: the provider refused the content for safety — not retried" in lines
    assert re.search(r"^  provider anthropic/[\w.-]+, request id req_\w+$", failed.stderr, re.MULTILINE)
    (resume_line,) = [line for line in lines if line.startswith("  resume with: ")]
    command = resume_line.removeprefix("  resume with: ")
    assert command.endswith(f"resume {run_id}")

    # Run the printed command as printed, from another folder, with none of the instance variables set.
    bare = {k: v for k, v in env.items() if k not in ("DAGSTER_HOME", "CINEFORGE_DATA")}
    resumed = subprocess.run(
        ["bash", "-c", command], env=bare, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = last_json(resumed.stdout)
    assert result["success"] is True and result["resumed_from"] == run_id
    assert "DEBUG" not in resumed.stderr
    assert re.search(r"^scenes \.\.\. done in", resumed.stderr, re.MULTILINE)


def test_refused_input_is_exit_3_and_starts_no_run(tmp_path: Path, script: Path) -> None:
    env = cli_env(tmp_path)
    link = tmp_path / "link.fountain"
    link.symlink_to(script)
    proc = cineforge(env, "ingest", str(link))
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith(f"cineforge: refused {link}: ")
    assert last_json(proc.stdout)["run_id"] is None
    assert not (tmp_path / "home" / "logs").exists()  # no run, so no Dagster log either

    missing = cineforge(env, "ingest", str(tmp_path / "nowhere.fountain"))
    assert missing.returncode == 3 and "nowhere.fountain" in missing.stderr


def test_version_help_with_exit_codes_and_an_unknown_run_id() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    version = subprocess.run([str(CINEFORGE), "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and re.fullmatch(r"cineforge \S+\n", version.stdout)
    helped = subprocess.run([str(CINEFORGE), "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert "exit codes:" in helped.stdout and "3  refused input" in helped.stdout
    bad = subprocess.run([str(CINEFORGE), "ingest"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2


def test_resuming_an_unknown_run_id_is_exit_2(tmp_path: Path) -> None:
    proc = cineforge(cli_env(tmp_path), "resume", "no-such-run")
    assert proc.returncode == 2 and "no run no-such-run" in proc.stderr


def test_a_simulated_run_prices_its_b_roll_on_the_simulator_like_its_ai_stages(tmp_path: Path, script: Path) -> None:
    """Fail before: ``--provider simulated`` left Veo in the code location's own mode (offline), so B-roll, the
    largest item of a real run's bill, showed as $0 and the simulator's faults never reached it."""
    from cineforge_assets.broll.budget import clip_price

    proc = cineforge(cli_env(tmp_path), "ingest", str(script), "--provider", "simulated")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = last_json(proc.stdout)
    jobs = json.loads(Path(summary["artifacts"]["veo3_broll"]).read_text())["jobs"]
    clips = [job for job in jobs if job["status"] == "succeeded"]
    assert clips, jobs
    price = clip_price(summary["stages"]["veo3_broll"]["model"])
    assert price
    assert summary["stages"]["veo3_broll"]["cost_usd"] == pytest.approx(len(clips) * price)
    assert summary["cost_usd"] >= len(clips) * price
