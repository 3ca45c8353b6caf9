"""Stages that split their work (issue 20 items 4 and 6), as real Dagster runs against the loopback simulator.

The simulator here records every answered chat call (model, output ceiling, prompt and answer size) and can
be told to answer one scene badly, so the tests see what went over the wire, not what the code meant to send.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from cineforge_assets.definitions import defs
from cineforge_assets.paths import artifacts_dir
from cineforge_assets.screenplay.fidelity import digest_fountain, heading_score
from cineforge_assets.sources import register_source
from resources.providers import prompts
from resources.providers.limits import estimate_tokens, limits_for
from resources.providers.offline import OUTDOOR_PLACES
from resources.resilience.chain import provider_for
from resources.simulator import ProviderSimulator
from resources.simulator.wire import ChatCall

pytestmark = pytest.mark.usefixtures("data_root")

INGEST = [AssetKey("raw_input"), AssetKey("canonical_script"), AssetKey("scenes")]


@dataclass(frozen=True)
class AnsweredCall:
    task: str | None
    model: str
    max_tokens: int
    input_tokens: int
    output_tokens: int
    scene_numbers: tuple[int, ...]


class RecordingSimulator(ProviderSimulator):
    """The project's simulator, keeping every answered call; ``blank_scene`` gets a blank summary from every
    model, ``garble_scene`` makes any answer covering that scene unparseable (until set back to None)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.answered: list[AnsweredCall] = []
        self.blank_scene: int | None = None
        self.garble_scene: int | None = None
        self._record_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _model_text(self, call: ChatCall) -> str:  # type: ignore[override]
        task, payload = prompts.extract_task_and_input(call.system, call.prompt)
        text = ProviderSimulator._model_text(call)
        numbers = tuple(int(s["scene_number"]) for s in (payload or {}).get("scenes", []))
        if task == "enrich_scenes" and self.blank_scene in numbers:
            answer = json.loads(text)
            for scene in answer["scenes"]:
                if scene["scene_number"] == self.blank_scene:
                    scene["summary"] = "   "
            text = json.dumps(answer)
        if task == "enrich_scenes" and self.garble_scene in numbers:
            text = text[: len(text) // 2]
        with self._record_lock:
            self.answered.append(
                AnsweredCall(
                    task,
                    call.model,
                    call.max_tokens,
                    estimate_tokens(call.system) + estimate_tokens(call.prompt),
                    estimate_tokens(text),
                    numbers,
                )
            )
        return text

    def calls_for(self, task: str) -> list[AnsweredCall]:
        return [c for c in self.answered if c.task == task]


@pytest.fixture
def sim() -> Iterator[RecordingSimulator]:
    with RecordingSimulator() as simulator:
        yield simulator


def run_config(sim: ProviderSimulator, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "mode": "simulated",
        "simulator_url": sim.base_url,
        "backoff_base_seconds": 0.001,
        "backoff_cap_seconds": 0.005,
        "breaker_store_url": f"sqlite:///{tmp_path / 'breakers.sqlite'}",
        "seed": 7,
    }
    config.update(overrides)
    return {"resources": {"ai": {"config": config}}}


def materialize(instance: DagsterInstance, source: Path, config: dict[str, Any]) -> Any:
    key = register_source(source)
    if not instance.has_dynamic_partition("screenplays", key):
        instance.add_dynamic_partitions("screenplays", [key])
    return defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, run_config=config, raise_on_error=False, asset_selection=INGEST
    )


def scenes_table(source: Path) -> pd.DataFrame:
    return pd.read_parquet(artifacts_dir() / "scenes" / f"{register_source(source)}.parquet")


def step_failure(instance: DagsterInstance, run_id: str, step: str) -> Any:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records
    events = [r.event_log_entry.dagster_event for r in records]
    return next(e for e in events if e is not None and e.step_key == step).step_failure_data.user_failure_data


def assert_nothing_refused(sim: ProviderSimulator) -> None:
    """The simulator refuses, as the real APIs do, a prompt above the context window or a ceiling above
    the model's output limit; it counts such calls as ``beyond_limits``."""
    assert "beyond_limits" not in sim.stats()["by_outcome"]


def assert_within_limits(call: AnsweredCall) -> None:
    limits = limits_for(provider_for(call.model), call.model)
    assert call.max_tokens <= limits.max_output_tokens
    assert call.input_tokens + call.max_tokens <= limits.context_window
    assert call.output_tokens <= call.max_tokens


# ------------------------------------------------------------------------------------------ Big Fish


