from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from resources.adapters.anthropic import AnthropicAdapter
from resources.providers import prompts
from resources.resilience.errors import ProviderError, TransientProviderError
from resources.simulator import ManualClock, ProviderSimulator, SimRequest, SimResponse

REPO_ROOT = Path(__file__).resolve().parents[3]
ANTHROPIC_BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}
ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def post_anthropic(client: httpx.Client, sim: ProviderSimulator) -> httpx.Response:
    return client.post(f"{sim.anthropic_url}/v1/messages", json=ANTHROPIC_BODY, headers=ANTHROPIC_HEADERS)


def test_urls(simulator: ProviderSimulator) -> None:
    assert simulator.base_url == f"http://127.0.0.1:{simulator.port}"
    assert simulator.anthropic_url == simulator.base_url + "/anthropic"
    assert simulator.openai_url == simulator.base_url + "/openai/v1"
    assert simulator.gemini_url == simulator.base_url + "/gemini"


def test_control_routes(simulator: ProviderSimulator) -> None:
    with httpx.Client(base_url=simulator.base_url) as client:
        health = client.get("/_sim/health").json()
        assert health["status"] == "ok" and health["profile"] == "none"
        assert health["providers"]["openai"] == simulator.openai_url

        assert client.put("/_sim/faults", json={"profile": "primary-down", "seed": 3}).status_code == 200
        assert client.get("/_sim/faults").json()["profile"]["name"] == "primary-down"
        assert post_anthropic(client, simulator).status_code == 529

        assert client.put("/_sim/faults", content=b"none").json()["profile"]["name"] == "none"
        full = {"name": "custom", "rules": [{"kind": "auth", "provider": "anthropic"}]}
        assert client.put("/_sim/faults", json=full).status_code == 200
        assert post_anthropic(client, simulator).status_code == 401
        assert client.put("/_sim/faults", json={"profile": "earthquake"}).status_code == 400

        stats = client.get("/_sim/stats").json()
        assert stats["total"] == 2
        assert stats["by_model"]["anthropic"]["claude-sonnet-4-5"] == {"overloaded": 1, "auth": 1}
        assert stats["profile"] == "custom"

        assert client.post("/_sim/reset").status_code == 200
        assert client.get("/_sim/stats").json()["total"] == 0
        assert client.get("/nowhere").status_code == 404
        assert client.get("/_sim/reset").status_code == 405


def test_overload_storm_recovers_when_the_clock_moves(clock: ManualClock) -> None:
    with ProviderSimulator(profile="overload-storm:duration=20", clock=clock, extensions=()) as sim:
        with httpx.Client() as client:
            assert post_anthropic(client, sim).status_code == 529
            clock.advance(19.9)
            assert post_anthropic(client, sim).status_code == 529
            clock.advance(0.1)
            assert post_anthropic(client, sim).status_code == 200
        assert sim.stats()["by_provider"]["anthropic"] == {"total": 3, "overloaded": 2, "ok": 1}


def test_counts_are_exact_under_concurrency(clock: ManualClock) -> None:
    calls = 240
    with ProviderSimulator(profile="safety:rate=0.5", seed=11, clock=clock, extensions=()) as sim:
        request = prompts.build_request("project_insights", {"title": "T"})
        with AnthropicAdapter("k", base_url=sim.anthropic_url) as adapter:

            def call(_: int) -> str:
                try:
                    adapter.complete("claude-sonnet-4-5", request, timeout=10)
                    return "ok"
                except ProviderError as error:
                    return error.error_code

            with ThreadPoolExecutor(max_workers=12) as pool:
                outcomes = list(pool.map(call, range(calls)))
        stats = sim.stats()
    assert stats["total"] == calls
    assert stats["by_outcome"]["ok"] == outcomes.count("ok")
    assert stats["by_outcome"]["safety"] == outcomes.count("safety_refusal")
    assert stats["by_outcome"]["ok"] + stats["by_outcome"]["safety"] == calls


