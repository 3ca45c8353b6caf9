"""Splitting a stage's work so each model call fits the model's limits, and putting the answers back together.

Pure functions on token counts and text; they know nothing of providers, Dagster or threads.

* ``plan_batches``: scenes (or any items in order) -> contiguous batches whose estimated input fits the
  context window and whose estimated output fits the per-call output ceiling, as few as the limits allow
  and then evened out, so concurrent batches finish together and no batch is a tiny remainder.
* ``minimum_calls``: the lower bound any packing must meet (what "within 10 % of the minimum" is measured
  against).
* ``split_batch``: halves of a batch, for a batch a model could not answer within its ceiling;
  ``split_with_overlap`` the same for prose paragraphs, the halves sharing a few paragraphs.
* ``missing_enrichment``: the scenes that have no usable summary, mood or visual description.
* ``split_prose`` / ``join_fountain``: long prose -> overlapping chunks cut at paragraph (page) boundaries,
  and the chunks' Fountain back into one script with the overlap written once.

Why hand-written: the packing is a dozen lines of greedy next-fit over two budgets (input and output), and
the join depends on the shape of Fountain blocks; no library does either. Greedy next-fit is optimal for
contiguous batches when any sub-run of a run that fits also fits, which holds here (costs are additive and
non-negative).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

# Share of a call's output ceiling the estimate may fill: the answer's real length differs from the
# estimate, and a cut answer costs a whole call plus a re-split.
DEFAULT_OUTPUT_FILL = 0.9
# Share of the context window the input may fill (the output ceiling is reserved on top of it).
DEFAULT_CONTEXT_FILL = 0.95


@dataclass(frozen=True, slots=True)
class ItemCost:
    """Estimated tokens one item adds to a call: to the prompt and to the answer."""

    input_tokens: int
    output_tokens: int

    def __add__(self, other: ItemCost) -> ItemCost:
        return ItemCost(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass(frozen=True, slots=True)
class CallLimits:
    """What one call may use: the model's context window and the output ceiling a call asks for."""

    context_window: int
    max_output_tokens: int

    def capped(self, output_tokens: int | None) -> CallLimits:
        """These limits with the output ceiling lowered to ``output_tokens`` (None: unchanged)."""
        if output_tokens is None or output_tokens >= self.max_output_tokens:
            return self
        return CallLimits(self.context_window, max(1, output_tokens))


@dataclass(frozen=True, slots=True)
class Budget:
    """The estimate each call may reach: ``input_tokens`` of prompt and ``output_tokens`` of answer."""

    input_tokens: int
    output_tokens: int

    @classmethod
    def of(
        cls,
        limits: CallLimits,
        fixed: ItemCost,
        *,
        output_fill: float = DEFAULT_OUTPUT_FILL,
        context_fill: float = DEFAULT_CONTEXT_FILL,
    ) -> Budget:
        """What is left for items once a call's fixed part (instructions, schema, framing) is counted."""
        output = math.floor(limits.max_output_tokens * output_fill) - fixed.output_tokens
        # The request reserves its whole output ceiling inside the context window.
        context = math.floor(limits.context_window * context_fill) - limits.max_output_tokens
        return cls(input_tokens=context - fixed.input_tokens, output_tokens=output)


class ItemTooLargeError(ValueError):
    """One item alone does not fit a call: no split can help."""

    def __init__(self, index: int, cost: ItemCost, budget: Budget) -> None:
        self.index = index
        super().__init__(
            f"item {index} alone needs ~{cost.input_tokens} input / ~{cost.output_tokens} output tokens, "
            f"more than one call allows ({budget.input_tokens} / {budget.output_tokens})"
        )


def _next_fit(costs: Sequence[ItemCost], input_cap: int, output_cap: int) -> list[range]:
    batches: list[range] = []
    start = 0
    used_in = used_out = 0
    for index, cost in enumerate(costs):
        if index > start and (used_in + cost.input_tokens > input_cap or used_out + cost.output_tokens > output_cap):
            batches.append(range(start, index))
            start, used_in, used_out = index, 0, 0
        used_in += cost.input_tokens
        used_out += cost.output_tokens
    if start < len(costs):
        batches.append(range(start, len(costs)))
    return batches


