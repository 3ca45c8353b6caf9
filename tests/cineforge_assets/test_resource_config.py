"""Run config that ``cineforge ingest/resume --provider MODE`` gives the run's resources."""

from __future__ import annotations

import pytest

from cineforge_assets.resource_config import ai_run_config


def test_the_provider_mode_switches_veo_too_and_keeps_the_key_a_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail before: only ``ai`` was switched, so ``--provider offline`` with a Gemini key in the environment
    would still have generated (billed) live Veo clips."""
    monkeypatch.setenv("GEMINI_API_KEY", "sk-secret-value")
    monkeypatch.delenv("CINEFORGE_SIMULATOR_URL", raising=False)
    offline = ai_run_config("offline")["resources"]
    assert offline["veo3"]["config"]["mode"] == "offline"
    assert offline["veo3"]["config"]["api_key"] == {"env": "GEMINI_API_KEY"}
    assert "sk-secret-value" not in repr(offline)

    simulated = ai_run_config("simulated", "http://127.0.0.1:9/")["resources"]["veo3"]["config"]
    assert simulated["mode"] == "simulated" and simulated["simulator_url"] == "http://127.0.0.1:9/"
