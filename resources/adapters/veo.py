"""Veo video generation over the Gemini API's long-running-operation flow (httpx, no SDK).

Wire format (Gemini API reference, "Generate videos with Veo", REST tab):

1. ``POST {base}/v1beta/models/{model}:predictLongRunning`` with header ``x-goog-api-key`` and body
   ``{"instances": [{"prompt": ...}], "parameters": {"aspectRatio": "16:9", "negativePrompt": ...,
   "resolution": ..., "personGeneration": ...}}``. The answer is a ``google.longrunning.Operation``
   handle: ``{"name": "models/veo-3.0-generate-001/operations/<id>"}``.
2. ``GET {base}/v1beta/{operation.name}`` until ``done`` is true. ``done`` is *omitted* while the
   operation runs (proto3 JSON drops false). A finished operation carries either
   ``response.generateVideoResponse.generatedSamples[0].video.uri`` or ``error`` (a ``google.rpc.Status``:
   ``{"code": <gRPC int>, "message": ...}``; some front ends add ``"status": "INVALID_ARGUMENT"``). A
   response without samples but with ``raiMediaFilteredCount``/``raiMediaFilteredReasons`` means the
   responsible-AI filter dropped the video.
3. ``GET <video.uri>`` (``.../v1beta/files/<id>:download?alt=media``) with the API key; the service
   answers 302 to the file's storage location, which we follow.

Decisions:

* Like every adapter, one HTTP request per call (redirects aside) and no retries: the B-roll await gate
  owns the retry decision. HTTP failures come out as the taxonomy in ``resources.resilience.errors``.
* The API key is sent only to the API's own origin. Redirects are followed by hand so the key is
  dropped when a redirect leaves that origin (httpx would forward custom headers), and a video URI on
  another origin is fetched without it.
* A download that is not an ISO-BMFF file (``ftyp`` + ``moov`` + ``mdat`` boxes) is refused as a
  permanent ``invalid_video`` error, so a truncated body or an HTML error page never lands as ``.mp4``.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urljoin, urlsplit

import httpx

from resources.adapters.gemini import retry_delay_from_details
from resources.adapters.http_adapter import HttpProviderAdapter, as_dict
from resources.resilience.errors import (
    PermanentProviderError,
    ProviderError,
    classify_http_error,
    request_id_from,
    transport_error,
)

DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com"
DEFAULT_MODEL: Final = "veo-3.0-generate-001"
MAX_REDIRECTS: Final = 5
MAX_VIDEO_BYTES: Final = 512 * 1024 * 1024
# google.rpc.Code: the numeric ``code`` of an operation's ``error`` -> its canonical name.
GRPC_CODE_NAMES: Final[dict[int, str]] = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
# Operation names come back from the server and go into our URL path: accept only the documented shape.
_OPERATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(?:/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")


@dataclass(frozen=True)
class OperationError:
    """A finished operation's failure (``google.rpc.Status``), or a responsible-AI filter verdict."""

    code: int | None
    status: str
    message: str

    def describe(self) -> str:
        code = f" ({self.code})" if self.code is not None else ""
        return f"{self.status}{code}: {self.message}"


@dataclass(frozen=True)
class VideoOperation:
    """One poll's view of a video generation operation."""

    name: str
    done: bool
    video_uri: str | None = None
    error: OperationError | None = None


