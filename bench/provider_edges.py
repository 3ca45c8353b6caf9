"""What one request costs when a real provider answer meets the layer: calls, waits and who served.

    PYTHONPATH=. .venv/bin/python bench/provider_edges.py

Each scenario is one request through ``ResilientCaller`` over the real adapters and a loopback simulator
speaking the provider's real answer (``docs/providers-and-simulator.md``, second provider-edge pass): a
request larger than OpenAI's tokens-per-minute limit, a retired model, Gemini's ``finishReason: LANGUAGE``,
and what a Gemini thinking call is billed. Waits are recorded, not slept. Not a speed benchmark: it shows
what the layer decides, so a before/after of a classification change is one run on each commit.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from resources.adapters.anthropic import AnthropicAdapter
from resources.adapters.gemini import GeminiAdapter
from resources.adapters.openai import OpenAIAdapter
from resources.providers import prompts
from resources.providers.prices import TokenUsage, price_table
from resources.resilience.backoff import BackoffPolicy
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import SQLiteBreakerStore
from resources.resilience.chain import StagePolicy
from resources.resilience.executor import ResilientCaller
from resources.simulator import ProviderSimulator

KEY = "bench-provider-edges-key"
PAYLOAD = {"title": "Big Fish", "characters": ["EDWARD", "WILL"], "excerpt": "a witch", "scene_count": 1}
SCENARIOS: list[tuple[str, list[str]]] = [
    ("request-over-tpm:model=gpt-4.1", ["gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4-6"]),
    ("model-not-found:provider=openai,model=gpt-4o-mini", ["gpt-4o-mini", "gpt-4.1-mini", "claude-sonnet-4-6"]),
    ("candidate-stopped:reason=LANGUAGE", ["gemini-2.5-flash", "gpt-4.1"]),
]


def one_request(profile: str, chain: list[str]) -> str:
    sleeps: list[float] = []
    with (
        ProviderSimulator(extensions=(), profile=profile) as sim,
        httpx.Client() as http,
        tempfile.TemporaryDirectory() as folder,
    ):
        adapters: dict[str, Any] = {
            "anthropic": AnthropicAdapter(KEY, sim.anthropic_url, http),
            "openai": OpenAIAdapter(KEY, sim.openai_url, http),
            "gemini": GeminiAdapter(KEY, sim.gemini_url, http),
        }
        breaker = CircuitBreaker(SQLiteBreakerStore(Path(folder) / "b.sqlite"), BreakerPolicy())
        caller = ResilientCaller(
            adapters,
            breaker,
            policy=StagePolicy(backoff=BackoffPolicy(base=0.5, cap=4.0), max_attempts=6),
            clock=time.monotonic,
            sleep=sleeps.append,
            rng=random.Random(7),
        )
        request = prompts.build_request("project_insights", PAYLOAD, stage="project_config")
        served = caller.call(
            "project_config", request, lambda text: prompts.parse_response("project_insights", text), chain
        )
        calls = {p: counts["total"] for p, counts in sim.stats()["by_provider"].items()}
        path = " -> ".join(f"{a.provider}:{a.outcome}/{a.decision}/{a.error_code}" for a in served.attempts)
        return (
            f"{profile}\n  served by {served.provider}/{served.model}; calls {calls}; waited {sum(sleeps):.2f} s; "
            f"openai breaker {breaker.state('openai')}\n  {path}"
        )


def gemini_thinking_cost() -> str:
    with ProviderSimulator(extensions=(), profile="reasoning:provider=gemini") as sim:
        request = prompts.build_request("project_insights", PAYLOAD, stage="project_config")
        completion = GeminiAdapter(KEY, sim.gemini_url).complete("gemini-2.5-flash", request, timeout=5)
    usage = TokenUsage(input_tokens=completion.input_tokens, output_tokens=completion.output_tokens)
    cost = price_table().cost_of("gemini", "gemini-2.5-flash", usage).usd
    return f"gemini-2.5-flash thinking call: output_tokens={completion.output_tokens}, cost ${cost:.6f}"


def main() -> None:
    for profile, chain in SCENARIOS:
        print(one_request(profile, chain))
    print(gemini_thinking_cost())


if __name__ == "__main__":
    main()