def plan_batches(costs: Sequence[ItemCost], budget: Budget) -> list[range]:
    """Contiguous batches of item indexes, in order, each within ``budget``; as few as possible, then even.

    The count is greedy next-fit's (the fewest contiguous batches); the evening-out then finds the
    smallest per-batch output and input caps that still give that count, by bisection.
    Raises ``ItemTooLargeError`` when one item alone exceeds the budget.
    """
    if not costs:
        return []
    for index, cost in enumerate(costs):
        if cost.input_tokens > budget.input_tokens or cost.output_tokens > budget.output_tokens:
            raise ItemTooLargeError(index, cost, budget)
    batches = _next_fit(costs, budget.input_tokens, budget.output_tokens)
    count = len(batches)
    if count == 1:
        return batches
    # Lower the output cap as far as the count allows, then the input cap under that output cap.
    output_cap = _smallest_cap(
        lambda cap: len(_next_fit(costs, budget.input_tokens, cap)) <= count,
        low=max(c.output_tokens for c in costs),
        high=budget.output_tokens,
    )
    input_cap = _smallest_cap(
        lambda cap: len(_next_fit(costs, cap, output_cap)) <= count,
        low=max(c.input_tokens for c in costs),
        high=budget.input_tokens,
    )
    return _next_fit(costs, input_cap, output_cap)


def _smallest_cap(fits: Callable[[int], bool], *, low: int, high: int) -> int:
    """The smallest cap in ``[low, high]`` for which ``fits`` holds (it holds at ``high``; monotone)."""
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return high


def minimum_calls(costs: Iterable[ItemCost], budget: Budget) -> int:
    """A lower bound on the calls any packing needs: total input and total output over one call's room."""
    total = ItemCost(0, 0)
    for cost in costs:
        total = total + cost
    if total.input_tokens == 0 and total.output_tokens == 0:
        return 0
    return max(
        1,
        math.ceil(total.input_tokens / budget.input_tokens),
        math.ceil(total.output_tokens / budget.output_tokens),
    )


def split_batch(batch: range) -> tuple[range, range]:
    """The two halves of ``batch`` (for a batch whose answer did not fit); ``ValueError`` for one item."""
    if len(batch) < 2:
        raise ValueError("a batch of one item cannot be split")
    middle = batch.start + len(batch) // 2
    return range(batch.start, middle), range(middle, batch.stop)


