"""Scene selection and Veo prompts (pure)."""

from __future__ import annotations

import pandas as pd
import pytest

from cineforge_assets.broll.scenes import MAX_PROMPT_CHARS, build_prompt, scene_prompts, select_scenes


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "scene_number": [1, 2, 3, 4, 5],
            "heading": [
                "EXT. GANNET ROCK LIGHTHOUSE - DAY",
                "INT. LIGHTHOUSE - KITCHEN - DAY",
                "EXT. LIGHTHOUSE - GALLERY - NIGHT",
                "INT. LIGHTHOUSE - STAIRWELL - NIGHT",
                "EXT. JETTY - DAY",
            ],
            "int_ext": ["EXT", "INT", "EXT", "INT", "EXT"],
            "location": ["GANNET ROCK LIGHTHOUSE", "LIGHTHOUSE - KITCHEN", "LIGHTHOUSE - GALLERY", "STAIRWELL", ""],
            "time_of_day": ["DAY", "DAY", "NIGHT", "NIGHT", "DAY"],
            "est_screen_seconds": [30.0, 95.0, 40.0, 95.0, 10.0],
            "word_count": [80, 200, 120, 260, 20],
            "visual_description": [
                "A white tower on a black rock, gannets wheeling.",
                "Steam rises from a kettle in a cramped kitchen.",
                "",
                "A spiral of iron steps lit by a swinging lamp",
                "",
            ],
            "summary": ["", "", "The keeper checks the lamp.", "", ""],
            "mood": ["lonely", "warm", "tense", "eerie", ""],
        }
    )


def test_longest_ranks_by_screen_time_then_words(frame: pd.DataFrame) -> None:
    assert select_scenes(frame).scenes == [2, 3, 4]  # default: longest 3, returned in script order
    assert select_scenes(frame, "longest", count=1).scenes == [4]  # tie on seconds: more words wins
    assert select_scenes(frame, "longest", count=0).scenes == []
    assert select_scenes(frame, "longest", count=99).scenes == [1, 2, 3, 4, 5]


def test_all_and_list_modes(frame: pd.DataFrame) -> None:
    assert select_scenes(frame, "all").scenes == [1, 2, 3, 4, 5]
    choice = select_scenes(frame, "list", scene_numbers=[5, 1, 5, 42])
    assert choice.scenes == [1, 5] and choice.missing == [42]


def test_empty_frames_and_bad_modes(frame: pd.DataFrame) -> None:
    empty = frame.iloc[0:0]
    assert select_scenes(empty).scenes == []
    assert select_scenes(empty, "list", scene_numbers=[3, 1]).missing == [1, 3]
    with pytest.raises(ValueError, match="unknown scene selection mode"):
        select_scenes(frame, "random")  # type: ignore[arg-type]


def test_longest_without_size_columns_falls_back_to_order(frame: pd.DataFrame) -> None:
    bare = frame[["scene_number", "heading"]]
    assert select_scenes(bare, "longest", count=2).scenes == [1, 2]


def test_prompt_carries_picture_setting_mood_and_style(frame: pd.DataFrame) -> None:
    prompts = scene_prompts(frame, [1, 3, 5, 77], genre="Drama", tone="Melancholic")
    assert list(prompts) == [1, 3, 5]
    assert prompts[1] == (
        "Cinematic B-roll shot for a drama film, melancholic in tone. A white tower on a black rock, "
        "gannets wheeling. Setting: exterior, Gannet Rock Lighthouse, day. Mood: lonely. "
        "No dialogue, no captions, no on-screen text."
    )
    assert "The keeper checks the lamp." in prompts[3]  # no visual description: the summary stands in
    assert "EXT. JETTY - DAY." in prompts[5] and "Mood" not in prompts[5]  # heading when nothing else
    assert build_prompt({"heading": "INT. ROOM - DAY"}).startswith("Cinematic B-roll shot. INT. ROOM - DAY.")


def test_prompts_are_bounded() -> None:
    prompt = build_prompt({"visual_description": "waves " * 1000, "mood": "calm"}, genre="drama")
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert prompt.startswith("Cinematic B-roll shot for a drama film. waves")
    assert prompt.endswith("waves…. Mood: calm. No dialogue, no captions, no on-screen text.")
