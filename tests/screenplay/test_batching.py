"""Batch planning, prose chunking and the Fountain join: pure functions on token counts and text."""

from __future__ import annotations

import random

import pytest

from cineforge_assets.screenplay.batching import (
    Budget,
    CallLimits,
    ItemCost,
    ItemTooLargeError,
    describe_scene_numbers,
    join_fountain,
    minimum_calls,
    missing_enrichment,
    plan_batches,
    prose_paragraphs,
    split_batch,
    split_prose,
)
from resources.providers.offline import normalize_text


def tokens(text: str) -> int:
    return len(text.split())


def test_batches_cover_every_item_once_in_order_within_both_budgets() -> None:
    rng = random.Random(3)
    costs = [ItemCost(rng.randint(50, 400), rng.randint(40, 150)) for _ in range(190)]
    budget = Budget(input_tokens=5000, output_tokens=3600)
    batches = plan_batches(costs, budget)
    assert [i for b in batches for i in b] == list(range(190))
    for batch in batches:
        assert sum(costs[i].input_tokens for i in batch) <= budget.input_tokens
        assert sum(costs[i].output_tokens for i in batch) <= budget.output_tokens


def fewest_contiguous(costs: list[ItemCost], budget: Budget) -> int:
    """Exhaustive dynamic programme: the fewest contiguous batches within ``budget``."""
    best = [0] + [len(costs) + 1] * len(costs)
    for stop in range(1, len(costs) + 1):
        used_in = used_out = 0
        for start in range(stop - 1, -1, -1):
            used_in += costs[start].input_tokens
            used_out += costs[start].output_tokens
            if used_in > budget.input_tokens or used_out > budget.output_tokens:
                break
            best[stop] = min(best[stop], best[start] + 1)
    return best[-1]


@pytest.mark.parametrize("seed", range(8))
def test_batch_count_is_the_fewest_contiguous_and_within_one_of_the_lower_bound(seed: int) -> None:
    rng = random.Random(seed)
    costs = [ItemCost(rng.randint(50, 400), rng.randint(40, 150)) for _ in range(rng.randint(20, 190))]
    budget = Budget(input_tokens=rng.choice([4000, 200_000]), output_tokens=rng.choice([1800, 3600]))
    batches = plan_batches(costs, budget)
    assert len(batches) == fewest_contiguous(costs, budget)
    assert len(batches) <= minimum_calls(costs, budget) + 1


def test_batches_are_evened_out_rather_than_leaving_a_small_remainder() -> None:
    costs = [ItemCost(10, 100)] * 11  # next-fit at 1000 output: 10 + 1
    batches = plan_batches(costs, Budget(input_tokens=10_000, output_tokens=1000))
    assert sorted(len(b) for b in batches) == [5, 6]


def test_one_call_when_everything_fits() -> None:
    assert plan_batches([ItemCost(10, 10)] * 50, Budget(10_000, 10_000)) == [range(0, 50)]
    assert plan_batches([], Budget(10, 10)) == []


def test_an_item_larger_than_a_call_is_a_clear_error() -> None:
    with pytest.raises(ItemTooLargeError, match="item 2 alone"):
        plan_batches([ItemCost(1, 1), ItemCost(1, 1), ItemCost(1, 50)], Budget(100, 20))


def test_budget_keeps_a_margin_and_reserves_the_output_ceiling_in_the_context_window() -> None:
    budget = Budget.of(CallLimits(context_window=100_000, max_output_tokens=4096), ItemCost(500, 10))
    assert budget.output_tokens == int(4096 * 0.9) - 10
    assert budget.input_tokens == int(100_000 * 0.95) - 4096 - 500
    assert CallLimits(200_000, 64_000).capped(4096) == CallLimits(200_000, 4096)
    assert CallLimits(200_000, 8192).capped(64_000) == CallLimits(200_000, 8192)


def test_split_batch_halves() -> None:
    assert split_batch(range(10, 15)) == (range(10, 12), range(12, 15))
    with pytest.raises(ValueError):
        split_batch(range(3, 4))


def test_missing_enrichment_names_absent_and_blank_scenes() -> None:
    full = {"summary": "s", "mood": "m", "visual_description": "v"}
    answers = {1: full, 2: {**full, "mood": "  "}, 4: full}
    assert missing_enrichment([1, 2, 3, 4], answers) == [2, 3]
    assert describe_scene_numbers([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"


# ------------------------------------------------------------------------------------------ prose


def story_paragraphs(count: int) -> list[str]:
    places = ["kitchen", "garden", "office", "station", "church", "library", "harbor", "barn"]
    out = []
    for i in range(count):
        if i % 4 == 0:
            out.append(f"That night, in the {places[(i // 4) % len(places)]}, Maria waits. Scene {i} begins here.")
        else:
            out.append(f'Paragraph {i}: Maria turns to Tomas. "We leave at dawn {i}," Maria says.')
    return out


def test_prose_chunks_overlap_move_forward_and_cover_every_paragraph() -> None:
    text = "\n\n".join(story_paragraphs(60))
    chunks = split_prose(text, input_budget=120, overlap_tokens=20, estimate_tokens=tokens)
    assert len(chunks) > 3
    assert chunks[0].start == 0 and chunks[-1].stop == 60
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.stop  # overlap
        assert after.start > before.start  # progress
        assert after.overlap == before.stop - after.start >= 2
    for chunk in chunks:
        assert sum(tokens(p) + 1 for p in prose_paragraphs(chunk.text)) <= 120 or chunk.stop - chunk.start == 1


def test_page_breaks_end_paragraphs() -> None:
    assert prose_paragraphs("one line\fnext page\n\n\nthird") == ["one line", "next page", "third"]


def test_joined_chunks_give_the_one_call_fountain_without_duplicating_the_overlap() -> None:
    text = "\n\n".join(story_paragraphs(80))
    whole = normalize_text(text)
    chunks = split_prose(text, input_budget=150, overlap_tokens=40, estimate_tokens=tokens)
    assert len(chunks) >= 4
    joined = join_fountain([normalize_text(c.text) for c in chunks])
    assert joined == whole


def test_join_drops_a_later_chunks_title_page_and_falls_back_when_the_overlap_was_rewritten() -> None:
    first = "Title: Harbor\n\nINT. KITCHEN - NIGHT\n\nMaria waits.\n\nMARIA\nWe leave."
    second = "Title: Harbor\n\nINT. KITCHEN - NIGHT\n\nMARIA\nWe leave!\n\nEXT. GARDEN - DAY\n\nTomas digs."
    joined = join_fountain([first, second])
    assert joined.count("Title:") == 1
    assert joined.count("We leave") == 1
    assert joined.endswith("EXT. GARDEN - DAY\n\nTomas digs.\n")
    rewritten = "INT. KITCHEN - NIGHT\n\nMaria is waiting.\n\nEXT. GARDEN - DAY\n\nTomas digs."
    fallback = join_fountain([first, rewritten])
    assert fallback.count("INT. KITCHEN - NIGHT") == 1 and "Tomas digs." in fallback
