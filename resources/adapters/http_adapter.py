"""What the three HTTP adapters share: one POST, no retries, failures mapped to the taxonomy.

Decisions that hold for every provider:

* Exactly one request per ``complete``. Our own ``httpx.Client`` is built on a transport with
  ``retries=0`` and redirects off; the resilience layer owns every retry.
* ``timeout`` applies to connect, write, pool wait and *each* read (httpx semantics). A server that
  holds the response raises ``httpx.ReadTimeout`` -> ``transport_error`` -> transient ``timeout``.
* Any ``httpx.TransportError`` (timeouts, refused/reset connections, ``RemoteProtocolError`` when the
  peer drops the socket mid-response) -> ``transport_error``: transient.
* Non-2xx -> ``classify_http_error`` with the raw body and headers; the taxonomy decides.
* A 2xx whose body is not JSON, or JSON without the provider's response shape, or whose gzip encoding
  does not decode (``httpx.DecodingError``), is treated as a transport-level glitch (truncated/garbled
  body from a proxy or a dropped stream), so it is ``TransientProviderError(error_code=
  "malformed_response")``: the same request may well succeed on retry. Model output that *is* delivered
  intact but fails the task schema is a different thing: that is for ``prompts.parse_response`` and the
  resilience layer's repair step.
* The API key lives only in request headers. It never appears in ``repr``, and every error message we
  raise is scrubbed of it, in case a provider or proxy echoes it back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Self

import httpx

from resources.providers.base import Completion, CompletionRequest
from resources.resilience.errors import (
    ProviderError,
    TransientProviderError,
    classify_http_error,
    request_id_from,
    transport_error,
)

REDACTED = "***"


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (provider bodies are untrusted input)."""
    return value if isinstance(value, dict) else {}


def new_http_client() -> httpx.Client:
    """A client that never retries on its own and never follows redirects."""
    return httpx.Client(transport=httpx.HTTPTransport(retries=0), follow_redirects=False, timeout=None)


class HttpProviderAdapter:
    """Base for adapters that speak one provider's JSON-over-HTTPS wire format."""

    name: str = "http"

    def __init__(self, api_key: str, base_url: str, client: httpx.Client | None = None) -> None:
        if not api_key:
            raise ValueError(f"{type(self).__name__} needs an API key")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self._owns_client = client is None
        self._client = client if client is not None else new_http_client()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={REDACTED!r})"

    def complete(self, model: str, request: CompletionRequest, *, timeout: float) -> Completion:
        """One request to ``model``; see the module docstring for how failures are classified."""
        raise NotImplementedError

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ helpers for subclasses

    def redact(self, text: str) -> str:
        return text.replace(self._api_key, REDACTED) if self._api_key and text else text

    def scrubbed(self, error: ProviderError) -> ProviderError:
        """The same error with the API key removed from every field that came from the wire (message, error
        code, request id): providers and proxies may echo keys into any of them."""
        clean = self.redact(error.message)
        if clean != error.message:
            error.message = clean
            error.args = (clean,)
        error.error_code = self.redact(error.error_code)
        if error.request_id:
            error.request_id = self.redact(error.request_id)
        return error

    def post_json(
        self, *, model: str, url: str, headers: Mapping[str, str], body: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any], httpx.Headers]:
        """POST ``body``; return the decoded 2xx JSON object and the response headers, or raise."""
        try:
            response = self._client.post(
                url, headers=dict(headers), json=body, timeout=httpx.Timeout(timeout)
            )
        except httpx.TransportError as exc:
            raise self.scrubbed(transport_error(self.name, model, exc)) from None
        except httpx.DecodingError as exc:
            raise self.scrubbed(self.undecodable(model, exc)) from None
        if not 200 <= response.status_code < 300:
            error = classify_http_error(
                provider=self.name,
                model=model,
                status=response.status_code,
                headers=response.headers,
                body=response.content,
            )
            raise self.scrubbed(self.refine_http_error(error, response))
        try:
            decoded = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            decoded = None
        if not isinstance(decoded, dict):
            raise self.malformed(
                model, response.headers, response.status_code, "response body is not a JSON object"
            )
        return decoded, response.headers

    def refine_http_error(self, error: ProviderError, response: httpx.Response) -> ProviderError:
        """Hook for provider quirks the shared taxonomy cannot see; the default keeps its verdict."""
        return error

    def undecodable(self, model: str, exc: httpx.DecodingError) -> TransientProviderError:
        """A body whose ``content-encoding`` (gzip, which the real APIs use) does not decode: garbled on the way,
        like a truncated JSON body, so a transient ``malformed_response`` (httpx raises it as ``DecodingError``,
        which is no ``TransportError``)."""
        return self.malformed(model, {}, None, f"response body does not decode ({exc})")

    def malformed(
        self, model: str, headers: Mapping[str, str], status: int | None, what: str
    ) -> TransientProviderError:
        return TransientProviderError(
            f"malformed response: {what}",
            provider=self.name,
            model=model,
            status=status,
            error_code="malformed_response",
            request_id=request_id_from(headers),
        )
