"""The provider resource across processes and through real HTTP on loopback against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from resources.ai import AIProviderResource
from resources.providers.prompts import build_request
from resources.resilience.health_probe import PROBE_PAYLOAD
from resources.simulator import ProviderSimulator
from tests.resources.resilience.fakes import RecordingListener

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "tests" / "resources" / "stage_worker.py"
T0 = 1_800_000_000.0


def run_stage(sim: ProviderSimulator, store_url: str, now: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(WORKER), sim.base_url, store_url, str(now)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def anthropic_calls(sim: ProviderSimulator) -> int:
    return int(sim.stats()["by_provider"].get("anthropic", {}).get("total", 0))


def test_breaker_opened_in_one_process_stops_calls_from_the_next_until_cooldown_then_one_probe(
    tmp_path: Path,
) -> None:
    store_url = f"sqlite:///{tmp_path / 'breakers.sqlite'}"
    with ProviderSimulator(profile="primary-down") as sim:
        # Two stages (separate processes) each meet the overloaded primary once: the breaker opens.
        first = run_stage(sim, store_url, T0)
        second = run_stage(sim, store_url, T0 + 1)
        assert first["provider"] != "anthropic" and second["provider"] != "anthropic"
        opened_after = anthropic_calls(sim)
        assert opened_after == 2

        # Within the cooldown, another process makes zero calls to the open provider.
        during = run_stage(sim, store_url, T0 + 10)
        assert anthropic_calls(sim) == opened_after
        assert ["anthropic", "skipped", "skip_provider", "breaker_open"] in during["decisions"]

        # After the cooldown, concurrent stages in two processes let exactly one probe through.
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda _: run_stage(sim, store_url, T0 + 45), range(2)))
        assert anthropic_calls(sim) == opened_after + 1
        assert all(r["provider"] != "anthropic" for r in results)

        # The failed probe re-opened the breaker: zero calls again.
        run_stage(sim, store_url, T0 + 50)
        assert anthropic_calls(sim) == opened_after + 1


def test_recovered_provider_closes_the_breaker_after_a_successful_probe(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'breakers.sqlite'}"
    with ProviderSimulator(profile="primary-down") as sim:
        run_stage(sim, store_url, T0)
        run_stage(sim, store_url, T0 + 1)
        sim.set_profile("none")
        probe = run_stage(sim, store_url, T0 + 45)
        assert probe["provider"] == "anthropic"
        after = run_stage(sim, store_url, T0 + 46)
        assert after["provider"] == "anthropic"


SENTINEL = "sk-ant-SENTINEL-7f3c9e1b2a"


@pytest.mark.usefixtures("data_root")
def test_secrets_never_reach_events_metadata_logs_or_artifacts(
    tmp_path: Path, dagster_home: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from dagster import DagsterInstance

    from cineforge_assets.definitions import defs
    from cineforge_assets.paths import data_root
    from cineforge_assets.sources import register_source

    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL)
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL + "-oai")
    monkeypatch.setenv("GEMINI_API_KEY", SENTINEL + "-gem")
    source = tmp_path / "harbor.txt"
    source.write_text("The harbor at dawn. Maria reads a letter.\n\nThat night, in the kitchen, Tomas waits.\n")
    # Faults whose answers echo request details: auth failure on the primary; a proxy in front of OpenAI that
    # echoes the key into the error's status field and the x-request-id header (every wire field, not just
    # the message, must be scrubbed).
    with ProviderSimulator(profile="auth+echo-key:provider=openai") as sim, DagsterInstance.get() as instance:
        key = register_source(source)
        instance.add_dynamic_partitions("screenplays", [key])
        config = {
            "mode": "live",
            "anthropic_api_key": {"env": "ANTHROPIC_API_KEY"},
            "openai_api_key": {"env": "OPENAI_API_KEY"},
            "gemini_api_key": {"env": "GEMINI_API_KEY"},
            "anthropic_base_url": sim.anthropic_url,
            "openai_base_url": sim.openai_url,
            "gemini_base_url": sim.gemini_url,
            "breaker_store_url": f"sqlite:///{tmp_path / 'b.sqlite'}",
        }
        result = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
            instance=instance,
            partition_key=key,
            run_config={"resources": {"ai": {"config": config}}},
            raise_on_error=False,
        )
        assert result.success
        assert sim.stats()["by_outcome"].get("auth", 0) >= 1 or sim.stats()["total"] > 0
        records = instance.get_records_for_run(result.run_id).records
        event_text = "\n".join(r.event_log_entry.to_json() for r in records)
        run_config_text = json.dumps(instance.get_run_by_id(result.run_id).run_config)
    captured = capfd.readouterr()
    haystacks = {
        "events": event_text,
        "run_config": run_config_text,
        "stdout/stderr": captured.out + captured.err,
    }
    for path in list(data_root().rglob("*")) + list(dagster_home.rglob("*")):
        if path.is_file():
            haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
    leaks = [where for where, text in haystacks.items() if "SENTINEL" in text]
    assert leaks == []
    assert "ANTHROPIC_API_KEY" in run_config_text  # only the variable's name is stored


def test_a_provider_session_reports_to_its_sink_and_listeners_and_closes_its_client_when_the_block_fails(
    simulator: ProviderSimulator, tmp_path: Path
) -> None:
    ai = AIProviderResource(
        mode="simulated",
        simulator_url=simulator.base_url,
        breaker_store_url=f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        telemetry_path=str(tmp_path / "events.jsonl"),
        breaker_warm_up_calls=1,
    )
    listener = RecordingListener()
    request = build_request("project_insights", PROBE_PAYLOAD, stage="health")
    with pytest.raises(KeyError), ai.session([listener]) as session:
        adapter = session.adapters["anthropic"]
        assert adapter.complete("claude-haiku-4-5-20251001", request, timeout=10).request_id
        session.breaker.record(session.breaker.acquire("anthropic"), success=False)  # the warm-up call failed
        raise KeyError("the caller's block fails")
    with pytest.raises(RuntimeError, match="closed"):
        adapter.complete("claude-haiku-4-5-20251001", request, timeout=10)
    assert [(t.provider, t.to_state) for t in listener.transitions] == [("anthropic", "open")]
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(line["kind"], line["to_state"]) for line in lines] == [("breaker_transition", "open")]


def test_every_telemetry_line_says_which_mode_wrote_it_in_one_shared_file(
    simulator: ProviderSimulator, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    common: dict[str, Any] = {
        "breaker_store_url": f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        "telemetry_path": str(events),
        "breaker_warm_up_calls": 1,
    }
    drill = AIProviderResource(mode="simulated", simulator_url=simulator.base_url, **common)
    offline = AIProviderResource(mode="offline", **common)
    with drill.session() as session:  # the warm-up call failed: a breaker transition, stamped too
        session.breaker.record(session.breaker.acquire("anthropic"), success=False)
    drill.run_task(stage="project_config", task="project_insights", payload=PROBE_PAYLOAD)
    offline.run_task(stage="project_config", task="project_insights", payload=PROBE_PAYLOAD)

    lines = [json.loads(line) for line in events.read_text().splitlines()]
    by_kind_and_mode = sorted({(line["kind"], line.get("mode")) for line in lines})
    assert by_kind_and_mode == [
        ("attempt", "offline"),
        ("attempt", "simulated"),
        ("breaker_transition", "simulated"),
        ("stage_cost", "offline"),
        ("stage_cost", "simulated"),
    ]
    simulated = [line for line in lines if line["kind"] == "attempt" and line["mode"] == "simulated"]
    assert simulated and all(line["provider"] != "offline" for line in simulated)
