"""The simulator's Veo extension seen from a plain HTTP client: routes, validation, faults, control routes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from resources.simulator import ManualClock, ProviderSimulator
from resources.simulator.veo import VIDEO_PATH, VeoFault, extension, veo_simulator

KEY = {"x-goog-api-key": "sim-key"}
MODEL = "veo-3.0-generate-001"


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    # extensions=None: the default extension list, which must include Veo.
    with ProviderSimulator(clock=ManualClock()) as simulator:
        yield simulator


@pytest.fixture
def http(sim: ProviderSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        yield client


def submit(http: httpx.Client, prompt: str = "a gull", **extra: object) -> httpx.Response:
    body = {"instances": [{"prompt": prompt}], "parameters": {"aspectRatio": "16:9"}, **extra}
    return http.post(f"/gemini/v1beta/models/{MODEL}:predictLongRunning", json=body, headers=KEY)


def test_veo_is_loaded_by_default(sim: ProviderSimulator, http: httpx.Client) -> None:
    routes = http.get("/_sim/health").json()["routes"]
    assert {"POST veo-submit", "GET veo-poll", "GET veo-download"} <= set(routes)
    assert veo_simulator(sim).polls_to_complete == 2


def test_a_simulator_without_the_extension_has_no_veo() -> None:
    with ProviderSimulator(extensions=()) as bare, pytest.raises(LookupError):
        veo_simulator(bare)


def test_operation_lifecycle_and_redirected_download(http: httpx.Client) -> None:
    name = submit(http).json()["name"]
    assert name.startswith(f"models/{MODEL}/operations/")
    running = http.get(f"/gemini/v1beta/{name}", headers=KEY)
    assert running.json() == {"name": name}  # proto3 JSON omits done=false
    done = http.get(f"/gemini/v1beta/{name}", headers=KEY).json()
    assert done["done"] is True
    assert done["response"]["@type"].endswith("PredictLongRunningResponse")
    uri = done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    first = http.get(uri, headers=KEY)
    assert first.status_code == 302 and "/gemini/_storage/" in first.headers["location"]
    video = http.get(first.headers["location"])  # a signed URL: no key needed
    assert video.headers["content-type"] == "video/mp4" and video.content == VIDEO_PATH.read_bytes()
    assert http.get(first.headers["location"].split("?")[0]).status_code == 403  # token required
    again = http.get(f"/gemini/v1beta/{name}", headers=KEY).json()
    assert again["response"] == done["response"]  # a done operation stays done, same file


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        ({"instances": []}, 400, "prompt is required"),
        ({"parameters": {"aspectRatio": "4:3"}}, 400, "aspectRatio"),
        ({"parameters": "wide"}, 400, "parameters"),
    ],
)
def test_bad_requests_are_rejected_like_google_does(
    http: httpx.Client, mutate: dict[str, object], status: int, message: str
) -> None:
    body: dict[str, object] = {"instances": [{"prompt": "x"}], "parameters": {"aspectRatio": "16:9"}, **mutate}
    answer = http.post(f"/gemini/v1beta/models/{MODEL}:predictLongRunning", json=body, headers=KEY)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and message in error["message"]


def test_key_json_and_model_are_checked(http: httpx.Client) -> None:
    url = f"/gemini/v1beta/models/{MODEL}:predictLongRunning"
    assert http.post(url, json={"instances": [{"prompt": "x"}]}).json()["error"]["status"] == "PERMISSION_DENIED"
    assert http.post(url, content=b"{not json", headers=KEY).status_code == 400
    other = http.post("/gemini/v1beta/models/gemini-2.5-pro:predictLongRunning", json={}, headers=KEY)
    assert other.status_code == 404 and "predictLongRunning" in other.json()["error"]["message"]
    assert http.get(f"/gemini/v1beta/models/{MODEL}/operations/abc").status_code == 403
    assert http.get(f"/gemini/v1beta/models/{MODEL}/operations/abc", headers=KEY).status_code == 404
    assert http.get("/gemini/v1beta/files/abc:download").status_code == 403
    assert http.get("/gemini/v1beta/files/abc:download", headers=KEY).status_code == 404


def test_prompt_markers_fire_faults(http: httpx.Client) -> None:
    limited = submit(http, "a gull [veo-sim:rate_limited]")
    assert limited.status_code == 429 and limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    details = limited.json()["error"]["details"]
    assert any(d.get("retryDelay") == "30s" for d in details)
    assert submit(http, "[veo-sim:invalid_argument]").status_code == 400
    assert submit(http, "[veo-sim:submit_failed]").status_code == 500
    assert submit(http, "[veo-sim:not_a_kind]").status_code == 200


def test_rules_match_by_index_and_prompt_and_run_out(sim: ProviderSimulator, http: httpx.Client) -> None:
    veo = veo_simulator(sim)
    veo.set_faults(
        [
            VeoFault(kind="submit_failed", job_index=1),
            VeoFault(kind="rate_limited", prompt_contains="storm", times=1),
        ]
    )
    assert submit(http, "calm").status_code == 200  # index 0
    assert submit(http, "calm").status_code == 500  # index 1
    assert submit(http, "storm").status_code == 429
    assert submit(http, "storm").status_code == 200  # times ran out
    assert veo.state()["submits"] == {"ok": 2, "submit_failed": 1, "rate_limited": 1}
    assert sim.stats()["by_provider"]["veo"] == {"total": 4, "ok": 2, "submit_failed": 1, "rate_limited": 1}
    veo.reset()
    assert veo.state()["submits"] == {} and veo.state()["faults"][1]["times"] == 0


def test_stalled_and_flaky_operations(sim: ProviderSimulator, http: httpx.Client) -> None:
    veo = veo_simulator(sim)
    veo.set_faults([VeoFault(kind="stalled", job_index=0), VeoFault(kind="poll_flaky", job_index=1)])
    stalled = submit(http).json()["name"]
    flaky = submit(http).json()["name"]
    for _ in range(5):
        assert "done" not in http.get(f"/gemini/v1beta/{stalled}", headers=KEY).json()
    assert http.get(f"/gemini/v1beta/{flaky}", headers=KEY).status_code == 503
    assert http.get(f"/gemini/v1beta/{flaky}", headers=KEY).status_code == 200


def test_control_routes_set_and_show_faults(sim: ProviderSimulator, http: httpx.Client) -> None:
    answer = http.put("/_sim/veo/faults", json={"faults": [{"kind": "generation_failed"}], "polls_to_complete": 1})
    assert answer.status_code == 200 and answer.json()["polls_to_complete"] == 1
    assert http.get("/_sim/veo/faults").json()["faults"][0]["kind"] == "generation_failed"
    name = submit(http).json()["name"]
    failed = http.get(f"/gemini/v1beta/{name}", headers=KEY).json()
    assert failed["done"] is True and failed["error"]["code"] == 13
    assert http.put("/_sim/veo/faults", json={"faults": [{"kind": "melted"}]}).status_code == 400
    assert http.put("/_sim/veo/faults", json=[1, 2]).status_code == 400
    state = http.get("/_sim/veo/state").json()
    assert state["polls"] == 1 and state["operations"] == 1


@pytest.mark.parametrize(
    ("profile", "expect"),
    [
        ("resets:provider=veo", "reset"),
        ("malformed:provider=veo", "truncated"),
        ("safety:provider=veo,rate=1", "filtered"),
        ("invalid-output:provider=veo", "ok"),
    ],
)
def test_global_profiles_apply_to_submits(
    sim: ProviderSimulator, http: httpx.Client, profile: str, expect: str
) -> None:
    sim.set_profile(profile)
    veo_simulator(sim).set_faults([], polls_to_complete=1)
    if expect == "reset":
        with pytest.raises(httpx.TransportError):
            submit(http)
        return
    answer = submit(http)
    if expect == "truncated":
        with pytest.raises(ValueError):
            answer.json()
        return
    done = http.get(f"/gemini/v1beta/{answer.json()['name']}", headers=KEY).json()
    video_response = done["response"]["generateVideoResponse"]
    assert ("raiMediaFilteredReasons" in video_response) == (expect == "filtered")


def test_timeout_profile_holds_the_submit(sim: ProviderSimulator) -> None:
    sim.set_profile("timeouts:provider=veo,hold=5")
    with httpx.Client(base_url=sim.base_url, timeout=0.2) as impatient, pytest.raises(httpx.ReadTimeout):
        submit(impatient)


def test_extension_settings_apply() -> None:
    rules = [VeoFault(kind="download_failed")]
    with ProviderSimulator(extensions=[extension(polls_to_complete=0, faults=rules)]) as sim:
        with httpx.Client(base_url=sim.base_url, timeout=10) as http:
            name = submit(http).json()["name"]
            uri = http.get(f"/gemini/v1beta/{name}", headers=KEY).json()["response"]["generateVideoResponse"][
                "generatedSamples"
            ][0]["video"]["uri"]
            missing = http.get(uri, headers=KEY)
        assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
        assert rules[0].times is None  # the simulator copies rules; the caller's objects are untouched
