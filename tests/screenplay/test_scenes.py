"""Scene splitting: headings, per-scene facts, line ranges, and agreement with screenplain."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from cineforge_assets.screenplay.elements import Element, ElementType, Script
from cineforge_assets.screenplay.fountain import parse_fountain, write_fountain
from cineforge_assets.screenplay.project import build_project_config
from cineforge_assets.screenplay.scenes import (
    LINES_PER_PAGE,
    SceneRecord,
    estimate_printed_lines,
    parse_heading,
    scene_records,
    scenes_dataframe,
    speakers_of_cue,
    split_scenes,
    split_scenes_with_preamble,
)
from tests.screenplay.reference import CORPUS_SCRIPTS, read_corpus_fountain, screenplain_scenes

T = ElementType

SMALL_SCRIPT = """Title: Small

FADE IN:

A RIVER.

INT.  WILL'S BEDROOM - NIGHT (1973)

Will listens.

EDWARD (V.O.)
There are some fish.

WILL
(sleepy)
Dad?

EDWARD (CONT'D)
Hush.

EXT. CAMPFIRE - NIGHT #2A#

SANDRA
Hi.

.BACK IN THE APARTMENT

Nobody speaks here.
"""


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("INT.  WILL'S BEDROOM - NIGHT (1973)", ("INT", "WILL'S BEDROOM", "NIGHT")),
        ("EXT. CAMPFIRE - NIGHT", ("EXT", "CAMPFIRE", "NIGHT")),
        ("int. kitchen - day", ("INT", "KITCHEN", "DAY")),
        ("INT./EXT. CAR - MOVING - DAY", ("INT/EXT", "CAR - MOVING", "DAY")),
        ("INT/EXT CAR - NIGHT", ("INT/EXT", "CAR", "NIGHT")),
        ("I/E TRUCK - DUSK", ("INT/EXT", "TRUCK", "DUSK")),
        ("EST. NEW YORK CITY - DAWN", ("EST", "NEW YORK CITY", "DAWN")),
        ("INT. SAN FRANCISCO APARTMENT, DAY", ("INT", "SAN FRANCISCO APARTMENT", "DAY")),
        (
            "INT. HALLWAY, SCOTT'S APARTMENT BUILDING, A MOMENT LATER",
            ("INT", "HALLWAY, SCOTT'S APARTMENT BUILDING", "LATER"),
        ),
        (
            "INT. SOUTHERN EXPOSURE GALLERY, SOUTH OF MARKET",
            ("INT", "SOUTHERN EXPOSURE GALLERY, SOUTH OF MARKET", ""),
        ),
        ("EXT. RIVER - DAY [FLASHBACK]", ("EXT", "RIVER", "DAY")),
        ("EXT. ROAD - [THE NEXT] MORNING", ("EXT", "ROAD", "MORNING")),
        ("EXT. TOWN - (PRESENT) DAY", ("EXT", "TOWN", "DAY")),
        ("INT. HOSPITAL - NIGHT [CONTINUOUS]", ("INT", "HOSPITAL", "NIGHT")),
        ("EXT. FIELD - PRE-DAWN", ("EXT", "FIELD", "DAWN")),
        ("EXT. LAKE - MAGIC HOUR", ("EXT", "LAKE", "MAGIC HOUR")),
        ("INT. LANDCRUISER, DRIVING -- A BIT LATER", ("INT", "LANDCRUISER, DRIVING", "LATER")),
        ("INT. HOUSE - KITCHEN", ("INT", "HOUSE - KITCHEN", "")),
        ("INT. HOUSE", ("INT", "HOUSE", "")),
        (".BACK IN THE APARTMENT", ("", "BACK IN THE APARTMENT", "")),
        ("THE PAIR, DRINKING BEER.", ("", "THE PAIR, DRINKING BEER", "")),
        ("INT. HOUSE - DAY #12#", ("INT", "HOUSE", "DAY")),
        # Real-world headings (Suits, Dexter, Bright, Community, Big Fish): a clock time is the part
        # of the day it falls in, and a time or remark between place and time is no place.
        ("EXT. MANHATTAN SKYLINE - 9:00 PM", ("EXT", "MANHATTAN SKYLINE", "NIGHT")),
        ("INT. KATHERINE'S OFFICE/HALLWAY - 9:30 AM", ("INT", "KATHERINE'S OFFICE/HALLWAY", "MORNING")),
        ("INT. LOBBY - 10 P.M.", ("INT", "LOBBY", "NIGHT")),
        ("EXT. HARVARD LAW LIBRARY - THREE FIFTY FIVE PM", ("EXT", "HARVARD LAW LIBRARY", "AFTERNOON")),
        (
            "EXT. BOSTON WHALER - CANALS - MIAMI, FL - 4:30AM",
            ("EXT", "BOSTON WHALER - CANALS - MIAMI, FL", "NIGHT"),
        ),
        ("INT. OLD MAN'S HOUSE - 5 MINUTES LATER - NIGHT", ("INT", "OLD MAN'S HOUSE", "NIGHT")),
        ("INT. LIVING ROOM - MINUTES EARLIER", ("INT", "LIVING ROOM", "EARLIER")),
        ("INT. EDWARD'S CAR - NIGHT - [THE STORM]", ("INT", "EDWARD'S CAR", "NIGHT")),
        ("INT. ROOM 12 - 12 PM", ("INT", "ROOM 12", "AFTERNOON")),
        ("INT. SPAM FACTORY - ONE SPAM", ("INT", "SPAM FACTORY - ONE SPAM", "")),
        ("INT. DAY ROOM - NIGHT", ("INT", "DAY ROOM", "NIGHT")),
    ],
)
def test_parse_heading(heading: str, expected: tuple[str, str, str]) -> None:
    assert parse_heading(heading) == expected


def test_split_scenes_facts_per_scene() -> None:
    script = parse_fountain(SMALL_SCRIPT)
    scenes = split_scenes(script, SMALL_SCRIPT)
    assert [s.scene_number for s in scenes] == [1, 2, 3]
    first, second, third = scenes
    assert (first.heading, first.int_ext, first.location, first.time_of_day) == (
        "INT.  WILL'S BEDROOM - NIGHT (1973)",
        "INT",
        "WILL'S BEDROOM",
        "NIGHT",
    )
    # Bare names, in order of first line, once each.
    assert first.characters == ["EDWARD", "WILL"]
    assert (second.scene_label, second.heading, second.characters) == (
        "2A",
        "EXT. CAMPFIRE - NIGHT",
        ["SANDRA"],
    )
    assert (third.int_ext, third.location, third.characters) == ("", "BACK IN THE APARTMENT", [])


def test_scene_lines_and_text_point_into_the_source() -> None:
    lines = SMALL_SCRIPT.split("\n")
    scenes = split_scenes(parse_fountain(SMALL_SCRIPT), SMALL_SCRIPT)
    for scene in scenes:
        assert scene.heading in lines[scene.line_start - 1]
        assert scene.text == "\n".join(lines[scene.line_start - 1 : scene.line_end])
        assert lines[scene.line_end - 1].strip()
    assert [(s.line_start, s.line_end) for s in scenes] == [(7, 19), (21, 24), (26, 28)]
    assert scenes[0].text.endswith("EDWARD (CONT'D)\nHush.")


def test_preamble_is_kept_and_is_not_a_scene() -> None:
    split = split_scenes_with_preamble(parse_fountain(SMALL_SCRIPT), SMALL_SCRIPT)
    assert split.preamble == "FADE IN:\n\nA RIVER."
    assert (split.preamble_line_start, split.preamble_line_end) == (3, 5)
    assert len(split.scenes) == 3


def test_script_without_headings_is_all_preamble() -> None:
    split = split_scenes_with_preamble(parse_fountain("Bob sits.\n\nBOB\nHi.\n"))
    assert split.scenes == []
    assert split.preamble == "Bob sits.\n\nBOB\nHi."


def test_without_source_text_lines_refer_to_the_canonical_fountain() -> None:
    script = Script(
        elements=[
            Element(type=T.SCENE_HEADING, text="INT. HOUSE - DAY"),
            Element(type=T.ACTION, text="Bob sits."),
            Element(type=T.CHARACTER, text="BOB", extension="(V.O.)"),
            Element(type=T.DIALOGUE, text="Hi."),
            Element(type=T.SCENE_HEADING, text="ROOFTOP"),
        ]
    )
    canonical_lines = write_fountain(script).split("\n")
    scenes = split_scenes(script)
    assert [(s.line_start, s.line_end) for s in scenes] == [(1, 6), (8, 8)]
    assert canonical_lines[scenes[1].line_start - 1] == ".ROOFTOP"
    assert scenes[0].characters == ["BOB"]


def test_length_estimates() -> None:
    script = parse_fountain(SMALL_SCRIPT)
    scenes = split_scenes(script, SMALL_SCRIPT)
    first = scenes[0]
    # heading, action, 3 speeches (cue + lines), each element but speech lines preceded by a blank.
    assert estimate_printed_lines(script.elements[2:11]) == 2 + 2 + 3 + 4 + 3
    assert first.page_estimate == pytest.approx(14 / LINES_PER_PAGE, abs=1e-3)
    assert first.est_screen_seconds == pytest.approx(first.page_estimate * 60, abs=0.1)
    assert first.page_eighths == 2
    # Words of the printed scene: heading 5 (the dash is not a word), action 2, cues 3, speech 7.
    assert first.word_count == 17


def test_long_lines_wrap_at_column_width() -> None:
    action = Element(type=T.ACTION, text=" ".join(["word"] * 30))  # 149 characters -> 3 lines of 60
    speech = Element(type=T.DIALOGUE, text=" ".join(["word"] * 30))  # 35 columns -> 5 lines
    assert estimate_printed_lines([action]) == 1 + 3
    assert estimate_printed_lines([speech]) == 5


def test_scenes_dataframe() -> None:
    scenes = split_scenes(parse_fountain(SMALL_SCRIPT), SMALL_SCRIPT)
    frame = scenes_dataframe(scenes)
    assert list(frame.columns) == list(SceneRecord.model_fields)
    assert len(frame) == 3
    assert frame.loc[0, "characters"] == ["EDWARD", "WILL"]
    assert frame["scene_number"].tolist() == [1, 2, 3]
    empty = scenes_dataframe([])
    assert isinstance(empty, pd.DataFrame)
    assert list(empty.columns) == list(SceneRecord.model_fields) and empty.empty


def test_scene_records_read_back_a_stored_scenes_table_with_enrichment_columns() -> None:
    scenes = split_scenes(parse_fountain(SMALL_SCRIPT), SMALL_SCRIPT)
    frame = scenes_dataframe(scenes)
    frame["summary"] = ["a", "b", "c"]  # a model's column, as the scenes asset adds it
    stored = io.BytesIO()
    frame.to_parquet(stored, index=False)  # as the IO manager writes it: lists come back as NumPy arrays
    assert scene_records(pd.read_parquet(io.BytesIO(stored.getvalue()))) == scenes
    assert scene_records(scenes_dataframe([])) == []


# --- corpus -----------------------------------------------------------------------------------


def _f1(reference: list[set[str]], ours: list[set[str]]) -> float:
    true_positive = sum(len(a & b) for a, b in zip(reference, ours, strict=True))
    false_positive = sum(len(b - a) for a, b in zip(reference, ours, strict=True))
    false_negative = sum(len(a - b) for a, b in zip(reference, ours, strict=True))
    if not true_positive:
        return 1.0 if not (false_positive or false_negative) else 0.0
    precision = true_positive / (true_positive + false_positive)
    recall = true_positive / (true_positive + false_negative)
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize(("name", "expected"), [("Big-Fish", 190), ("The-Last-Birthday-Card", 48)])
def test_corpus_scenes_agree_with_screenplain(corpus_dir: Path, name: str, expected: int) -> None:
    text = read_corpus_fountain(corpus_dir, name)
    scenes = split_scenes(parse_fountain(text), text)
    reference = screenplain_scenes(text)
    assert len(scenes) == len(reference) == expected
    f1 = _f1([characters for _, characters in reference], [set(s.characters) for s in scenes])
    assert f1 >= 0.99


@pytest.mark.parametrize("name", CORPUS_SCRIPTS)
def test_corpus_scenes_on_canonical_text_match_source(corpus_dir: Path, name: str) -> None:
    text = read_corpus_fountain(corpus_dir, name)
    script = parse_fountain(text)
    from_source = split_scenes(script, text)
    canonical = write_fountain(script)
    from_canonical = split_scenes(parse_fountain(canonical), canonical)
    assert split_scenes(script) == from_canonical
    keep = ("heading", "characters", "word_count", "page_estimate", "int_ext", "location", "time_of_day")
    assert [s.model_dump(include=set(keep)) for s in from_source] == [
        s.model_dump(include=set(keep)) for s in from_canonical
    ]


def test_corpus_big_fish_details(corpus_dir: Path) -> None:
    text = read_corpus_fountain(corpus_dir, "Big-Fish")
    split = split_scenes_with_preamble(parse_fountain(text), text)
    assert "**FADE IN:**" in split.preamble and "A RIVER." in split.preamble
    first = split.scenes[0]
    assert (first.int_ext, first.location, first.time_of_day) == ("INT", "WILL'S BEDROOM", "NIGHT")
    assert first.characters == ["EDWARD"]
    assert first.line_start == 31
    # Every heading names a time except a handful of montage-style ones.
    assert sum(1 for s in split.scenes if not s.time_of_day) <= 10


@pytest.mark.parametrize(("name", "pdf_pages"), [("Big-Fish", 122), ("The-Last-Birthday-Card", 20)])
def test_corpus_page_estimate_is_close_to_the_printed_script(
    corpus_dir: Path, name: str, pdf_pages: int
) -> None:
    """The laid-out estimate lands within 10% of the real PDF (which also has a title page)."""
    text = read_corpus_fountain(corpus_dir, name)
    script = parse_fountain(text)
    estimate = estimate_printed_lines(script.elements) / LINES_PER_PAGE
    assert abs(estimate - (pdf_pages - 1)) <= 0.10 * pdf_pages


# Issue 17 item 4: the scenes table holds plain text whatever markup the source carried.
MARKED_UP_SCRIPT = """INT. BAKER STREET - DAY *

SHERLOCK *
Boring.

SHERLOCK * (CONT'D)
Still boring.

.**ABOUT SAVE THE CAT!**

Words.

EXT. _ROOF_ - NIGHT †

@McCLANE (O.S.)
Come out.

HANK (ON PHONE)
Hello?

HANK (cont'd)
Hello.

MIKE CONT'D
Again.
"""


def test_scenes_table_fields_are_plain_text() -> None:
    scenes = split_scenes(parse_fountain(MARKED_UP_SCRIPT), MARKED_UP_SCRIPT)
    assert [(s.heading, s.location, s.time_of_day) for s in scenes] == [
        ("INT. BAKER STREET - DAY", "BAKER STREET", "DAY"),
        ("ABOUT SAVE THE CAT!", "ABOUT SAVE THE CAT!", ""),
        ("EXT. ROOF - NIGHT", "ROOF", "NIGHT"),
    ]
    assert scenes[0].characters == ["SHERLOCK"]
    assert scenes[2].characters == ["McCLANE", "HANK", "MIKE"]
    # The scene's own text keeps the source as written.
    assert "SHERLOCK *" in scenes[0].text


MONTAGE_SCRIPT = """INT. GYM - DAY

Rocky trains.

.MONTAGE

ROCKY
One more.

.SERIES OF SHOTS

.INSERT - ALTIMETER

.STRIKER'S POV

EXT. STEPS - DAWN

He runs up.
"""


def test_a_montage_or_shot_line_does_not_replace_the_real_heading() -> None:
    scenes = split_scenes(parse_fountain(MONTAGE_SCRIPT), MONTAGE_SCRIPT)
    assert [(s.heading, s.location) for s in scenes] == [("INT. GYM - DAY", "GYM"), ("EXT. STEPS - DAWN", "STEPS")]
    assert scenes[0].characters == ["ROCKY"]
    assert "SERIES OF SHOTS" in scenes[0].text


def test_a_shot_line_before_any_real_heading_still_opens_a_scene() -> None:
    text = ".MONTAGE\n\nThings happen.\n\nINT. GYM - DAY\n\nLater.\n"
    assert [s.heading for s in split_scenes(parse_fountain(text), text)] == ["MONTAGE", "INT. GYM - DAY"]


@pytest.mark.parametrize(
    ("cue", "speakers"),
    [
        ("ABED / TROY", ["ABED", "TROY"]),
        ("PIERCE/TROY/ABED", ["PIERCE", "TROY", "ABED"]),
        ("SHIRLEY AND BRITTA", ["SHIRLEY", "BRITTA"]),
        ("JEFF & ANNIE", ["JEFF", "ANNIE"]),
        ("MR. AND MRS. SMITH", ["MR. AND MRS. SMITH"]),  # the parts speak nowhere alone
        ("EVERYONE BUT JEFF", ["EVERYONE BUT JEFF"]),
        ("ABED / PIZZA GUY", ["ABED / PIZZA GUY"]),  # one part never speaks alone
        ("TROY", ["TROY"]),
    ],
)
def test_speakers_of_cue(cue: str, speakers: list[str]) -> None:
    known = {"ABED", "TROY", "PIERCE", "SHIRLEY", "BRITTA", "JEFF", "ANNIE", "MR. AND MRS. SMITH"}
    assert speakers_of_cue(cue, known) == speakers


GROUP_CUES = """INT. LIVING ROOM - NIGHT

ABED
Cool.

TROY
Cool cool.

ABED / TROY
Cool cool cool.

EXT. PORCH - NIGHT

TROY AND ABED
(singing)
Troy and Abed in the morning!
"""


def test_a_group_cue_counts_for_each_speaker_and_is_no_cast_member_of_its_own() -> None:
    """Fail before: Community's ``ABED / TROY`` and ``PIERCE/TROY/BRITTA/ABED/ANNIE`` were cast members (18
    speaking characters for an episode of 8)."""
    script = parse_fountain(GROUP_CUES)
    scenes = split_scenes(script, GROUP_CUES)
    assert [scene.characters for scene in scenes] == [["ABED", "TROY"], ["TROY", "ABED"]]
    config = build_project_config(script, scenes, source_format="fountain")
    assert {c.name: c.dialogue_lines for c in config.characters} == {"ABED": 3, "TROY": 3}
    assert {c.name: c.scene_count for c in config.characters} == {"ABED": 2, "TROY": 2}
