"""``cineforge estimate``: the real requests, priced on every model of the chain, no provider called."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.estimate import estimate_file
from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.screenplay.fountain import parse_fountain, write_fountain
from cineforge_assets.screenplay.payloads import enrich_scenes_payload
from cineforge_assets.screenplay.scenes import split_scenes
from resources.providers.limits import estimate_tokens
from resources.providers.prices import ModelPrice, PriceTable
from resources.providers.prompts import build_request
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"
PROSE = """The harbor at dawn is grey and quiet. Maria walks along the pier with a letter in her hand.

That night, in the kitchen of the old house, Tomas waits by the stove. He reads the letter twice.
"""


def table(*rows: ModelPrice) -> PriceTable:
    return PriceTable(rows, date(2026, 11, 30))


def row(provider: str, model: str, input_per_mtok: float, output_per_mtok: float) -> ModelPrice:
    return ModelPrice(provider=provider, model=model, input_per_mtok=input_per_mtok, output_per_mtok=output_per_mtok)


def test_the_scenes_request_is_the_one_the_asset_sends() -> None:
    raw = read_source(SAMPLE)
    fountain = write_fountain(parse_fountain(raw.text))
    script = parse_fountain(fountain)
    request = build_request(
        "enrich_scenes", enrich_scenes_payload(script.title or raw.file_name, split_scenes(script, fountain))
    )
    estimate = estimate_file(SAMPLE)
    scenes = next(s for s in estimate.stages if s.stage == "extract_scenes")
    assert scenes.input_tokens == estimate_tokens(request.system + request.prompt)
    assert scenes.output_tokens > 0
    assert [s.stage for s in estimate.stages] == ["extract_scenes", "project_config"]  # Fountain: no normalize


def test_each_model_of_the_chain_is_priced_and_the_total_is_the_first_choices() -> None:
    prices = table(
        row("anthropic", "claude-sonnet-4-6", 3.0, 15.0),
        row("openai", "gpt-4.1", 2.0, 8.0),
        row("anthropic", "claude-haiku-4-5", 1.0, 5.0),
        ModelPrice(provider="veo", model="veo-3.0-generate-001", per_second=0.5),
    )
    chains = {"extract_scenes": ["claude-sonnet-4-6", "gpt-4.1"], "project_config": ["claude-haiku-4-5", "o4-mini"]}
    estimate = estimate_file(SAMPLE, table=prices, chains=chains, broll_clips=2)
    scenes, insights = estimate.stages
    expected = (scenes.input_tokens * 3.0 + scenes.output_tokens * 15.0) / 1e6
    assert scenes.on_chain[0].usd == pytest.approx(expected)
    assert scenes.on_chain[1].usd == pytest.approx((scenes.input_tokens * 2.0 + scenes.output_tokens * 8.0) / 1e6)
    assert insights.on_chain[1].usd is None and estimate.unpriced == ("openai/o4-mini",)  # unpriced, not free
    assert estimate.broll_usd == pytest.approx(2 * 8 * 0.5)
    assert estimate.estimated_cost_usd == pytest.approx(expected + (insights.on_chain[0].usd or 0.0) + 8.0, abs=1e-6)


def test_prose_is_estimated_with_its_normalize_call(tmp_path: Path) -> None:
    path = tmp_path / "harbor.txt"
    path.write_text(PROSE)
    stages = [s.stage for s in estimate_file(path).stages]
    assert stages[0] == "normalize"


def test_the_cli_prints_the_stages_and_a_last_json_line_without_calling_anyone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keys and a dead provider URL: any call would fail loudly; the estimate never makes one.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    assert cineforge_main(["estimate", str(SAMPLE)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["estimated_cost_usd"] > 0
    assert "anthropic/claude-sonnet-4-6" in summary["stages"]["extract_scenes"]["cost_usd_by_model"]
    assert any("claude-sonnet-4-6: $" in line for line in out[:-1])


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cineforge_main(["estimate", str(tmp_path / "missing.fountain")]) == 3  # refused input
    captured = capsys.readouterr()
    assert "cannot estimate" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["estimated_cost_usd"] is None


def test_an_answer_over_the_ceiling_is_priced_as_the_executor_spends_it() -> None:
    from cineforge_assets.estimate import _on_model
    from resources.providers.prices import TokenUsage

    prices = table(row("anthropic", "claude-sonnet-4-6", 3.0, 15.0))
    cost = _on_model("anthropic", "claude-sonnet-4-6", TokenUsage(input_tokens=1000, output_tokens=5000), 4096, prices)
    # A cut answer at the 4,096 ceiling, then the same prompt again with the whole answer.
    assert cost.calls == 2 and cost.fits
    assert cost.usd == pytest.approx((1000 * 3 + 4096 * 15 + 1000 * 3 + 5000 * 15) / 1e6)
    fits = _on_model("anthropic", "claude-sonnet-4-6", TokenUsage(input_tokens=1000, output_tokens=4000), 4096, prices)
    assert fits.calls == 1 and fits.usd == pytest.approx((1000 * 3 + 4000 * 15) / 1e6)


@pytest.mark.slow
@pytest.mark.usefixtures("data_root")
def test_big_fish_estimate_is_within_10_percent_of_what_a_simulated_run_reports(
    corpus_dir: Path, instance: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cineforge_assets.paths import telemetry_path
    from resources.providers.prices import TokenUsage, price_table
    from resources.simulator import ProviderSimulator

    source = corpus_dir / "Big-Fish.fountain"
    assert cineforge_main(["estimate", str(source)]) == 0
    estimate = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with ProviderSimulator() as sim:
        monkeypatch.setenv("CINEFORGE_SIMULATOR_URL", sim.base_url)
        assert cineforge_main(["ingest", str(source), "--provider", "simulated"]) == 0
    run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # What the run reports: every answered call's usage as the simulator returned it, at list price.
    prices = price_table()
    reported = 0.0
    for line in telemetry_path().read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") != "attempt" or record.get("run_id") != run["run_id"] or not record.get("input_tokens"):
            continue
        usage = TokenUsage(input_tokens=record["input_tokens"], output_tokens=record.get("output_tokens") or 0)
        cost = prices.cost_of(record["provider"], record["model"], usage).usd
        assert cost is not None
        reported += cost
    estimated_ai = estimate["estimated_cost_usd"] - estimate["broll"]["cost_usd"]
    assert reported > 0
    print(f"estimate {estimated_ai:.6f} vs simulated run {reported:.6f} USD")
    assert abs(estimated_ai - reported) <= 0.10 * reported, (estimated_ai, reported)