def test_requests_are_validated_like_the_real_api(simulator: ProviderSimulator) -> None:
    with httpx.Client() as client:
        no_key = client.post(f"{simulator.anthropic_url}/v1/messages", json=ANTHROPIC_BODY)
        assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
        gemini = client.post(
            f"{simulator.gemini_url}/v1beta/models/gemini-2.5-flash:generateContent",
            json={"contents": []},
            headers={"x-goog-api-key": "k"},
        )
        assert gemini.status_code == 400 and gemini.json()["error"]["status"] == "INVALID_ARGUMENT"
        gemini_no_key = client.post(
            f"{simulator.gemini_url}/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": []}
        )
        assert gemini_no_key.status_code == 403
        openai_no_key = client.post(
            f"{simulator.openai_url}/chat/completions", json={"model": "m", "messages": []}
        )
        assert openai_no_key.status_code == 401 and openai_no_key.headers["x-request-id"].startswith("req_")
    assert simulator.stats()["by_outcome"] == {"rejected": 4}


def test_unknown_prompt_gets_a_generic_valid_answer(simulator: ProviderSimulator) -> None:
    with httpx.Client() as client:
        response = post_anthropic(client, simulator)
    assert response.status_code == 200 and response.headers["request-id"].startswith("req_")
    text = response.json()["content"][0]["text"]
    assert json.loads(text)["answer"]


def test_extra_routes_share_fault_clock_stats_and_wire_formats(clock: ManualClock) -> None:
    def register(sim: ProviderSimulator) -> None:
        def predict(request: SimRequest) -> SimResponse:
            model = request.params["model"]
            rule = sim.decide_fault("veo", model)
            sim.record("veo", model, rule.kind if rule else "ok")
            if rule:
                return sim.wire("gemini").error(rule.kind, model, "", rule.retry_after)
            return SimResponse.json(200, {"name": f"models/{model}/operations/op-1"})

        sim.add_route("POST", r"/gemini/v1beta/models/(?P<model>[^/:]+):predictLongRunning", predict)

    with ProviderSimulator(
        profile="overload-storm:provider=veo,duration=5", clock=clock, extensions=[register]
    ) as sim:
        url = f"{sim.gemini_url}/v1beta/models/veo-3.0-generate-001:predictLongRunning"
        with httpx.Client() as client:
            busy = client.post(url, json={})
            assert busy.status_code == 503 and busy.json()["error"]["status"] == "UNAVAILABLE"
            clock.advance(5)
            assert client.post(url, json={}).json()["name"].endswith("op-1")
        assert sim.stats()["by_model"]["veo"]["veo-3.0-generate-001"] == {"overloaded": 1, "ok": 1}


def test_timeout_fault_releases_held_clients_on_stop(clock: ManualClock) -> None:
    sim = ProviderSimulator(profile="timeouts:hold=600", clock=clock, extensions=()).start()
    with (
        AnthropicAdapter("k", base_url=sim.anthropic_url) as adapter,
        pytest.raises(TransientProviderError) as caught,
    ):
        adapter.complete(
            "claude-sonnet-4-5", prompts.build_request("project_insights", {"title": "T"}), timeout=0.2
        )
    assert caught.value.error_code == "timeout"
    sim.stop()  # must not wait 600 s for the held handler


def test_cli_prints_base_url_first_and_serves_the_profile() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resources.simulator",
            "--port",
            "0",
            "--faults",
            "primary-down",
            "--seed",
            "1",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base_url, timeout=10) as client:
            assert client.get("/_sim/health").json()["profile"] == "primary-down"
            response = client.post("/anthropic/v1/messages", json=ANTHROPIC_BODY, headers=ANTHROPIC_HEADERS)
            assert response.status_code == 529
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_cli_rejects_an_unknown_profile() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "resources.simulator", "--faults", "earthquake"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 2 and "unknown fault profile" in result.stderr
