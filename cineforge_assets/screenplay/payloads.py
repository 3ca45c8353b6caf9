"""What the AI tasks are given about a screenplay: the ``enrich_scenes`` and ``project_insights`` payloads,
and how many tokens each part of them costs a call (so a stage can split its work to fit a model).

Built in one place so the assets, and the benchmarks that stand in for them, send the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any

from cineforge_assets.screenplay.batching import Budget, CallLimits, ItemCost, ProseChunk, split_prose
from cineforge_assets.screenplay.project import ProjectConfig
from cineforge_assets.screenplay.scenes import SceneRecord
from resources.providers import offline
from resources.providers.prompts import encode_input, system_prompt, user_prompt

# Keeps one request per script inside every chain model's context window, however long a scene runs.
SCENE_TEXT_LIMIT = 1500
EXCERPT_LIMIT = 2000
INSIGHT_CHARACTERS = 8
INSIGHT_SUMMARIES = 12


def enrich_scenes_payload(title: str, records: Sequence[SceneRecord]) -> dict[str, Any]:
    return {
        "title": title,
        "scenes": [
            {
                "scene_number": int(r.scene_number),
                "heading": r.heading,
                "text": r.text[:SCENE_TEXT_LIMIT],
                "characters": list(r.characters),
            }
            for r in records
        ],
    }


def project_insights_payload(
    config: ProjectConfig, records: Sequence[SceneRecord], scene_summaries: Iterable[object]
) -> dict[str, Any]:
    return {
        "title": config.title,
        "characters": [c.name for c in config.characters][:INSIGHT_CHARACTERS],
        "excerpt": records[0].text[:EXCERPT_LIMIT] if records else "",
        "scene_count": config.scene_count,
        "scene_summaries": [str(s) for s in islice(scene_summaries, INSIGHT_SUMMARIES)],
    }


# ------------------------------------------------------------------------------------------ sizes

# A normalize answer is the prose again as Fountain inside a JSON string: headings and cues are added and
# newlines and quotes are escaped; measured on the corpus' prose fixtures it runs ~1.1-1.2x the prose.
NORMALIZE_OUTPUT_RATIO = 1.25


def enrich_scenes_costs(
    payload: dict[str, Any], estimate_tokens: Callable[[str], int]
) -> tuple[ItemCost, list[ItemCost]]:
    """The fixed part of an ``enrich_scenes`` call and each scene's share, in estimated tokens.

    A scene's input is its JSON as sent; its output is the length of the answer the offline engine writes
    for it (the instructions bound a model's answer to the same shape: two sentences, a word, <= 60 words),
    so the estimate follows each scene's own material instead of one flat guess.
    """
    empty = {**payload, "scenes": []}
    fixed = ItemCost(
        input_tokens=estimate_tokens(system_prompt("enrich_scenes"))
        + estimate_tokens(user_prompt("enrich_scenes", empty)),
        output_tokens=estimate_tokens(json.dumps({"scenes": []})),
    )
    answers = offline.enrich_scenes({"scenes": payload["scenes"]})["scenes"]
    costs = [
        ItemCost(
            input_tokens=estimate_tokens(encode_input(scene)) + 1,
            output_tokens=estimate_tokens(json.dumps(answer, ensure_ascii=False)) + 1,
        )
        for scene, answer in zip(payload["scenes"], answers, strict=True)
    ]
    return fixed, costs


def enrich_scenes_batch(payload: dict[str, Any], batch: range) -> dict[str, Any]:
    """The ``enrich_scenes`` payload for the scenes at indexes ``batch`` (the title goes with every batch)."""
    return {**payload, "scenes": payload["scenes"][batch.start : batch.stop]}


def normalize_fixed_cost(estimate_tokens: Callable[[str], int]) -> ItemCost:
    return ItemCost(
        input_tokens=estimate_tokens(system_prompt("normalize"))
        + estimate_tokens(user_prompt("normalize", {"text": ""})),
        output_tokens=estimate_tokens(json.dumps({"fountain": ""})),
    )


# Paragraphs a normalize chunk repeats from the one before: at least this share of a chunk's budget, so
# the scene running across the cut is seen whole, with what leads into it, by the later chunk.
NORMALIZE_OVERLAP_SHARE = 0.1
# Paragraphs the two pieces of a chunk share when its answer was cut even at the model's output limit and
# the chunk is split again (down to one paragraph, the floor: a paragraph is never cut).
NORMALIZE_SPLIT_OVERLAP_PARAGRAPHS = 2


def normalize_chunks(text: str, limits: CallLimits, estimate_tokens: Callable[[str], int]) -> list[ProseChunk]:
    """The prose cut into the ``normalize`` calls a model with ``limits`` can take (one chunk when it fits
    one call): each chunk's prompt and its answer, ~``NORMALIZE_OUTPUT_RATIO`` times as long, both fit."""
    budget = Budget.of(limits, normalize_fixed_cost(estimate_tokens))
    input_budget = max(1, min(budget.input_tokens, int(budget.output_tokens / NORMALIZE_OUTPUT_RATIO)))
    return split_prose(
        text,
        input_budget=input_budget,
        overlap_tokens=int(input_budget * NORMALIZE_OVERLAP_SHARE),
        estimate_tokens=estimate_tokens,
    )
