"""Resources from the environment: the embedded default needs nothing, real providers need keys.

Keys are passed as ``dagster.EnvVar`` so Dagster resolves them at run time and never stores their
values in run config, the UI or the event log.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar

from resources.ai import AIProviderResource
from resources.io_manager import ArtifactIOManager
from resources.veo3 import Veo3Resource

KEY_VARS = {
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "openai_api_key": "OPENAI_API_KEY",
    "gemini_api_key": "GEMINI_API_KEY",
}
URL_VARS = {
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
    "openai_base_url": "OPENAI_BASE_URL",
    "gemini_base_url": "GEMINI_BASE_URL",
    "simulator_url": "CINEFORGE_SIMULATOR_URL",
    "breaker_store_url": "CINEFORGE_BREAKER_STORE_URL",
    "telemetry_path": "CINEFORGE_TELEMETRY_PATH",
}


def provider_mode_from_env() -> str:
    explicit = os.environ.get("CINEFORGE_PROVIDER_MODE", "").strip().lower()
    if explicit:
        return explicit
    if os.environ.get("CINEFORGE_SIMULATOR_URL"):
        return "simulated"
    return "live" if any(os.environ.get(var) for var in KEY_VARS.values()) else "offline"


def ai_resource_from_env() -> AIProviderResource:
    kwargs: dict[str, Any] = {"mode": provider_mode_from_env()}
    for field, var in KEY_VARS.items():
        if os.environ.get(var):
            kwargs[field] = EnvVar(var)
    for field, var in URL_VARS.items():
        if os.environ.get(var):
            kwargs[field] = os.environ[var]
    return AIProviderResource(**kwargs)


def ai_run_config(mode: str, simulator_url: str | None = None) -> dict[str, Any]:
    """Run config for the ``ai`` resource that switches ``mode`` but keeps everything the environment
    sets: run config replaces a resource's config wholesale, so the environment's fields are restated
    (keys as ``{"env": VAR}``, so only the variable's name is stored with the run)."""
    config: dict[str, Any] = {"mode": mode}
    for field, var in KEY_VARS.items():
        if os.environ.get(var):
            config[field] = {"env": var}
    for field, var in URL_VARS.items():
        if os.environ.get(var):
            config[field] = os.environ[var]
    if simulator_url:
        config["simulator_url"] = simulator_url
    return {"resources": {"ai": {"config": config}, "veo3": {"config": veo3_config(mode, simulator_url)}}}


def veo3_config(mode: str, simulator_url: str | None = None) -> dict[str, Any]:
    """The ``veo3`` resource's config in the same mode as the ``ai`` resource.

    Without it, ``--provider simulated`` left B-roll on the mode the code location was loaded with
    (offline): its clips were priced at zero and the simulator's faults never reached Veo; and
    ``--provider offline`` with ``GEMINI_API_KEY`` set would have generated billed live clips.
    """
    config: dict[str, Any] = {"mode": mode}
    if os.environ.get("GEMINI_API_KEY"):
        config["api_key"] = {"env": "GEMINI_API_KEY"}
    for field, var in (
        ("base_url", "GEMINI_BASE_URL"),
        ("simulator_url", "CINEFORGE_SIMULATOR_URL"),
        ("model", "CINEFORGE_VEO_MODEL"),
    ):
        if os.environ.get(var):
            config[field] = os.environ[var]
    if simulator_url:
        config["simulator_url"] = simulator_url
    return config


def build_resources() -> dict[str, Any]:
    return {
        "ai": ai_resource_from_env(),
        "io_manager": ArtifactIOManager(),
        "veo3": Veo3Resource.from_env(provider_mode_from_env()),
    }