def split_with_overlap(part: range, overlap: int) -> tuple[range, range]:
    """Two smaller pieces of ``part``, the second repeating up to ``overlap`` items of the first (for prose
    paragraphs: the scene running across the cut is seen whole by the later piece), at most a quarter of the
    part, so pieces that are split again do not multiply the repeated work. Each piece is shorter than
    ``part``; ``ValueError`` for one item (the floor: a paragraph is not cut)."""
    if len(part) < 2:
        raise ValueError("a part of one item cannot be split")
    middle = part.start + len(part) // 2
    repeat = max(0, min(overlap, len(part) // 4))
    return range(part.start, middle), range(middle - repeat, part.stop)


ENRICHMENT_FIELDS: tuple[str, ...] = ("summary", "mood", "visual_description")


def missing_enrichment(scene_numbers: Iterable[int], answers: Mapping[int, Mapping[str, object]]) -> list[int]:
    """Scene numbers with no answer, or with a blank summary, mood or visual description, in order."""
    missing: list[int] = []
    for number in scene_numbers:
        answer = answers.get(number)
        if answer is None or any(not str(answer.get(name) or "").strip() for name in ENRICHMENT_FIELDS):
            missing.append(number)
    return missing


def describe_scene_numbers(numbers: Sequence[int], limit: int = 40) -> str:
    """``1-3, 7, 9-12`` (runs collapsed; at most ``limit`` runs, then how many more)."""
    runs: list[tuple[int, int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    shown = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    if len(runs) > limit:
        shown.append(f"... ({len(runs) - limit} more runs)")
    return ", ".join(shown)


# ------------------------------------------------------------------------------------------ prose

_PAGE_BREAK = "\f"
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True, slots=True)
class ProseChunk:
    """One normalize call's share of the prose: paragraphs ``[start, stop)``, the first ``overlap`` of
    which the previous chunk also has."""

    start: int
    stop: int
    overlap: int
    text: str


def prose_paragraphs(text: str) -> list[str]:
    """Paragraphs of prose: blank-line separated, a page break (form feed) also ends one."""
    unified = text.replace("\r\n", "\n").replace("\r", "\n").replace(_PAGE_BREAK, "\n\n")
    return [p.strip() for p in _BLANK_LINES.split(unified) if p.strip()]


def split_prose(
    text: str,
    *,
    input_budget: int,
    overlap_tokens: int,
    estimate_tokens: Callable[[str], int],
    min_overlap_paragraphs: int = 2,
) -> list[ProseChunk]:
    """Prose -> chunks of whole paragraphs, each at most ``input_budget`` tokens (a paragraph larger than
    that is a chunk of its own), each after the first opening with the previous chunk's last paragraphs:
    at least ``min_overlap_paragraphs`` and at least ``overlap_tokens`` tokens of them, so the scene that
    runs across a cut is seen whole, with what leads into it, by the next chunk.
    """
    paragraphs = prose_paragraphs(text)
    if not paragraphs:
        return []
    sizes = [estimate_tokens(p) + 1 for p in paragraphs]
    chunks: list[ProseChunk] = []
    start = 0
    overlap = 0
    while True:
        stop = start + overlap
        used = sum(sizes[start:stop])
        while stop < len(paragraphs) and (stop == start + overlap or used + sizes[stop] <= input_budget):
            used += sizes[stop]
            stop += 1
        chunks.append(ProseChunk(start, stop, overlap, "\n\n".join(paragraphs[start:stop])))
        if stop >= len(paragraphs):
            return chunks
        # The next chunk starts far enough back to repeat the overlap, always moves forward, and keeps
        # at least half its budget for paragraphs not seen yet.
        back = carried = 0
        while (
            stop - back - 1 > start
            and (back < min_overlap_paragraphs or carried < overlap_tokens)
            and carried + sizes[stop - back - 1] <= input_budget // 2
        ):
            back += 1
            carried += sizes[stop - back]
        start, overlap = stop - back, back


def fountain_blocks(text: str) -> list[str]:
    """Fountain text as its blank-line separated blocks (heading, action, cue + dialogue, transition)."""
    unified = text.replace("\r\n", "\n").replace("\r", "\n")
    return [b.strip("\n") for b in _BLANK_LINES.split(unified) if b.strip()]


_TITLE_KEY = re.compile(r"^[A-Za-z][A-Za-z ]*:")
_COMPARABLE = re.compile(r"[^a-z0-9]+")


def _without_title_page(blocks: list[str]) -> list[str]:
    if blocks and all(_TITLE_KEY.match(line) or line.startswith((" ", "\t")) for line in blocks[0].splitlines()):
        return blocks[1:]
    return blocks


def _comparable(block: str) -> str:
    return _COMPARABLE.sub(" ", block.lower()).strip()


def _longest_overlap(tail: Sequence[str], head: Sequence[str]) -> tuple[int, int]:
    """``(length, start in head)`` of the longest run that ends ``tail`` and appears in ``head``."""
    for length in range(min(len(tail), len(head)), 0, -1):
        wanted = list(tail[len(tail) - length :])
        for start in range(0, len(head) - length + 1):
            if list(head[start : start + length]) == wanted:
                return length, start
    return 0, 0


def join_fountain(parts: Sequence[str], *, window: int = 200) -> str:
    """The Fountain of consecutive, overlapping chunks as one script, the overlap written once.

    Each chunk after the first repeats the end of the one before, but starts without its context: its
    first scene heading may be a guess. So its blocks are matched against the end of what is joined so
    far (compared without case, spacing and punctuation); what the earlier chunk wrote for the overlap is
    kept, and the later chunk contributes only what comes after the match. A later chunk's title page is
    dropped. With no match (a model rewrote the overlap), the later chunk's leading blocks already present
    in the recent text are dropped instead, so nothing is written twice.
    """
    joined: list[str] = []
    for number, part in enumerate(parts):
        blocks = fountain_blocks(part)
        if number == 0:
            joined.extend(blocks)
            continue
        blocks = _without_title_page(blocks)
        tail = [_comparable(b) for b in joined[-window:]]
        head = [_comparable(b) for b in blocks[:window]]
        length, start = _longest_overlap(tail, head)
        if length:
            joined.extend(blocks[start + length :])
            continue
        recent = set(tail)
        skip = 0
        while skip < len(blocks) and (head[skip] in recent if skip < len(head) else False):
            skip += 1
        joined.extend(blocks[skip:])
    return "\n\n".join(joined).strip() + "\n" if joined else ""
