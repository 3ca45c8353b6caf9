from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from resources.providers import offline, prompts
from resources.providers.base import CompletionRequest

PROSE = """The Visit

Edward sits alone in the kitchen at night, turning an old birthday card in his hands.

"You kept it," Sandra said. She sits beside him.

Later, on the porch, Will laughs at a joke. Will says, "You always tell that one."

CUT TO:

Jenny: I remember the story."""

_HEADING = re.compile(r"^(?:INT|EXT|EST|INT\./EXT|I/E)[. ]", re.MULTILINE)


def _scenes_from_fountain(text: str, limit: int = 12) -> list[dict[str, Any]]:
    """A naive heading split, enough to feed the engine real screenplay scenes."""
    starts = [m.start() for m in _HEADING.finditer(text)][: limit + 1]
    scenes = []
    for number, (start, end) in enumerate(zip(starts, starts[1:] + [len(text)], strict=False), start=1):
        heading, _, body = text[start:end].partition("\n")
        scenes.append({"scene_number": number, "heading": heading.strip(), "text": body})
    return scenes[:limit]


def test_normalize_turns_prose_into_fountain_scenes_and_dialogue() -> None:
    fountain = offline.answer("normalize", {"text": PROSE, "title": "The Visit"})["fountain"]
    assert fountain.startswith("Title: The Visit\n\n")
    assert "INT. KITCHEN - NIGHT" in fountain
    assert "EXT. PORCH - DAY" in fountain
    assert "SANDRA\nYou kept it." in fountain
    assert "WILL\nYou always tell that one." in fountain
    assert "JENNY\nI remember the story." in fountain
    assert "CUT TO:" in fountain


def test_normalize_leaves_fountain_input_alone_apart_from_whitespace() -> None:
    text = "INT. HOUSE - DAY  \r\n\r\n\r\n\r\nEdward waits.\r\n"
    assert offline.answer("normalize", {"text": text})["fountain"] == "INT. HOUSE - DAY\n\nEdward waits.\n"


def test_enrich_scenes_summary_mood_and_visual_description() -> None:
    scene = {
        "scene_number": 7,
        "heading": "EXT. RIVER - DUSK",
        "text": "Edward wades into the dark river. A shadow circles him.\n\nEDWARD\nThere she is.\n",
    }
    (result,) = offline.answer("enrich_scenes", {"scenes": [scene]})["scenes"]
    assert result["scene_number"] == 7
    assert result["summary"] == "Edward wades into the dark river. A shadow circles him."
    assert result["mood"] == "mysterious"
    assert result["visual_description"].startswith("Exterior, river, at dusk")
    assert "There she is" not in result["visual_description"]  # dialogue is not visual


@pytest.mark.parametrize("cue", ["DEALER #1", "TREVOR/JENNY", "SHERRI’S MOTHER", "INTERVIEWEE #3 (extremely nervous)"])
def test_action_lines_leave_out_speeches_whatever_characters_the_cue_holds(cue: str) -> None:
    """A cue is what the Fountain parser reads as one; these real cues used to leak their dialogue into the
    scene's action (and so into its summary and B-roll description)."""
    body = f"Trevor waits by the door.\n\n{cue}\nGood. We'll know tomorrow.\n\n!LOUD MUSIC\nfills the room.\n"
    assert offline.action_lines(body) == ["Trevor waits by the door.", "LOUD MUSIC fills the room."]


def test_project_insights_from_lexicon_and_characters() -> None:
    result = offline.answer(
        "project_insights",
        {
            "title": "Big Fish",
            "characters": ["EDWARD", "WILL", "SANDRA"],
            "excerpt": "a witch, a giant, a fish",
        },
    )
    assert result == {
        "genre": "fantasy",
        "tone": "whimsical",
        "logline": "In Big Fish, Edward, with Will and Sandra, is pulled into a whimsical fantasy story.",
    }


@pytest.mark.parametrize("name", ["Big-Fish", "The-Last-Birthday-Card"])
def test_engine_is_deterministic_and_schema_valid_on_the_corpus(corpus_dir: Path, name: str) -> None:
    text = (corpus_dir / f"{name}.fountain").read_text(encoding="utf-8")
    payloads: dict[str, dict[str, Any]] = {
        "normalize": {"text": text[:20000], "title": name},
        "enrich_scenes": {"scenes": _scenes_from_fountain(text)},
        "project_insights": {
            "title": name.replace("-", " "),
            "characters": ["EDWARD"],
            "excerpt": text[:5000],
        },
    }
    for task, payload in payloads.items():
        first, second = offline.answer(task, payload), offline.answer(task, json.loads(json.dumps(payload)))
        assert first == second
        parsed = prompts.parse_response(task, json.dumps(first), payload=payload)
        assert isinstance(parsed, prompts.RESPONSE_MODELS[task])


def test_unknown_task_is_an_error_and_unknown_prompt_gets_a_generic_answer() -> None:
    with pytest.raises(ValueError):
        offline.answer("translate", {})
    task, result = offline.answer_prompt("You are helpful.", "Say hello.")
    assert task is None and result["answer"]


def test_offline_adapter_answers_from_request_or_from_prompt_markers() -> None:
    adapter = offline.OfflineAdapter()
    request = prompts.build_request("project_insights", {"title": "T", "characters": ["ANA"]})
    direct = adapter.complete("", request, timeout=1)
    from_markers = adapter.complete(
        "", CompletionRequest(system=request.system, prompt=request.prompt), timeout=1
    )
    assert direct.provider == "offline" and direct.text == from_markers.text
    assert prompts.parse_response("project_insights", direct.text).logline.startswith("In T, Ana")  # type: ignore[attr-defined]
    assert direct.input_tokens > 0 and direct.output_tokens > 0
