"""The Veo client and ``Veo3Resource`` over real HTTP on loopback: wire format, errors, downloads, keys."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import EnvVar

from resources.adapters.veo import (
    DEFAULT_MODEL,
    VeoClient,
    is_playable_mp4,
    mp4_top_level_boxes,
)
from resources.resilience.errors import (
    PermanentProviderError,
    ProviderUnavailableError,
    TransientProviderError,
)
from resources.simulator import ManualClock, ProviderSimulator, SimRequest, SimResponse
from resources.simulator.veo import VIDEO_PATH, VeoFault, extension, veo_simulator
from resources.veo3 import LIVE_POLL_INTERVAL_S, LOOPBACK_POLL_INTERVAL_S, Veo3Resource

KEY = "AIzaSyTEST-veo-key-0123456789abcdef"
VIDEO = VIDEO_PATH.read_bytes()


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(clock=ManualClock(), extensions=[extension(polls_to_complete=2)]) as simulator:
        yield simulator


@pytest.fixture
def bare() -> Iterator[ProviderSimulator]:
    """A simulator without Veo, for hand-written routes that record what the client sent."""
    with ProviderSimulator(extensions=()) as simulator:
        yield simulator


@pytest.fixture
def client(sim: ProviderSimulator) -> Iterator[VeoClient]:
    with VeoClient(KEY, sim.gemini_url, timeout_s=10) as veo_client:
        yield veo_client


class Recorder:
    def __init__(self, response: SimResponse) -> None:
        self.response = response
        self.requests: list[SimRequest] = []

    def __call__(self, request: SimRequest) -> SimResponse:
        self.requests.append(request)
        return self.response


# ---------------------------------------------------------------- wire format


def test_submit_speaks_predict_long_running(bare: ProviderSimulator) -> None:
    recorder = Recorder(SimResponse.json(200, {"name": f"models/{DEFAULT_MODEL}/operations/op123"}))
    bare.add_route("POST", r"/gemini/v1beta/models/(?P<model>[^/:]+):predictLongRunning", recorder)
    params = {"negativePrompt": "captions", "resolution": "720p"}
    with VeoClient(KEY, bare.gemini_url, parameters=params) as veo:
        name = veo.submit("A lighthouse beam sweeps the fog")
    assert name == f"models/{DEFAULT_MODEL}/operations/op123"
    (request,) = recorder.requests
    assert request.params["model"] == "veo-3.0-generate-001"
    assert request.header("x-goog-api-key") == KEY
    assert "key" not in request.query  # never the ?key= form: URLs end up in logs
    assert request.json() == {
        "instances": [{"prompt": "A lighthouse beam sweeps the fog"}],
        "parameters": {"aspectRatio": "16:9", "negativePrompt": "captions", "resolution": "720p"},
    }


def test_full_flow_submit_poll_download(sim: ProviderSimulator, client: VeoClient) -> None:
    name = client.submit("Waves break over black rocks at dawn")
    first = client.poll(name)
    assert first.done is False and first.video_uri is None and first.error is None
    done = client.poll(name)
    assert done.done is True and done.error is None
    assert done.video_uri and done.video_uri.endswith(":download?alt=media")
    video = client.download(done.video_uri)
    assert video == VIDEO and is_playable_mp4(video)
    assert veo_simulator(sim).state()["downloads"] == 1


def test_models_prefix_is_accepted(sim: ProviderSimulator) -> None:
    with VeoClient(KEY, sim.gemini_url, "models/veo-3.0-generate-001") as veo:
        assert veo.submit("x").startswith("models/veo-3.0-generate-001/operations/")


def test_operation_errors_and_filters_are_parsed(client: VeoClient) -> None:
    numeric = client.parse_operation("op", {"name": "op", "done": True, "error": {"code": 3, "message": "bad"}})
    assert numeric.error is not None and numeric.error.status == "INVALID_ARGUMENT"
    assert numeric.error.describe() == "INVALID_ARGUMENT (3): bad"
    named = client.parse_operation("op", {"done": True, "error": {"code": 13, "status": "INTERNAL", "message": "x"}})
    assert named.name == "op" and named.error is not None and named.error.status == "INTERNAL"
    odd = client.parse_operation("op", {"done": True, "error": {"message": "?"}})
    assert odd.error is not None and odd.error.status == "UNKNOWN" and odd.error.code is None
    filtered = client.parse_operation(
        "op",
        {
            "done": True,
            "response": {"generateVideoResponse": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["kids"]}},
        },
    )
    assert filtered.error is not None and filtered.error.status == "RAI_FILTERED" and "kids" in filtered.error.message
    empty = client.parse_operation("op", {"done": True, "response": {}})
    assert empty.error is not None and empty.error.status == "NO_SAMPLES"


@pytest.mark.parametrize(
    ("kind", "status"),
    [("generation_failed", "INTERNAL"), ("rai_filtered", "RAI_FILTERED")],
)
def test_failed_operations_come_back_as_errors(
    sim: ProviderSimulator, client: VeoClient, kind: str, status: str
) -> None:
    veo_simulator(sim).set_faults([VeoFault.model_validate({"kind": kind})], polls_to_complete=1)
    operation = client.poll(client.submit("x"))
    assert operation.done and operation.video_uri is None
    assert operation.error is not None and operation.error.status == status


# ---------------------------------------------------------------- errors through the taxonomy


def test_rate_limit_is_transient_with_the_body_retry_delay(sim: ProviderSimulator, client: VeoClient) -> None:
    veo_simulator(sim).set_faults([VeoFault(kind="rate_limited")])
    with pytest.raises(TransientProviderError) as caught:
        client.submit("x")
    assert caught.value.status == 429 and caught.value.error_code == "RESOURCE_EXHAUSTED"
    assert caught.value.retry_after == 30.0
    assert KEY not in str(caught.value)


def test_submit_failures_are_classified(sim: ProviderSimulator, client: VeoClient) -> None:
    veo = veo_simulator(sim)
    veo.set_faults([VeoFault(kind="submit_failed", job_index=0), VeoFault(kind="invalid_argument", job_index=1)])
    with pytest.raises(TransientProviderError) as server_error:
        client.submit("x")
    assert server_error.value.status == 500
    with pytest.raises(PermanentProviderError) as invalid:
        client.submit("x")
    assert invalid.value.status == 400 and "INVALID_ARGUMENT" in str(invalid.value)


def test_a_bad_key_makes_veo_unavailable(sim: ProviderSimulator, client: VeoClient) -> None:
    sim.set_profile("auth:provider=veo")
    with pytest.raises(ProviderUnavailableError) as caught:
        client.submit("x")
    assert caught.value.error_code == "API_KEY_INVALID"


def test_global_overload_profile_reaches_veo_submits(sim: ProviderSimulator, client: VeoClient) -> None:
    sim.set_profile("overload-storm:provider=veo,duration=5")
    with pytest.raises(TransientProviderError) as caught:
        client.submit("x")
    assert caught.value.status == 503
    assert sim.stats()["by_provider"]["veo"]["overloaded"] == 1


def test_poll_errors_are_classified(sim: ProviderSimulator, client: VeoClient) -> None:
    veo_simulator(sim).set_faults([VeoFault(kind="poll_failed")])
    name = client.submit("x")
    with pytest.raises(TransientProviderError):
        client.poll(name)
    with pytest.raises(ProviderUnavailableError):  # 404: the operation is not there
        client.poll(f"models/{DEFAULT_MODEL}/operations/doesnotexist")
    with pytest.raises(PermanentProviderError, match="malformed operation name"):
        client.poll("models/veo/../../secrets")


def test_download_404_is_not_retriable(sim: ProviderSimulator, client: VeoClient) -> None:
    veo_simulator(sim).set_faults([VeoFault(kind="download_failed")], polls_to_complete=1)
    operation = client.poll(client.submit("x"))
    assert operation.video_uri
    with pytest.raises(ProviderUnavailableError) as caught:
        client.download(operation.video_uri)
    assert caught.value.status == 404


def test_unreachable_api_is_a_transient_transport_error() -> None:
    with ProviderSimulator(extensions=()) as dead:
        url = dead.gemini_url
    with VeoClient(KEY, url, timeout_s=2) as veo, pytest.raises(TransientProviderError) as caught:
        veo.submit("x")
    assert caught.value.error_code == "connection_error"


def test_malformed_answers_are_transient(bare: ProviderSimulator) -> None:
    bare.add_route("POST", r"/gemini/v1beta/models/[^/:]+:predictLongRunning", Recorder(SimResponse.json(200, {})))
    bare.add_route(
        "GET", r"/gemini/v1beta/models/[^/]+/operations/.+", Recorder(SimResponse(status=200, body=b"<html>"))
    )
    with VeoClient(KEY, bare.gemini_url) as veo:
        with pytest.raises(TransientProviderError, match="no operation name"):
            veo.submit("x")
        with pytest.raises(TransientProviderError, match="not a JSON object"):
            veo.poll(f"models/{DEFAULT_MODEL}/operations/abc")


# ---------------------------------------------------------------- downloads and the key


def test_the_key_goes_only_to_the_api_origin(bare: ProviderSimulator, sim: ProviderSimulator) -> None:
    storage = Recorder(SimResponse(status=200, body=VIDEO, headers=[("content-type", "video/mp4")]))
    bare.add_route("GET", r"/file\.mp4", storage)
    bare.add_route(
        "GET",
        r"/gemini/v1beta/files/abc:download",
        Recorder(SimResponse(status=302, headers=[("location", f"{bare.base_url}/file.mp4")])),
    )
    # Same origin as the API: the key is sent.
    with VeoClient(KEY, bare.gemini_url) as same_origin:
        assert same_origin.download(f"{bare.base_url}/file.mp4") == VIDEO
    assert storage.requests[-1].header("x-goog-api-key") == KEY
    # The API lives elsewhere (sim): a URI on another origin is fetched without the key ...
    with VeoClient(KEY, sim.gemini_url) as other_origin:
        assert other_origin.download(f"{bare.base_url}/file.mp4") == VIDEO
        assert storage.requests[-1].header("x-goog-api-key") == ""
        # ... and so is a redirect that leaves the API's origin.
        redirect = Recorder(SimResponse(status=302, headers=[("location", f"{bare.base_url}/file.mp4")]))
        sim.add_route("GET", r"/gemini/v1beta/redirect-out", redirect)
        assert other_origin.download(f"{sim.gemini_url}/v1beta/redirect-out") == VIDEO
    assert redirect.requests[-1].header("x-goog-api-key") == KEY
    assert storage.requests[-1].header("x-goog-api-key") == ""


def test_downloads_refuse_what_is_not_an_mp4(bare: ProviderSimulator) -> None:
    bare.add_route("GET", r"/page", Recorder(SimResponse(status=200, body=b"<html>quota</html>")))
    bare.add_route("GET", r"/half\.mp4", Recorder(SimResponse(status=200, body=VIDEO[: len(VIDEO) // 2])))
    bare.add_route("GET", r"/loop", Recorder(SimResponse(status=302, headers=[("location", "/loop")])))
    with VeoClient(KEY, bare.gemini_url) as veo:
        for path in ("/page", "/half.mp4"):
            with pytest.raises(PermanentProviderError) as caught:
                veo.download(f"{bare.base_url}{path}")
            assert caught.value.error_code == "invalid_video"
        with pytest.raises(PermanentProviderError) as looped:
            veo.download(f"{bare.base_url}/loop")
        assert looped.value.error_code == "too_many_redirects"
        with pytest.raises(PermanentProviderError) as scheme:
            veo.download("file:///etc/passwd")
        assert scheme.value.error_code == "invalid_video_uri"


def test_repr_and_errors_never_show_the_key(client: VeoClient) -> None:
    assert KEY not in repr(client) and "***" in repr(client)
    with pytest.raises(ValueError):
        VeoClient("", "http://127.0.0.1:1")


# ---------------------------------------------------------------- the shipped MP4


def test_the_simulator_video_is_a_complete_mp4() -> None:
    boxes = [box for box, _ in mp4_top_level_boxes(VIDEO)]
    assert boxes[0] == "ftyp" and {"moov", "mdat"} <= set(boxes)
    assert VIDEO[8:12] in (b"isom", b"mp42", b"iso5")  # major brand
    assert len(VIDEO) < 16 * 1024
    assert not is_playable_mp4(VIDEO[:-10]) and not is_playable_mp4(b"") and not is_playable_mp4(b"\0\0\0\x01ftyp")


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed (box check above still runs)")
def test_the_simulator_video_plays_in_ffprobe() -> None:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
            "-of",
            "json",
            str(VIDEO_PATH),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    streams = {s["codec_type"]: s for s in json.loads(out)["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (160, 90)
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(VIDEO_PATH), "-f", "null", "-"], capture_output=True, text=True
    )
    assert decode.returncode == 0 and decode.stderr == ""


def test_mp4_box_parser_handles_large_and_open_ended_boxes() -> None:
    large = (1).to_bytes(4, "big") + b"mdat" + (24).to_bytes(8, "big") + b"x" * 8
    open_ended = (0).to_bytes(4, "big") + b"mdat" + b"y" * 5
    assert mp4_top_level_boxes(large) == [("mdat", 24)]
    assert mp4_top_level_boxes(open_ended) == [("mdat", 13)]
    with pytest.raises(ValueError):
        mp4_top_level_boxes((1).to_bytes(4, "big") + b"mdat")
    with pytest.raises(ValueError):
        mp4_top_level_boxes((4).to_bytes(4, "big") + b"free")


# ---------------------------------------------------------------- Veo3Resource


def test_resource_offline_mode_runs_an_embedded_simulator() -> None:
    resource = Veo3Resource(mode="offline", simulator_polls_to_complete=1)
    assert resource.unavailable_reason() is None
    assert resource.effective_poll_interval() == LOOPBACK_POLL_INTERVAL_S
    with resource.open_client() as veo:
        operation = veo.poll(veo.submit("A gull over the jetty"))
        assert operation.done and operation.video_uri
        assert is_playable_mp4(veo.download(operation.video_uri))


def test_resource_simulated_mode_uses_the_simulator_url(sim: ProviderSimulator) -> None:
    resource = Veo3Resource(mode="simulated", simulator_url=sim.base_url + "/", resolution="720p")
    with resource.open_client() as veo:
        assert veo.base_url == sim.gemini_url
        assert veo.parameters["resolution"] == "720p" and veo.parameters["aspectRatio"] == "16:9"
        assert "personGeneration" not in veo.parameters
        assert veo.submit("x").startswith("models/")


def test_resource_live_mode_needs_a_key() -> None:
    no_key = Veo3Resource(mode="live")
    assert no_key.unavailable_reason() == "Veo is not configured: live mode needs GEMINI_API_KEY"
    assert no_key.effective_poll_interval() == LIVE_POLL_INTERVAL_S
    with pytest.raises(ValueError, match="GEMINI_API_KEY"), no_key.open_client():
        pass
    assert Veo3Resource(mode="simulated").unavailable_reason() is not None
    with Veo3Resource(mode="live", api_key=KEY, base_url="https://example.invalid").open_client() as veo:
        assert veo.base_url == "https://example.invalid" and KEY not in repr(veo)


def test_resource_from_env_takes_the_key_as_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_BASE_URL", "https://gemini.example")
    monkeypatch.setenv("CINEFORGE_VEO_MODEL", "veo-3.0-fast-generate-001")
    monkeypatch.delenv("CINEFORGE_SIMULATOR_URL", raising=False)
    resource = Veo3Resource.from_env("live")
    assert resource.base_url == "https://gemini.example" and resource.model == "veo-3.0-fast-generate-001"
    assert resource.unavailable_reason() is None
    monkeypatch.delenv("GEMINI_API_KEY")
    assert Veo3Resource.from_env("live").unavailable_reason() is not None
    assert isinstance(EnvVar("GEMINI_API_KEY"), str)  # what from_env passes: a name, resolved at run time


def test_video_path_is_inside_the_package() -> None:
    assert VIDEO_PATH.parent.name == "assets" and Path(VIDEO_PATH).is_file()
