"""The content-addressed response cache: keys, atomic writes, damaged entries."""

from __future__ import annotations

from pathlib import Path

from resources.ai import AIProviderResource
from resources.response_cache import CachedAnswer, ResponseCache, cache_key, prompt_version
from resources.simulator import ProviderSimulator

PAYLOAD = {"title": "Harbor", "scenes": [{"scene_number": 1, "heading": "INT. KITCHEN - NIGHT"}]}


def test_key_changes_with_task_chain_prompt_and_payload_but_not_key_order() -> None:
    base = cache_key("enrich_scenes", ["claude-sonnet-4-6", "gpt-5.2"], "v1", PAYLOAD)
    assert base == cache_key("enrich_scenes", ["claude-sonnet-4-6", "gpt-5.2"], "v1", dict(reversed(PAYLOAD.items())))
    assert base != cache_key("normalize", ["claude-sonnet-4-6", "gpt-5.2"], "v1", PAYLOAD)
    assert base != cache_key("enrich_scenes", ["gpt-5.2"], "v1", PAYLOAD)
    assert base != cache_key("enrich_scenes", ["claude-sonnet-4-6", "gpt-5.2"], "v2", PAYLOAD)
    assert base != cache_key("enrich_scenes", ["claude-sonnet-4-6", "gpt-5.2"], "v1", {**PAYLOAD, "title": "X"})
    assert prompt_version("a") != prompt_version("b")


def test_put_then_get_round_trips_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    key = cache_key("enrich_scenes", ["gpt-5.2"], "v1", PAYLOAD)
    assert cache.get(key) is None
    answer = CachedAnswer("enrich_scenes", "openai", "gpt-5.2", {"scenes": [{"scene_number": 1}]})
    cache.put(key, answer)
    cache.put(key, answer)  # a second writer of the same part replaces, never tears
    assert cache.get(key) == answer
    assert len(cache) == 1
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_a_damaged_entry_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = cache_key("normalize", ["gpt-4.1"], "v1", {"text": "x"})
    path = tmp_path / key[:2] / f"{key}.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"task": "normalize", "provi')
    assert cache.get(key) is None
    cache.put(key, CachedAnswer("normalize", "openai", "gpt-4.1", {"fountain": "INT. A - DAY\n"}))
    assert cache.get(key) is not None


def resource(sim: ProviderSimulator, tmp_path: Path, mode: str) -> AIProviderResource:
    return AIProviderResource(
        mode=mode,  # type: ignore[arg-type]
        simulator_url=sim.base_url,
        anthropic_api_key="sk-ant-test-not-a-secret",
        anthropic_base_url=f"{sim.base_url}/anthropic",
        chains={"extract_scenes": ["claude-sonnet-4-6"]},
        breaker_store_url=f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        telemetry_path=str(tmp_path / "events.jsonl"),
        response_cache_dir=str(tmp_path / "responses"),
    )


def test_the_resource_pays_once_per_part_and_never_serves_one_modes_answer_in_another(tmp_path: Path) -> None:
    payload = {
        "title": "Harbor",
        "scenes": [{"scene_number": 1, "heading": "INT. KITCHEN - NIGHT", "text": "Maria waits."}],
    }
    with ProviderSimulator() as sim:
        simulated = resource(sim, tmp_path, "simulated")
        first = simulated.run_task(stage="extract_scenes", task="enrich_scenes", payload=payload, cache=True)
        again = simulated.run_task(stage="extract_scenes", task="enrich_scenes", payload=payload, cache=True)
        assert (first.cached, again.cached) == (False, True)
        assert again.value == first.value and (again.provider, again.model) == ("anthropic", "claude-sonnet-4-6")
        assert sim.stats()["total"] == 1
        # Same chain and payload in live mode: a simulated answer must never stand in for a real model's.
        live = resource(sim, tmp_path, "live").run_task(
            stage="extract_scenes", task="enrich_scenes", payload=payload, cache=True
        )
        assert live.cached is False
        assert sim.stats()["total"] == 2
