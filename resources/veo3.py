"""``Veo3Resource``: how the B-roll asset reaches Veo (the Gemini API's long-running video flow).

Modes mirror ``AIProviderResource``:

* ``offline`` - an embedded loopback simulator (``resources.simulator`` with its Veo extension) is
  started for the duration of ``open_client``: real HTTP, no network, no key, playable MP4s.
* ``simulated`` - a running simulator at ``simulator_url`` (``{simulator_url}/gemini`` is the API base).
* ``live`` - ``base_url`` (default ``https://generativelanguage.googleapis.com``) with ``api_key`` from
  ``EnvVar("GEMINI_API_KEY")`` (``cineforge_assets.resource_config``). Without a key B-roll is simply
  unavailable: ``unavailable_reason`` says so and the asset materializes without clips.

The key lives only in the client's request headers; ``repr`` and errors never carry it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from resources.adapters.veo import DEFAULT_BASE_URL, DEFAULT_MODEL, VeoClient

VeoMode = Literal["offline", "simulated", "live"]
SIMULATED_KEY = "sim-key-not-a-secret"
LIVE_POLL_INTERVAL_S = 10.0  # Google's own samples poll every 10 s; generation takes minutes
LOOPBACK_POLL_INTERVAL_S = 0.05


class Veo3Resource(ConfigurableResource):
    """Veo access for B-roll. Generation parameters are sent as the request's ``parameters`` object."""

    mode: VeoMode = "offline"
    api_key: str | None = None
    base_url: str = DEFAULT_BASE_URL
    simulator_url: str = ""
    model: str = DEFAULT_MODEL
    aspect_ratio: str = Field(default="16:9", description="16:9 or 9:16")
    resolution: str = Field(default="", description="720p / 1080p; empty = the model's default")
    negative_prompt: str = Field(default="dialogue, captions, subtitles, watermark, on-screen text")
    person_generation: str = Field(default="", description="e.g. allow_all; empty = the API default")
    request_timeout_seconds: float = 60.0
    poll_interval_seconds: float | None = Field(
        default=None, description="seconds between polls; default 10 live, 0.05 against a simulator"
    )
    gate_timeout_seconds: float = Field(default=900.0, description="how long the await gate waits in total")
    simulator_polls_to_complete: int = Field(default=2, description="offline mode: polls until a video is done")

    @classmethod
    def from_env(cls, mode: str) -> Veo3Resource:
        """``mode`` as the AI resource's; key ``GEMINI_API_KEY`` (as an ``EnvVar``, never its value), base
        URL ``GEMINI_BASE_URL``, simulator ``CINEFORGE_SIMULATOR_URL``, model ``CINEFORGE_VEO_MODEL``."""
        kwargs: dict[str, Any] = {"mode": mode}
        if os.environ.get("GEMINI_API_KEY"):
            kwargs["api_key"] = EnvVar("GEMINI_API_KEY")
        for field, var in (
            ("base_url", "GEMINI_BASE_URL"),
            ("simulator_url", "CINEFORGE_SIMULATOR_URL"),
            ("model", "CINEFORGE_VEO_MODEL"),
        ):
            if os.environ.get(var):
                kwargs[field] = os.environ[var]
        return cls(**kwargs)

    def unavailable_reason(self) -> str | None:
        """Why no video can be generated with this configuration, or ``None`` when it can."""
        if self.mode == "live" and not self.api_key:
            return "Veo is not configured: live mode needs GEMINI_API_KEY"
        if self.mode == "simulated" and not self.simulator_url:
            return "Veo is not configured: simulated mode needs simulator_url (CINEFORGE_SIMULATOR_URL)"
        return None

    def effective_poll_interval(self) -> float:
        if self.poll_interval_seconds is not None:
            return self.poll_interval_seconds
        return LIVE_POLL_INTERVAL_S if self.mode == "live" else LOOPBACK_POLL_INTERVAL_S

    def generation_parameters(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "aspectRatio": self.aspect_ratio,
            "negativePrompt": self.negative_prompt,
            "resolution": self.resolution,
            "personGeneration": self.person_generation,
        }
        return {k: v for k, v in parameters.items() if v}

    @contextmanager
    def open_client(self) -> Iterator[VeoClient]:
        """A client for this configuration; in offline mode, backed by a simulator living as long as it."""
        reason = self.unavailable_reason()
        if reason:
            raise ValueError(reason)
        if self.mode == "offline":
            from resources.simulator.server import ProviderSimulator
            from resources.simulator.veo import extension

            veo = extension(polls_to_complete=self.simulator_polls_to_complete)
            with (
                ProviderSimulator(extensions=[veo]) as simulator,
                self._client(SIMULATED_KEY, simulator.gemini_url) as client,
            ):
                yield client
            return
        if self.mode == "simulated":
            with self._client(SIMULATED_KEY, f"{self.simulator_url.rstrip('/')}/gemini") as client:
                yield client
            return
        with self._client(str(self.api_key), self.base_url) as client:
            yield client

    def _client(self, api_key: str, base_url: str) -> VeoClient:
        return VeoClient(
            api_key,
            base_url,
            self.model,
            parameters=self.generation_parameters(),
            timeout_s=self.request_timeout_seconds,
        )