def mp4_top_level_boxes(data: bytes) -> list[tuple[str, int]]:
    """The top-level ISO-BMFF boxes as ``(type, size)``; ``ValueError`` if the layout does not add up."""
    boxes: list[tuple[str, int]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 8:
            raise ValueError(f"truncated box header at offset {offset}")
        size, raw_type = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:  # 64-bit largesize follows the type
            if len(data) - offset < 16:
                raise ValueError(f"truncated largesize at offset {offset}")
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
            header = 16
        elif size == 0:  # box runs to the end of the file
            size = len(data) - offset
        if size < header or offset + size > len(data):
            raise ValueError(f"box {raw_type!r} at offset {offset} has impossible size {size}")
        boxes.append((raw_type.decode("latin-1"), size))
        offset += size
    return boxes


def is_playable_mp4(data: bytes) -> bool:
    """True for a complete MP4 container: ``ftyp`` first, then both ``moov`` and ``mdat``."""
    try:
        types = [box_type for box_type, _ in mp4_top_level_boxes(data)]
    except ValueError:
        return False
    return bool(types) and types[0] == "ftyp" and "moov" in types and "mdat" in types


def _google_error_details(body: bytes) -> list[dict[str, Any]]:
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    details = as_dict(as_dict(decoded).get("error")).get("details")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


class VeoClient(HttpProviderAdapter):
    """Submit, poll and download Veo videos. ``complete`` (chat) is not a Veo operation."""

    name = "veo"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        *,
        parameters: Mapping[str, Any] | None = None,
        timeout_s: float = 60.0,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(api_key, base_url, client)
        self.model = model.removeprefix("models/")
        self.parameters: dict[str, Any] = {"aspectRatio": "16:9", **(parameters or {})}
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"VeoClient(base_url={self.base_url!r}, model={self.model!r}, api_key='***')"

    # ------------------------------------------------------------------ the three calls

    def request_body(self, prompt: str) -> dict[str, Any]:
        parameters = {k: v for k, v in self.parameters.items() if v not in (None, "")}
        return {"instances": [{"prompt": prompt}], "parameters": parameters}

    def submit(self, prompt: str) -> str:
        """Start one generation; return the operation name."""
        url = f"{self.base_url}/v1beta/models/{quote(self.model, safe='.-_')}:predictLongRunning"
        data, headers = self.post_json(
            model=self.model,
            url=url,
            headers=self._key_headers(),
            body=self.request_body(prompt),
            timeout=self.timeout_s,
        )
        name = data.get("name")
        if not isinstance(name, str) or not _OPERATION_NAME.match(name):
            raise self.malformed(self.model, headers, 200, "predictLongRunning answer has no operation name")
        return name

    def poll(self, operation_name: str) -> VideoOperation:
        """One look at the operation; raises the taxonomy's errors when the poll itself fails."""
        if not _OPERATION_NAME.match(operation_name) or ".." in operation_name.split("/"):
            raise PermanentProviderError(
                f"refusing to poll malformed operation name {operation_name!r}",
                provider=self.name,
                model=self.model,
                error_code="INVALID_ARGUMENT",
            )
        url = f"{self.base_url}/v1beta/{quote(operation_name, safe='/.-_')}"
        reply = self._send("GET", url, self._key_headers())
        try:
            data = as_dict(json.loads(reply.content))
        except (ValueError, UnicodeDecodeError):
            data = {}
        if not data:
            raise self.malformed(self.model, reply.headers, reply.status, "operation is not a JSON object")
        return self.parse_operation(operation_name, data)

    def download(self, uri: str) -> bytes:
        """Fetch a generated video, following redirects; the bytes are a checked MP4."""
        url = uri
        for _ in range(MAX_REDIRECTS + 1):
            if urlsplit(url).scheme not in ("http", "https"):
                raise PermanentProviderError(
                    f"video URI has unsupported scheme: {url[:200]}",
                    provider=self.name,
                    model=self.model,
                    error_code="invalid_video_uri",
                )
            headers = self._key_headers() if self._same_origin_as_api(url) else {}
            reply = self._send("GET", url, headers, stream_limit=MAX_VIDEO_BYTES)
            if reply.redirect_location:
                url = urljoin(url, reply.redirect_location)
                continue
            if not is_playable_mp4(reply.content):
                raise PermanentProviderError(
                    f"downloaded video is not a complete MP4 ({len(reply.content)} bytes, "
                    f"content-type {reply.headers.get('content-type', '?')})",
                    provider=self.name,
                    model=self.model,
                    status=reply.status,
                    error_code="invalid_video",
                    request_id=request_id_from(reply.headers),
                )
            return reply.content
        raise PermanentProviderError(
            f"more than {MAX_REDIRECTS} redirects downloading the video",
            provider=self.name,
            model=self.model,
            error_code="too_many_redirects",
        )

    # ------------------------------------------------------------------ parsing

    def parse_operation(self, requested_name: str, data: dict[str, Any]) -> VideoOperation:
        name = str(data.get("name") or requested_name)
        if not data.get("done"):
            return VideoOperation(name=name, done=False)
        error = data.get("error")
        if isinstance(error, dict):
            return VideoOperation(name=name, done=True, error=_operation_error(error))
        response = as_dict(as_dict(data.get("response")).get("generateVideoResponse"))
        samples = response.get("generatedSamples")
        if isinstance(samples, list) and samples:
            uri = as_dict(as_dict(samples[0]).get("video")).get("uri")
            if isinstance(uri, str) and uri:
                return VideoOperation(name=name, done=True, video_uri=uri)
        reasons = response.get("raiMediaFilteredReasons")
        if response.get("raiMediaFilteredCount") or reasons:
            text = (
                "; ".join(str(r) for r in reasons)
                if isinstance(reasons, list) and reasons
                else "no reason given"
            )
            return VideoOperation(
                name=name,
                done=True,
                error=OperationError(code=None, status="RAI_FILTERED", message=f"video filtered: {text}"),
            )
        return VideoOperation(
            name=name,
            done=True,
            error=OperationError(
                code=None, status="NO_SAMPLES", message="operation finished without a video"
            ),
        )

    # ------------------------------------------------------------------ HTTP plumbing

    def refine_http_error(self, error: ProviderError, response: httpx.Response) -> ProviderError:
        if error.retry_after is None:
            error.retry_after = retry_delay_from_details(_google_error_details(response.content))
        return error

    def _key_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._api_key, "content-type": "application/json"}

    def _same_origin_as_api(self, url: str) -> bool:
        return _origin(url) == _origin(self.base_url)

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], *, stream_limit: int | None = None
    ) -> _Reply:
        """One request; a 2xx/3xx reply comes back, anything else is raised as the taxonomy says."""
        try:
            with self._client.stream(
                method,
                url,
                headers=dict(headers),
                timeout=httpx.Timeout(self.timeout_s),
                follow_redirects=False,
            ) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if stream_limit is not None and len(body) > stream_limit:
                        raise PermanentProviderError(
                            f"response larger than {stream_limit} bytes",
                            provider=self.name,
                            model=self.model,
                            status=response.status_code,
                            error_code="request_too_large",
                        )
        except httpx.TransportError as exc:
            raise self.scrubbed(transport_error(self.name, self.model, exc)) from None
        except httpx.DecodingError as exc:
            raise self.scrubbed(self.undecodable(self.model, exc)) from None
        reply = _Reply(response.status_code, response.headers, bytes(body))
        if reply.status >= 400:
            error = classify_http_error(
                provider=self.name,
                model=self.model,
                status=reply.status,
                headers=reply.headers,
                body=reply.content,
            )
            if error.retry_after is None:
                error.retry_after = retry_delay_from_details(_google_error_details(reply.content))
            raise self.scrubbed(error)
        return reply


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def redirect_location(self) -> str | None:
        return self.headers.get("location") if 300 <= self.status < 400 else None


def _operation_error(error: dict[str, Any]) -> OperationError:
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) else None
    status = error.get("status")
    if not isinstance(status, str) or not status:
        status = GRPC_CODE_NAMES.get(code, "UNKNOWN") if code is not None else "UNKNOWN"
    return OperationError(code=code, status=status, message=str(error.get("message") or "no message"))
