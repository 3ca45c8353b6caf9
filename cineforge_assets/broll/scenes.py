"""Which scenes get B-roll, and the Veo prompt of each (pure: a DataFrame in, prompts out).

Prompts describe a shot, not a scene: Veo renders ~8 s of picture (with audio on Veo 3), so the scene's
``visual_description`` (from the ``scenes`` asset's enrichment) carries it, with the heading as setting,
the scene's mood and the project's genre/tone as style. Dialogue and on-screen text are ruled out
because B-roll sits under other material and Veo would otherwise invent speech and captions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

SelectionMode = Literal["all", "longest", "list"]
DEFAULT_LONGEST_COUNT = 3
# Veo accepts ~1,024 prompt tokens; characters are a safe proxy well under that.
MAX_PROMPT_CHARS = 1800
_INT_EXT_WORDS = {"INT": "interior", "EXT": "exterior", "INT/EXT": "interior/exterior"}


@dataclass(frozen=True)
class SceneChoice:
    scenes: list[int]
    missing: list[int]  # asked for in ``list`` mode but not in the script


def select_scenes(
    frame: pd.DataFrame,
    mode: SelectionMode = "longest",
    *,
    count: int = DEFAULT_LONGEST_COUNT,
    scene_numbers: Sequence[int] = (),
) -> SceneChoice:
    """Scene numbers in script order. ``longest`` ranks by estimated screen time, then words, then order."""
    if frame.empty:
        return SceneChoice([], sorted(set(scene_numbers)) if mode == "list" else [])
    numbers = [int(n) for n in frame["scene_number"]]
    if mode == "all":
        return SceneChoice(sorted(numbers), [])
    if mode == "list":
        wanted = list(dict.fromkeys(int(n) for n in scene_numbers))
        present = set(numbers)
        return SceneChoice(sorted(n for n in wanted if n in present), [n for n in wanted if n not in present])
    if mode != "longest":
        raise ValueError(f"unknown scene selection mode {mode!r} (all | longest | list)")
    seconds = frame["est_screen_seconds"] if "est_screen_seconds" in frame else pd.Series(0.0, index=frame.index)
    words = frame["word_count"] if "word_count" in frame else pd.Series(0, index=frame.index)
    ranked = sorted(zip(numbers, seconds, words, strict=True), key=lambda r: (-float(r[1]), -int(r[2]), r[0]))
    return SceneChoice(sorted(n for n, _, _ in ranked[: max(0, count)]), [])


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return " ".join(str(value).split()) if isinstance(value, str) else ""


def _setting(row: Mapping[str, Any]) -> str:
    location = _text(row, "location")
    if not location:
        return _text(row, "heading")
    parts = [
        _INT_EXT_WORDS.get(_text(row, "int_ext").upper(), ""),
        location.title(),
        _text(row, "time_of_day").lower(),
    ]
    return ", ".join(p for p in parts if p)


def build_prompt(row: Mapping[str, Any], *, genre: str = "", tone: str = "") -> str:
    """The Veo prompt for one ``scenes`` row; a long description is cut, never the style or the rules."""
    style = "Cinematic B-roll shot"
    if genre:
        style += f" for a {genre.strip().lower()} film"
    if tone:
        style += f", {tone.strip().lower()} in tone"
    tail: list[str] = []
    setting = _setting(row)
    if setting:
        tail.append(f"Setting: {setting}.")
    mood = _text(row, "mood")
    if mood:
        tail.append(f"Mood: {mood.rstrip('.')}.")
    tail.append("No dialogue, no captions, no on-screen text.")
    picture = (_text(row, "visual_description") or _text(row, "summary") or _text(row, "heading")).rstrip(".")
    budget = MAX_PROMPT_CHARS - len(style) - sum(len(t) + 1 for t in tail) - 3
    if len(picture) > budget:
        cut = picture[: max(0, budget - 1)]
        picture = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;") + "…"  # at a word boundary
    return " ".join([f"{style}.", f"{picture}.", *tail])


def scene_prompts(frame: pd.DataFrame, scenes: Sequence[int], *, genre: str = "", tone: str = "") -> dict[int, str]:
    """``{scene_number: prompt}`` for the chosen scenes, in the given order."""
    by_number = {int(r["scene_number"]): r for r in frame.to_dict("records")}
    return {n: build_prompt(by_number[n], genre=genre, tone=tone) for n in scenes if n in by_number}
