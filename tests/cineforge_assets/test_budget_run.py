"""The issue-15 budget target: a whole screenplay, simulated, under a per-run cap below what it costs.

The same screenplay is first ingested without a cap (what its AI stages cost is the reference), then again with
a cap of a tenth of that. The capped run must fail with the budget message, never have spent more than the cap (at any
stage line of the telemetry, in its attempts, in its summary), and the simulator must have received exactly
the calls the budget let through: the run's non-skipped attempts.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance

from cineforge_assets.cli import main as cineforge_main
from resources.resilience.budget import RUN_BUDGET_ENV
from resources.simulator import ProviderSimulator

pytestmark = pytest.mark.usefixtures("dagster_home")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as simulator:
        monkeypatch.setenv("CINEFORGE_SIMULATOR_URL", simulator.base_url)
        monkeypatch.setenv("CINEFORGE_BREAKER_STORE_URL", f"sqlite:///{tmp_path / 'breakers.sqlite'}")
        monkeypatch.setenv("CINEFORGE_TELEMETRY_PATH", str(tmp_path / "events.jsonl"))
        monkeypatch.delenv(RUN_BUDGET_ENV, raising=False)
        yield simulator


def total_calls(sim: ProviderSimulator) -> int:
    return sum(int(counts.get("total", 0)) for counts in sim.stats()["by_provider"].values())


def ingest(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any], str]:
    code = cineforge_main(["ingest", str(path), "--provider", "simulated", *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured.err


def telemetry(tmp_path: Path, run_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    return [line for line in lines if line.get("run_id") == run_id]


@pytest.fixture(params=["sample", "big-fish"])
def screenplay(request: pytest.FixtureRequest) -> Path:
    if request.param == "sample":
        return REPO / "samples" / "the-lighthouse-keepers-ledger.fountain"
    corpus: Path = request.getfixturevalue("corpus_dir")
    return corpus / "Big-Fish.fountain"


def test_a_run_under_a_cap_below_its_cost_fails_with_the_budget_message_and_never_spends_past_it(
    screenplay: Path,
    data_root: Path,
    sim: ProviderSimulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, uncapped, _ = ingest(screenplay, capsys)
    assert code == 0 and uncapped["success"], uncapped
    # The text stages' cost: B-roll clips over a cap are dropped, never fail the run (see test_broll_budget).
    full_cost = sum(cost["cost_usd"] for stage, cost in uncapped["stages"].items() if stage != "veo3_broll")
    assert full_cost > 0
    assert uncapped["stages"]["extract_scenes"]["provider"] == "anthropic"

    instance = DagsterInstance.get()
    scenes = instance.get_latest_materialization_event(AssetKey("scenes"))
    assert scenes is not None and scenes.asset_materialization is not None
    meta = scenes.asset_materialization.metadata
    assert meta["cost_usd"].value == pytest.approx(uncapped["stages"]["extract_scenes"]["cost_usd"], abs=1e-6)
    assert meta["fallback_premium_usd"].value == 0.0

    cap = round(full_cost / 10, 6)
    monkeypatch.setenv(RUN_BUDGET_ENV, str(cap))
    # Forget the split stages' cached answers: the capped run must pay for its calls again.
    shutil.rmtree(data_root / "cache", ignore_errors=True)
    calls_before = total_calls(sim)
    # --force: the file and code are unchanged, so a plain ingest would (rightly) find nothing to do.
    code, capped, stderr = ingest(screenplay, capsys, "--force")
    allowed_calls = total_calls(sim) - calls_before

    assert code == 1 and capped["success"] is False
    message = capped["failure"]["message"]
    assert f"per-run (run {capped['run_id']}) budget cap ${cap:.4f} reached" in message
    assert "spent or reserved so far; refused" in message and "estimated at $" in message
    assert capped["failure"]["error_class"] == "permanent"
    assert "budget cap" in stderr

    lines = telemetry(tmp_path, capped["run_id"])
    attempts = [line for line in lines if line["kind"] == "attempt"]
    stage_lines = [line for line in lines if line["kind"] == "stage_cost"]
    assert stage_lines and all(line["run_cost_usd"] <= cap + 1e-9 for line in stage_lines)
    assert sum(a["cost_usd"] for a in attempts if a["cost_usd"] is not None) <= cap + 1e-9
    assert capped["cost_usd"] <= cap + 1e-9
    assert any(a["error_code"] == "over_budget" for a in attempts)
    # Exactly the calls the budget let through reached the simulator (skips, refusals included, did not).
    assert allowed_calls == sum(1 for a in attempts if a["outcome"] != "skipped")
    # Raise the cap and resume: the resumed run reports what it cost, per stage, in its last line too.
    monkeypatch.delenv(RUN_BUDGET_ENV)
    code = cineforge_main(["resume", capped["run_id"]])
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and resumed["success"], resumed
    assert resumed["stages"]["extract_scenes"]["provider"] == "anthropic"
    assert resumed["cost_usd"] == pytest.approx(sum(stage["cost_usd"] for stage in resumed["stages"].values()))
    assert resumed["cost_usd"] > 0
    if screenplay.stem == "Big-Fish":
        # Big enough that a cheaper fallback's worst case fits where Sonnet's does not: some calls were paid.
        assert allowed_calls >= 1 and capped["cost_usd"] > 0