def test_big_fish_scenes_are_enriched_by_models_in_batches_that_fit_the_limits(
    corpus_dir: Path, sim: RecordingSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    source = corpus_dir / "Big-Fish.fountain"
    result = materialize(instance, source, run_config(sim, tmp_path))
    assert result.success
    table = scenes_table(source)
    assert len(table) == 190
    assert set(table["enriched_by"]) == {"anthropic/claude-sonnet-4-6"}
    for name in ("summary", "mood", "visual_description"):
        assert all(str(value).strip() for value in table[name])

    calls = sim.calls_for("enrich_scenes")
    for call in calls:
        assert_within_limits(call)
    assert_nothing_refused(sim)
    assert sorted(n for c in calls for n in c.scene_numbers) == list(range(1, 191))  # each scene asked once
    # The fewest calls the limits allow: all the answers' tokens over one call's output ceiling (4096 by
    # default, below the model's own 128k so one call finishes inside the request timeout).
    ceiling = calls[0].max_tokens
    assert ceiling == 4096
    minimum = math.ceil(sum(c.output_tokens for c in calls) / ceiling)
    assert minimum > 1
    assert len(calls) <= 1.1 * minimum
    meta = instance.get_latest_materialization_event(AssetKey("scenes")).asset_materialization.metadata
    assert meta["enrich_parts"].value == len(calls) and meta["parts_from_models"].value == len(calls)
    # Progress for the CLI's bar: one observation per answered batch, counting up to every scene.
    progress = [
        r.event_log_entry.dagster_event.event_specific_data.asset_observation.metadata
        for r in instance.get_records_for_run(result.run_id, of_type=DagsterEventType.ASSET_OBSERVATION).records
    ]
    done = [m["done"].value for m in progress if "done" in m]
    assert len(done) == len(calls) and sorted(done) == done and done[-1] == 190
    assert {m["total"].value for m in progress if "total" in m} == {190}


def test_big_fish_completes_on_the_fallbacks_with_the_chains_first_model_down(
    corpus_dir: Path, sim: RecordingSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    source = corpus_dir / "Big-Fish.fountain"
    sim.set_profile("primary-down")  # anthropic answers 529 overloaded_error to everything
    result = materialize(instance, source, run_config(sim, tmp_path))
    assert result.success
    table = scenes_table(source)
    assert len(table) == 190
    served_by = set(table["enriched_by"])
    assert served_by and not any(s.startswith(("anthropic/", "offline/")) for s in served_by)
    for call in sim.calls_for("enrich_scenes"):
        assert_within_limits(call)
    assert_nothing_refused(sim)


# ------------------------------------------------------------------------------------------ no silent gaps


def test_a_scene_without_a_summary_fails_the_step_naming_it_and_nothing_is_materialized(
    sim: RecordingSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    source = Path(__file__).resolve().parents[2] / "samples" / "the-lighthouse-keepers-ledger.fountain"
    sim.blank_scene = 3  # every model, on every try, leaves scene 3's summary blank
    config = run_config(sim, tmp_path, chains={"extract_scenes": ["claude-sonnet-4-6", "gpt-5.2"]})
    result = materialize(instance, source, config)
    assert not result.success
    assert instance.get_latest_materialization_event(AssetKey("scenes")) is None
    failure = step_failure(instance, result.run_id, "scenes")
    missing = failure.metadata["missing"].value
    assert f"scenes {missing}" in failure.description
    assert any(start <= 3 <= stop for start, stop in _runs(missing))
    assert failure.metadata["error_class"].value == "permanent"


def _runs(described: str) -> list[tuple[int, int]]:
    runs = []
    for item in described.split(", "):
        first, _, last = item.partition("-")
        runs.append((int(first), int(last or first)))
    return runs


def test_a_failed_batch_fails_alone_and_the_resumed_run_pays_only_for_it(
    corpus_dir: Path, sim: RecordingSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    source = corpus_dir / "The-Last-Birthday-Card.fountain"
    sim.garble_scene = 20
    config = run_config(sim, tmp_path, call_output_tokens=800, chains={"extract_scenes": ["claude-sonnet-4-6"]})
    failed = materialize(instance, source, config)
    assert not failed.success
    first_calls = sim.calls_for("enrich_scenes")
    batches = {c.scene_numbers for c in first_calls}
    assert len(batches) >= 4
    bad = next(b for b in batches if 20 in b)
    failure = step_failure(instance, failed.run_id, "scenes")
    assert failure.metadata["missing"].value == f"{bad[0]}-{bad[-1]}"  # exactly the failed batch's scenes
    assert instance.get_latest_materialization_event(AssetKey("scenes")) is None

    sim.garble_scene = None
    sim.answered.clear()
    resumed = materialize(instance, source, config)
    assert resumed.success
    assert [c.scene_numbers for c in sim.calls_for("enrich_scenes")] == [bad]  # the rest came from the cache
    table = scenes_table(source)
    assert len(table) == 48 and all(s.strip() for s in table["summary"])
    meta = instance.get_latest_materialization_event(AssetKey("scenes")).asset_materialization.metadata
    assert meta["parts_from_cache"].value == len(batches) - 1


# ------------------------------------------------------------------------------------------ long prose

PEOPLE = ["Maria", "Tomas", "Elena", "Jonah", "Ruth", "Samuel"]
ACTIONS = [
    "{a} sets a chipped cup down and looks at {b} for a long moment.",
    "{a} folds the letter twice and slides it under a stack of old receipts.",
    "{b} laughs softly, then stops, as if remembering something that still hurts.",
    "A clock ticks somewhere behind them while {a} counts coins into a tin.",
    "{a} pulls a worn photograph from a coat pocket and turns it over.",
    "{b} wipes both hands on a rag and waits for {a} to speak first.",
    "Wind rattles the loose pane, and {a} pulls the collar of a heavy coat higher.",
    "{a} traces the edge of the table with one finger, avoiding {b}'s eyes.",
]
LINES = [
    "We cannot stay another winter",
    "You promised me you would tell the truth",
    "I kept every one of his letters",
    "Nobody has to know what happened that year",
    "Then we leave before anyone wakes",
    "I am tired of pretending nothing changed",
]
TIMES = [("", "DAY"), ("at night", "NIGHT"), ("in the evening", "EVENING"), ("at dawn", "DAWN")]
PLACES = ["kitchen", "garden", "office", "station", "church", "library", "barn", "street", "hallway", "porch"]


def treatment_and_screenplay(scenes: int, seed: int = 11) -> tuple[str, str]:
    """The same story twice: as a prose treatment (one paragraph per beat, speech as 'Maria says, "..."')
    and as Fountain, with each scene's heading where the prose first places it."""
    rng = random.Random(seed)
    prose: list[str] = []
    fountain: list[str] = ["Title: The Long Winter"]
    previous = ""
    for number in range(scenes):
        place = rng.choice([p for p in PLACES if p != previous])
        previous = place
        when, time_of_day = rng.choice(TIMES)
        a, b = rng.sample(PEOPLE, 2)
        opening = ACTIONS[number % len(ACTIONS)].format(a=a, b=b)
        prose.append(f"{when.capitalize() + ', i' if when else 'I'}n the {place}, {a} waits. {opening}")
        prefix = "EXT." if place in OUTDOOR_PLACES else "INT."
        fountain += [f"{prefix} {place.upper()} - {time_of_day}", f"{a} waits. {opening}"]
        for beat in range(rng.randint(5, 8)):
            if beat % 2:
                speaker = rng.choice([a, b])
                line = rng.choice(LINES)
                prose.append(f'{speaker} says, "{line}."')
                fountain.append(f"{speaker.upper()}\n{line}.")
            else:
                action = rng.choice(ACTIONS).format(a=a, b=b)
                prose.append(action)
                fountain.append(action)
    return "\n\n".join(prose) + "\n", "\n\n".join(fountain) + "\n"


def test_a_forty_page_treatment_normalizes_in_chunks_to_the_same_scenes_as_its_fountain(
    sim: RecordingSimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    prose, screenplay = treatment_and_screenplay(scenes=110)
    assert len(prose.split()) >= 40 * 250  # a 40-page treatment at ~250 words a page
    source = tmp_path / "the-long-winter.txt"
    source.write_text(prose)
    result = materialize(instance, source, run_config(sim, tmp_path, chains={"extract_scenes": ["offline"]}))
    assert result.success
    normalize_calls = sim.calls_for("normalize")
    assert len(normalize_calls) >= 3
    for call in normalize_calls:
        assert_within_limits(call)
    assert_nothing_refused(sim)
    artifact = json.loads((artifacts_dir() / "canonical_script" / f"{register_source(source)}.json").read_text())
    reference, _ = digest_fountain(screenplay)
    candidate, _ = digest_fountain(artifact["fountain"])
    assert heading_score(reference, candidate).f1 >= 0.95
    assert len(candidate.headings) == len(reference.headings) == 110
    assert len(scenes_table(source)) == 110
