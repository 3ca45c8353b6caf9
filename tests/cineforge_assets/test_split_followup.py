"""Issue 20 follow-ups as real Dagster runs against the loopback simulator: a resumed run reuses the halves of
a batch that had to be split instead of paying again for the call that gets cut (item 2), and a normalize
chunk whose answer is cut even at the model's output limit is split at its own paragraph boundaries (item 3).

The simulator here writes longer answers than the estimate for large parts (a model that is wordier than
planned for), so they are cut at the model's output limit, as the real services cut them; the pieces a split
makes get ordinary answers.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance

from cineforge_assets.paths import artifacts_dir
from cineforge_assets.screenplay.batching import split_with_overlap
from cineforge_assets.screenplay.fidelity import digest_fountain, heading_score
from cineforge_assets.sources import register_source
from resources.providers import prompts
from resources.providers.limits import estimate_tokens, limits_for
from resources.simulator import ProviderSimulator
from resources.simulator.wire import ChatCall
from tests.cineforge_assets.test_stage_splitting import (
    AnsweredCall,
    assert_nothing_refused,
    assert_within_limits,
    materialize,
    run_config,
    scenes_table,
    step_failure,
    treatment_and_screenplay,
)

pytestmark = pytest.mark.usefixtures("data_root")

MODEL = "gpt-4o-mini"  # a 16,384-token output limit: a call planned at that ceiling has no room to raise
LIMIT = limits_for("openai", MODEL).max_output_tokens
WORDY = "y" * (LIMIT * 5)  # more characters than the output limit holds tokens (4 characters a token)


class WordySimulator(ProviderSimulator):
    """The project's simulator, keeping every answered call (what it sent back: never above the ceiling).

    ``wordy_scenes``: an enrich answer covering more scenes than this pads every visual description;
    ``wordy_paragraphs``: a normalize answer for more prose paragraphs than this ends in a long boneyard
    (``/* */``, which Fountain drops), so both are cut at the output limit. ``garble_scene``: an enrich
    answer covering that scene (and not padded) is cut in half, unparseable."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.answered: list[AnsweredCall] = []
        self.wordy_scenes: int | None = None
        self.wordy_paragraphs: int | None = None
        self.garble_scene: int | None = None
        self._record_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _model_text(self, call: ChatCall) -> str:  # type: ignore[override]
        text = ProviderSimulator._model_text(call)
        task, payload = prompts.extract_task_and_input(call.system, call.prompt)
        payload = payload or {}
        numbers = tuple(int(s["scene_number"]) for s in payload.get("scenes", []))
        paragraphs = [p for p in str(payload.get("text", "")).split("\n\n") if p.strip()]
        if task == "enrich_scenes" and self.wordy_scenes is not None and len(numbers) > self.wordy_scenes:
            answer = json.loads(text)
            for scene in answer["scenes"]:
                scene["visual_description"] += " " + WORDY[: len(WORDY) // len(numbers) + 1]
            text = json.dumps(answer)
        elif task == "enrich_scenes" and self.garble_scene in numbers:
            text = text[: len(text) // 2]
        if task == "normalize" and self.wordy_paragraphs is not None and len(paragraphs) > self.wordy_paragraphs:
            answer = json.loads(text)
            answer["fountain"] += f"\n\n/* {WORDY} */\n"
            text = json.dumps(answer)
        with self._record_lock:
            self.answered.append(
                AnsweredCall(
                    task,
                    call.model,
                    call.ceiling(),
                    estimate_tokens(call.system) + estimate_tokens(call.prompt),
                    min(estimate_tokens(text), call.ceiling()),
                    numbers,
                )
            )
        return text

    def calls_for(self, task: str) -> list[AnsweredCall]:
        return [c for c in self.answered if c.task == task]


@pytest.fixture
def sim() -> Any:
    with WordySimulator() as simulator:
        yield simulator


def test_a_resumed_run_goes_straight_to_the_halves_of_a_batch_that_had_to_be_split(
    corpus_dir: Path, sim: WordySimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    source = corpus_dir / "The-Last-Birthday-Card.fountain"
    sim.wordy_scenes = 24  # the whole script's one batch (48 scenes) is cut; its halves are not
    sim.garble_scene = 40  # ... and the second half's answer is unusable: the run fails
    config = run_config(sim, tmp_path, call_output_tokens=LIMIT, chains={"extract_scenes": [MODEL]})
    failed = materialize(instance, source, config)
    assert not failed.success
    first = [c.scene_numbers for c in sim.calls_for("enrich_scenes")]
    whole, low, high = tuple(range(1, 49)), tuple(range(1, 25)), tuple(range(25, 49))
    assert first.count(whole) == 1 and low in first and high in first  # cut once, then halved
    assert step_failure(instance, failed.run_id, "scenes").metadata["missing"].value == "25-48"

    sim.garble_scene = None
    sim.answered.clear()
    resumed = materialize(instance, source, config)
    assert resumed.success
    # Not the whole batch again (it would be cut again), nor the half that was answered: only what is missing.
    assert [c.scene_numbers for c in sim.calls_for("enrich_scenes")] == [high]
    table = scenes_table(source)
    assert len(table) == 48 and all(s.strip() for s in table["summary"])
    meta = instance.get_latest_materialization_event(AssetKey("scenes")).asset_materialization.metadata
    assert (meta["parts_from_cache"].value, meta["parts_from_models"].value) == (1, 1)


def test_a_single_normalize_chunk_cut_at_the_models_limit_is_split_at_its_paragraphs(
    sim: WordySimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    prose, screenplay = treatment_and_screenplay(scenes=12)
    paragraphs = prose.count("\n\n") + 1
    sim.wordy_paragraphs = paragraphs // 2 + 3  # the whole prose's answer is cut; each half's is not
    source = tmp_path / "a-short-winter.txt"
    source.write_text(prose)
    config = run_config(sim, tmp_path, chains={"normalize": [MODEL], "extract_scenes": ["offline"]})
    result = materialize(instance, source, config)
    assert result.success
    calls = sim.calls_for("normalize")
    assert len(calls) == 4  # the whole, its ceiling raised once to the limit, then the two halves
    assert [c.max_tokens for c in calls[:2]][-1] == LIMIT and calls[1].output_tokens == LIMIT
    for call in calls:
        assert_within_limits(call)
    assert_nothing_refused(sim)
    artifact = json.loads((artifacts_dir() / "canonical_script" / f"{register_source(source)}.json").read_text())
    reference, _ = digest_fountain(screenplay)
    candidate, _ = digest_fountain(artifact["fountain"])
    assert heading_score(reference, candidate).f1 >= 0.95
    assert len(candidate.headings) == len(reference.headings) == 12


def test_a_paragraph_whose_answer_never_fits_fails_the_step_naming_it(
    sim: WordySimulator, tmp_path: Path, instance: DagsterInstance
) -> None:
    prose, _ = treatment_and_screenplay(scenes=3)
    sim.wordy_paragraphs = 0  # every answer, down to a single paragraph's, is cut at the limit
    source = tmp_path / "a-wordy-winter.txt"
    source.write_text(prose)
    config = run_config(sim, tmp_path, chains={"normalize": [MODEL], "extract_scenes": ["offline"]})
    result = materialize(instance, source, config)
    assert not result.success
    failure = step_failure(instance, result.run_id, "canonical_script")
    paragraphs = prose.count("\n\n") + 1
    assert failure.metadata["missing"].value == f"1-{paragraphs}"
    assert f"prose paragraphs 1-{paragraphs} " in failure.description
    assert failure.metadata["error_class"].value == "permanent"


def test_split_with_overlap_makes_smaller_pieces_sharing_at_most_a_quarter() -> None:
    assert split_with_overlap(range(10, 20), 2) == (range(10, 15), range(13, 20))
    assert split_with_overlap(range(0, 4), 2) == (range(0, 2), range(1, 4))
    assert split_with_overlap(range(0, 3), 2) == (range(0, 1), range(1, 3))
    assert split_with_overlap(range(5, 7), 2) == (range(5, 6), range(6, 7))
    with pytest.raises(ValueError):
        split_with_overlap(range(3, 4), 2)
