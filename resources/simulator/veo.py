"""Veo on the simulator: the Gemini API's long-running video flow, with per-job faults.

Loaded by ``ProviderSimulator`` by default (``DEFAULT_EXTENSION_MODULES``); ``register(sim)`` adds:

* ``POST /gemini/v1beta/models/{model}:predictLongRunning`` -> ``{"name": "models/{model}/operations/{id}"}``
* ``GET  /gemini/v1beta/models/{model}/operations/{id}`` -> ``{"name"}`` while running (``done`` omitted,
  as proto3 JSON does), then after ``polls_to_complete`` polls ``{"name", "done": true, "response":
  {"@type", "generateVideoResponse": {"generatedSamples": [{"video": {"uri"}}]}}}`` or ``{"name", "done":
  true, "error": {"code": 13, "message"}}``
* ``GET  /gemini/v1beta/files/{id}:download?alt=media`` -> 302 to the file's storage URL (as the real API
  does), which serves ``video/mp4`` bytes without needing the key (a signed-URL stand-in)
* ``GET|PUT /_sim/veo/faults`` (rules below, plus ``polls_to_complete``), ``GET /_sim/veo/state``

The video is ``assets/veo-sim-broll.mp4``: 1 s, 160x90, H.264 baseline + AAC, faststart, 5 KB. It was
generated once (the simulator never needs ffmpeg) with::

    ffmpeg -f lavfi -i testsrc2=size=160x90:rate=8:duration=1 -f lavfi -i anullsrc=r=8000:cl=mono -t 1 \\
      -c:v libx264 -preset veryslow -crf 40 -pix_fmt yuv420p -profile:v baseline -c:a aac -b:a 8k \\
      -movflags +faststart -map_metadata -1 -fflags +bitexact veo-sim-broll.mp4

Faults are decided per job at submit time, by the first matching ``VeoFault`` rule (``job_index`` = the
0-based order of submissions since the last reset, ``prompt_contains`` = a substring of the prompt,
``times`` = how often the rule may still fire) or by a marker ``[veo-sim:<kind>]`` in the prompt (always
fires). Kinds: ``submit_failed`` (500 INTERNAL on submit), ``rate_limited`` (429 RESOURCE_EXHAUSTED with
RetryInfo), ``invalid_argument`` (400 INVALID_ARGUMENT), ``poll_failed`` (every poll of the operation
answers 500 INTERNAL), ``poll_flaky`` (only its first poll answers 503 UNAVAILABLE), ``stalled`` (never
finishes), ``generation_failed`` (the operation finishes with an error), ``rai_filtered`` (finishes with
no sample and ``raiMediaFilteredReasons``), ``download_failed`` (404 on the download), ``download_flaky``
(the first download answers 503 UNAVAILABLE).
The simulator's global fault profile applies to submits too (provider ``veo``), so
``overload-storm:provider=veo`` works as for the chat providers.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from resources.simulator.routing import SimRequest, SimResponse
from resources.simulator.wire import truncate_body

if TYPE_CHECKING:
    from resources.simulator.server import Extension, ProviderSimulator

VeoFaultKind = Literal[
    "submit_failed",
    "rate_limited",
    "invalid_argument",
    "poll_failed",
    "poll_flaky",
    "stalled",
    "generation_failed",
    "rai_filtered",
    "download_failed",
    "download_flaky",
]
VEO_FAULT_KINDS: Final[tuple[str, ...]] = get_args(VeoFaultKind)
PROVIDER: Final = "veo"
VIDEO_PATH: Final = Path(__file__).resolve().parent / "assets" / "veo-sim-broll.mp4"
DEFAULT_POLLS_TO_COMPLETE: Final = 2
SUPPORTED_ASPECT_RATIOS: Final = frozenset({"16:9", "9:16"})
_MARKER = re.compile(r"\[veo-sim:([a-z_]+)\]")
_GOOGLE_JSON = "application/json; charset=UTF-8"
_RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"


class VeoFault(BaseModel):
    """One per-job fault rule. ``times=None`` fires on every match."""

    model_config = ConfigDict(extra="forbid")

    kind: VeoFaultKind
    job_index: int | None = Field(default=None, ge=0)
    prompt_contains: str | None = None
    times: int | None = Field(default=None, ge=0)

    def matches(self, job_index: int, prompt: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.job_index is not None and self.job_index != job_index:
            return False
        return self.prompt_contains is None or self.prompt_contains in prompt


@dataclass
class _Operation:
    name: str
    model: str
    prompt: str
    job_index: int
    fault: str | None
    polls: int = 0
    file_id: str = ""
    hiccups_left: int = 0  # poll_flaky: polls still to answer 503


def _unavailable() -> SimResponse:
    return _google_error(503, "UNAVAILABLE", "The service is currently unavailable.")


@dataclass
class _File:
    data: bytes
    token: str
    missing: bool = False  # download_failed: the operation points at a file that is not there
    hiccups_left: int = 0  # download_flaky: downloads still to answer 503


@dataclass
class _Counts:
    submits: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    downloads: int = 0


def _google_error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> SimResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return SimResponse.json(code, {"error": error}, content_type=_GOOGLE_JSON)


def _rate_limited(model: str) -> SimResponse:
    return _google_error(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        "* Quota exceeded for metric: "
        f"generativelanguage.googleapis.com/predict_long_running_requests, limit: 2, model: {model}\n"
        "Please retry in 30s.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/predict_long_running_requests",
                        "quotaId": "PredictLongRunningRequestsPerMinutePerProjectPerModel",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": "2",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"},
        ],
    )


def _internal() -> SimResponse:
    return _google_error(
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    )


class VeoSimulator:
    """State and handlers of the Veo endpoints for one ``ProviderSimulator``. Thread-safe."""

    def __init__(
        self,
        sim: ProviderSimulator,
        *,
        polls_to_complete: int = DEFAULT_POLLS_TO_COMPLETE,
        faults: Iterable[VeoFault] = (),
        video: bytes | None = None,
    ) -> None:
        self.sim = sim
        self.video = video if video is not None else VIDEO_PATH.read_bytes()
        self._lock = threading.Lock()
        self._polls_to_complete = polls_to_complete
        self._faults: list[VeoFault] = [f.model_copy() for f in faults]
        self._operations: dict[str, _Operation] = {}
        self._files: dict[str, _File] = {}
        self._submissions = itertools.count()
        self._counts = _Counts()

    # ------------------------------------------------------------ configuration

    @property
    def polls_to_complete(self) -> int:
        with self._lock:
            return self._polls_to_complete

    def set_faults(self, faults: Iterable[VeoFault], *, polls_to_complete: int | None = None) -> None:
        """Replace the fault rules (and optionally K); restarts the job index at 0."""
        with self._lock:
            self._faults = [f.model_copy() for f in faults]
            if polls_to_complete is not None:
                self._polls_to_complete = max(0, polls_to_complete)
            self._submissions = itertools.count()

    def faults(self) -> list[VeoFault]:
        with self._lock:
            return [f.model_copy() for f in self._faults]

    def reset(self) -> None:
        """Forget operations, files and counters; keep the rules."""
        with self._lock:
            self._operations.clear()
            self._files.clear()
            self._submissions = itertools.count()
            self._counts = _Counts()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "polls_to_complete": self._polls_to_complete,
                "faults": [f.model_dump() for f in self._faults],
                "operations": len(self._operations),
                "submits": dict(self._counts.submits),
                "polls": self._counts.polls,
                "downloads": self._counts.downloads,
            }

    def register_routes(self) -> None:
        model = r"(?P<model>[^/:]+)"
        self.sim.add_route(
            "POST", rf"/gemini/v1beta/models/{model}:predictLongRunning", self.submit, name="veo-submit"
        )
        self.sim.add_route(
            "GET",
            rf"/gemini/v1beta/models/{model}/operations/(?P<op>[A-Za-z0-9_-]+)",
            self.poll,
            name="veo-poll",
        )
        self.sim.add_route(
            "GET",
            r"/gemini/v1beta/files/(?P<file>[A-Za-z0-9_-]+):download",
            self.download,
            name="veo-download",
        )
        self.sim.add_route(
            "GET", r"/gemini/_storage/(?P<file>[A-Za-z0-9_-]+)\.mp4", self.storage, name="veo-storage"
        )
        self.sim.add_route("GET", r"/_sim/veo/faults", self._get_faults, name="veo-faults")
        self.sim.add_route("PUT", r"/_sim/veo/faults", self._put_faults, name="veo-set-faults")
        self.sim.add_route(
            "GET", r"/_sim/veo/state", lambda _: SimResponse.json(200, self.state()), name="veo-state"
        )

    # ------------------------------------------------------------ routes

    def submit(self, request: SimRequest) -> SimResponse:
        model = request.params["model"]
        rejected = self._reject_request(request, model)
        if rejected is not None:
            self.sim.record(PROVIDER, model, "rejected")
            return rejected
        prompt = str(request.json()["instances"][0]["prompt"])
        rule = self.sim.decide_fault(PROVIDER, model)
        if rule is not None:
            self.sim.record(PROVIDER, model, rule.kind)
            profile_answer = self._profile_fault(rule.kind, model, rule.retry_after, rule.hold_s)
            if profile_answer is not None:
                return profile_answer
        with self._lock:
            job_index = next(self._submissions)
            fault = self._take_fault(job_index, prompt)
            if fault is None and rule is not None and rule.kind == "safety":
                fault = "rai_filtered"
            self._counts.submits[fault or "ok"] += 1
        if rule is None:
            self.sim.record(PROVIDER, model, fault or "ok")
        if fault == "submit_failed":
            return _internal()
        if fault == "rate_limited":
            return _rate_limited(model)
        if fault == "invalid_argument":
            return _google_error(
                400,
                "INVALID_ARGUMENT",
                "The prompt could not be submitted. This prompt contains words that violate Vertex AI's "
                "usage guidelines. Request contains an invalid argument.",
            )
        operation = _Operation(
            name=f"models/{model}/operations/{secrets.token_hex(6)}",
            model=model,
            prompt=prompt,
            job_index=job_index,
            fault=fault,
            hiccups_left=1 if fault == "poll_flaky" else 0,
        )
        with self._lock:
            self._operations[operation.name] = operation
        return SimResponse.json(200, {"name": operation.name}, content_type=_GOOGLE_JSON)

    def poll(self, request: SimRequest) -> SimResponse:
        if not self._has_key(request):
            return self._unregistered_caller()
        name = f"models/{request.params['model']}/operations/{request.params['op']}"
        with self._lock:
            self._counts.polls += 1
            operation = self._operations.get(name)
            if operation is None:
                return _google_error(404, "NOT_FOUND", f"Operation {name} not found.")
            if operation.fault == "poll_failed":
                return _internal()
            if operation.hiccups_left > 0:
                operation.hiccups_left -= 1
                return _unavailable()
            operation.polls += 1
            if operation.fault == "stalled" or operation.polls < self._polls_to_complete:
                return SimResponse.json(200, {"name": name}, content_type=_GOOGLE_JSON)
            body = self._finished(operation, request)
        return SimResponse.json(200, body, content_type=_GOOGLE_JSON)

    def download(self, request: SimRequest) -> SimResponse:
        if not self._has_key(request):
            return self._unregistered_caller()
        file_id = request.params["file"]
        with self._lock:
            self._counts.downloads += 1
            stored = self._files.get(file_id)
            hiccup = stored is not None and stored.hiccups_left > 0
            if stored is not None and hiccup:
                stored.hiccups_left -= 1
        if stored is None or stored.missing:
            return _google_error(404, "NOT_FOUND", f"File files/{file_id} not found.")
        if hiccup:
            return _unavailable()
        location = f"{self._origin(request)}/gemini/_storage/{file_id}.mp4?token={stored.token}"
        return SimResponse(status=302, headers=[("location", location), ("content-type", "text/html")])

    def storage(self, request: SimRequest) -> SimResponse:
        file_id = request.params["file"]
        with self._lock:
            stored = self._files.get(file_id)
        token = (request.query.get("token") or [""])[0]
        if stored is None or stored.missing or not secrets.compare_digest(token, stored.token):
            return SimResponse(
                status=403,
                body=b"<Error><Code>AccessDenied</Code></Error>",
                headers=[("content-type", "application/xml")],
            )
        return SimResponse(status=200, body=stored.data, headers=[("content-type", "video/mp4")])

    # ------------------------------------------------------------ helpers

    def _finished(self, operation: _Operation, request: SimRequest) -> dict[str, Any]:
        """The done operation's body; call with the lock held."""
        body: dict[str, Any] = {"name": operation.name, "done": True}
        if operation.fault == "generation_failed":
            body["error"] = {
                "code": 13,
                "message": "Video generation failed: the model could not produce a video for this prompt.",
            }
            return body
        video_response: dict[str, Any]
        if operation.fault == "rai_filtered":
            video_response = {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": [
                    "Sorry, we can't create videos from input images containing photorealistic children."
                ],
            }
        else:
            if not operation.file_id:
                operation.file_id = secrets.token_hex(8)
                self._files[operation.file_id] = _File(
                    self.video,
                    secrets.token_urlsafe(12),
                    missing=operation.fault == "download_failed",
                    hiccups_left=1 if operation.fault == "download_flaky" else 0,
                )
            uri = f"{self._origin(request)}/gemini/v1beta/files/{operation.file_id}:download?alt=media"
            video_response = {"generatedSamples": [{"video": {"uri": uri}}]}
        body["response"] = {"@type": _RESPONSE_TYPE, "generateVideoResponse": video_response}
        return body

    def _take_fault(self, job_index: int, prompt: str) -> str | None:
        """The fault for this submission; call with the lock held."""
        marker = _MARKER.search(prompt)
        if marker and marker.group(1) in VEO_FAULT_KINDS:
            return marker.group(1)
        for rule in self._faults:
            if rule.matches(job_index, prompt):
                if rule.times is not None:
                    rule.times -= 1
                return rule.kind
        return None

    def _profile_fault(
        self, kind: str, model: str, retry_after: float | None, hold_s: float
    ) -> SimResponse | None:
        """How a global fault-profile rule looks on a submit; ``None`` when it does not apply to Veo."""
        wire = self.sim.wire("gemini")
        if kind in ("overloaded", "rate_limit", "server_error", "auth", "bad_request"):
            return wire.error(kind, model, wire.new_request_id(), retry_after)
        if kind == "timeout":
            return _internal().held(hold_s)
        if kind == "reset":
            return SimResponse.reset()
        if kind == "malformed_json":
            return truncate_body(SimResponse.json(200, {"name": f"models/{model}/operations/truncated"}))
        return None

    def _reject_request(self, request: SimRequest, model: str) -> SimResponse | None:
        if not self._has_key(request):
            return self._unregistered_caller()
        if not model.startswith("veo-"):
            return _google_error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "predictLongRunning.",
            )
        try:
            body = request.json()
        except ValueError:
            return _google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        instances = body.get("instances") if isinstance(body, dict) else None
        first = instances[0] if isinstance(instances, list) and instances else None
        if (
            not isinstance(first, dict)
            or not isinstance(first.get("prompt"), str)
            or not first["prompt"].strip()
        ):
            return _google_error(400, "INVALID_ARGUMENT", "* instances[0].prompt: prompt is required\n")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            return _google_error(
                400, "INVALID_ARGUMENT", "Invalid value at 'parameters': expected an object."
            )
        aspect = parameters.get("aspectRatio", "16:9")
        if aspect not in SUPPORTED_ASPECT_RATIOS:
            return _google_error(
                400, "INVALID_ARGUMENT", f"aspectRatio {aspect!r} is not supported; use one of 16:9, 9:16."
            )
        return None

    @staticmethod
    def _has_key(request: SimRequest) -> bool:
        return bool(
            request.header("x-goog-api-key") or request.query.get("key") or request.header("authorization")
        )

    @staticmethod
    def _unregistered_caller() -> SimResponse:
        return _google_error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please "
            "use API Key or other form of API consumer identity to call this API.",
        )

    def _origin(self, request: SimRequest) -> str:
        # The Host the client used, so a client that reached us as "localhost" gets same-origin URIs.
        host = request.header("host")
        return f"http://{host}" if host else self.sim.base_url

    def _get_faults(self, _: SimRequest) -> SimResponse:
        return SimResponse.json(
            200,
            {"faults": [f.model_dump() for f in self.faults()], "polls_to_complete": self.polls_to_complete},
        )

    def _put_faults(self, request: SimRequest) -> SimResponse:
        """Body: ``{"faults": [{"kind": "rate_limited", "times": 3}, ...], "polls_to_complete": 2}``."""
        try:
            raw = request.json()
            if not isinstance(raw, dict):
                raise ValueError("expected a JSON object")
            rules = [VeoFault.model_validate(item) for item in raw.get("faults") or []]
            polls = raw.get("polls_to_complete")
            self.set_faults(rules, polls_to_complete=int(polls) if polls is not None else None)
        except (ValueError, ValidationError, TypeError) as exc:
            return SimResponse.json(400, {"error": {"message": str(exc)}})
        return self._get_faults(request)


_SIMULATORS: weakref.WeakKeyDictionary[ProviderSimulator, VeoSimulator] = weakref.WeakKeyDictionary()


def extension(
    *, polls_to_complete: int = DEFAULT_POLLS_TO_COMPLETE, faults: Iterable[VeoFault] = ()
) -> Extension:
    """An extension that adds Veo with these settings: ``ProviderSimulator(extensions=[extension(...)])``."""
    rules = list(faults)

    def add_veo(sim: ProviderSimulator) -> None:
        veo = VeoSimulator(sim, polls_to_complete=polls_to_complete, faults=rules)
        veo.register_routes()
        _SIMULATORS[sim] = veo

    return add_veo


def register(sim: ProviderSimulator) -> None:
    """The default extension hook ``ProviderSimulator`` calls."""
    extension()(sim)


def veo_simulator(sim: ProviderSimulator) -> VeoSimulator:
    """The Veo state of ``sim`` (to set faults and read counters in-process)."""
    try:
        return _SIMULATORS[sim]
    except KeyError:
        raise LookupError(
            "this simulator has no Veo extension; build it with extensions=None or [register]"
        ) from None
