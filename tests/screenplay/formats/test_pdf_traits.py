"""The PDF reader against the traits of screenwriting software's PDFs, on PDFs these tests draw."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cineforge_assets.screenplay.fidelity import digest_script
from cineforge_assets.screenplay.formats.pdf import Row, drop_page_furniture, take_scene_numbers
from cineforge_assets.screenplay.formats.pdf_text import Segment, repair_mac_roman
from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.screenplay.fountain import parse_fountain
from cineforge_assets.screenplay.scenes import SceneRecord, split_scenes

from .pdf_fixtures import ScreenplayPdf

FILLER = (
    "Rain hammers the corrugated roof. Water runs in ropes off the",
    "gutter and pools around the feet of a rusted tractor.",
)


def _read(tmp_path: Path, script: ScreenplayPdf, name: str = "script.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(script.bytes())
    return read_source(path).text


def _scenes(text: str) -> list[SceneRecord]:
    return split_scenes(parse_fountain(text), text)


def _speakers(text: str) -> list[str]:
    return [speech.character for speech in digest_script(parse_fountain(text)).speeches]


def _production_draft(**options: object) -> ScreenplayPdf:
    """Numbered scenes (``12``, ``12A``, ``A12``, ``2.3``), revision marks, a page header."""
    script = ScreenplayPdf(header="THE ORCHARD - Pink Rev. (01/02/26)                       {page}.", **options)  # type: ignore[arg-type]
    for number, place in (("12", "BARN"), ("12A", "HAYLOFT"), ("A12", "YARD"), ("2.3", "KITCHEN")):
        script.heading(f"INT. {place} - NIGHT", number=number, revised=number == "12A")
        script.action(*FILLER)
        script.speech("ANNA", "Who left the gate open?", revised=number == "A12")
        script.speech("BEN", "(not looking up)", "The wind did.")
        script.action(*FILLER)
    return script


def test_scene_numbers_in_both_margins_become_scene_labels(tmp_path: Path) -> None:
    text = _read(tmp_path, _production_draft())
    scenes = _scenes(text)
    assert [(s.heading, s.scene_label) for s in scenes] == [
        ("INT. BARN - NIGHT", "12"),
        ("INT. HAYLOFT - NIGHT", "12A"),
        ("INT. YARD - NIGHT", "A12"),
        ("INT. KITCHEN - NIGHT", "2.3"),
    ]
    assert [s.location for s in scenes] == ["BARN", "HAYLOFT", "YARD", "KITCHEN"]
    assert "INT. HAYLOFT - NIGHT #12A#" in text


@pytest.mark.parametrize(("sides", "printed"), [("left", "{}."), ("right", "{}"), ("both", "{}.")])
def test_scene_numbers_on_one_side_or_with_a_period(tmp_path: Path, sides: str, printed: str) -> None:
    text = _read(tmp_path, _production_draft(number_sides=sides, number_format=printed))
    assert [s.scene_label for s in _scenes(text)] == ["12", "12A", "A12", "2.3"]
    assert [s.heading for s in _scenes(text)][1] == "INT. HAYLOFT - NIGHT"


def test_revision_marks_and_page_headers_leave_no_trace(tmp_path: Path) -> None:
    text = _read(tmp_path, _production_draft())
    assert "*" not in text
    assert "Pink Rev." not in text and "ORCHARD" not in text
    assert set(_speakers(text)) == {"ANNA", "BEN"}
    assert all(s.characters == ["ANNA", "BEN"] for s in _scenes(text))


def test_a_header_whose_wording_changes_each_page_is_still_a_header(tmp_path: Path) -> None:
    """Revision pages carry their own colour and date: no two headers alike, each beside a page number."""
    script = ScreenplayPdf(
        header="THE ORCHARD - {colour} Rev.                              {page}.",
        colours=("Blue", "Pink", "Yellow", "Green", "Goldenrod", "Salmon", "Cherry", "Tan"),
        page_offset=-1,
    )
    for number in range(1, 13):
        script.heading(f"EXT. ROW {number} - DAY", number=str(number))
        script.action(*FILLER)
        script.speech("ANNA", "Another row, another tree.")
    text = _read(tmp_path, script)
    assert " Rev." not in text
    assert [s.scene_label for s in _scenes(text)] == [str(n) for n in range(1, 13)]


@pytest.mark.parametrize("angle", [40.0, 0.0])
def test_a_watermark_leaves_no_letters_behind(tmp_path: Path, angle: float) -> None:
    text = _read(tmp_path, _production_draft(watermark="CONFIDENTIAL", watermark_angle=angle))
    assert "CONFIDENTIAL" not in text and "C O N" not in text
    assert [s.heading for s in _scenes(text)][0] == "INT. BARN - NIGHT"
    assert not re.search(r"^[\s>!]*[A-Z][\s<]*$", text, re.M)  # no stray letter of CONFIDENTIAL
    assert text.startswith("INT. BARN - NIGHT #12#\n\nRain hammers")
    assert _speakers(text) == ["ANNA", "BEN"] * 4


def test_cues_drawn_after_their_dialogue_still_lead_their_speech(tmp_path: Path) -> None:
    """Final Draft 7 (Mac) writes each cue into the content stream after the dialogue lines."""
    text = _read(tmp_path, _production_draft(cue_after_dialogue=True))
    assert "ANNA\nWho left the gate open?" in text
    assert "BEN\n(not looking up)\nThe wind did." in text
    assert _speakers(text) == ["ANNA", "BEN"] * 4


def test_more_and_continued_page_breaks_are_undone(tmp_path: Path) -> None:
    script = ScreenplayPdf(header="THE ORCHARD                                               {page}.")
    script.heading("EXT. ORCHARD - DAY", number="7")
    script.action(*FILLER)
    script.speech_across_pages(
        "ANNA",
        ["I counted every tree in this orchard", "the summer Dad left, and there were"],
        ["forty-one. Now there are forty."],
    )
    script.speech("BEN", "Then one of them walked off.")
    text = _read(tmp_path, script)
    assert "(MORE)" not in text and "CONTINUED" not in text
    assert (
        "ANNA\nI counted every tree in this orchard the summer Dad left, and there were forty-one. "
        "Now there are forty." in text
    )
    assert [(s.heading, s.scene_label, s.characters) for s in _scenes(text)] == [
        ("EXT. ORCHARD - DAY", "7", ["ANNA", "BEN"])
    ]


SHOTS = (
    "ANGLE ON THE GATE",
    "INSERT - ALTIMETER",
    "STRIKER'S POV",
    "CLOSE ON HER HANDS",
    "BACK TO ELAINE",
    "SERIES OF SHOTS",
    "MONTAGE - THE SUMMER",
    "INTERCUT - ANNA AND BEN",
)


def test_shots_at_the_action_margin_are_never_characters(tmp_path: Path) -> None:
    """A caps line at the action margin followed directly by action (Fade In) is a shot, not a cue."""
    script = ScreenplayPdf()
    script.heading("EXT. AIRFIELD - DAY")
    for shot in SHOTS:
        script.action(shot, "The needle shivers past nine thousand feet.")
        script.speech("ELAINE", "Hold it steady.")
    text = _read(tmp_path, script)
    assert set(_speakers(text)) == {"ELAINE"}
    assert [s.heading for s in _scenes(text)] == ["EXT. AIRFIELD - DAY"]
    for shot in SHOTS:
        assert re.search(rf"^!?{re.escape(shot)}$", text, re.M), shot


def test_bold_shots_in_a_script_with_bold_sluglines_stay_inside_their_scene(tmp_path: Path) -> None:
    """Bold sluglines make a bold caps line at the margin a (secondary) heading, but not a shot."""
    script = ScreenplayPdf()
    for place in ("AIRFIELD", "HANGAR", "RUNWAY"):
        script.heading(f"EXT. {place} - DAY", bold=True)
        for shot in SHOTS:
            script.action(shot, bold=True)
            script.action(*FILLER)
        script.speech("ELAINE", "Hold it steady.")
    script.action("THE CONTROL TOWER", bold=True)
    script.action(*FILLER)
    text = _read(tmp_path, script)
    assert [s.heading for s in _scenes(text)] == [
        "EXT. AIRFIELD - DAY",
        "EXT. HANGAR - DAY",
        "EXT. RUNWAY - DAY",
        "THE CONTROL TOWER",
    ]
    assert set(_speakers(text)) == {"ELAINE"}


@pytest.mark.parametrize("gap_chars", [2, 6])
def test_dual_dialogue_gives_two_speeches(tmp_path: Path, gap_chars: int) -> None:
    """Two columns side by side; with a two-character gutter the lines meet like words in one line."""
    script = ScreenplayPdf()
    script.heading("INT. DINER - NIGHT")
    script.action("Two people at a counter, one slice of pie between them.")
    script.dual(
        ("ANNA", ["I ordered the pie. I did,", "an hour ago."]),
        ("BEN", ["I ordered it first.", "(indignant)", "You saw me."]),
        gap_chars=gap_chars,
    )
    script.speech("WAITER", "There's one slice.")
    text = _read(tmp_path, script)
    expected = "ANNA\nI ordered the pie. I did, an hour ago.\n\nBEN ^\nI ordered it first.\n(indignant)\nYou saw me."
    assert expected in text
    assert _speakers(text) == ["ANNA", "BEN", "WAITER"]


def test_footer_on_every_page_is_dropped(tmp_path: Path) -> None:
    script = ScreenplayPdf(footer="Property of Orchard Films - CONFIDENTIAL")
    for number in range(1, 9):
        script.heading(f"EXT. ROW {number} - DAY", number=str(number))
        script.action(*FILLER)
        script.speech("ANNA", "Another row, another tree.")
        script.action(*FILLER)
    text = _read(tmp_path, script)
    assert "CONFIDENTIAL" not in text
    assert [s.scene_label for s in _scenes(text)] == [str(n) for n in range(1, 9)]


def _segments(*texts: str) -> list[Segment]:
    return [Segment(page=0, x=108.0, y=700.0 - 12 * n, text=t, size=12.0) for n, t in enumerate(texts)]


def test_mac_roman_quotes_read_as_latin1_are_repaired() -> None:
    repaired = repair_mac_roman(_segments("DEXTERÕS APARTMENT", "I donÕt know.", "ItÕs ÒfineÓ, isnÕt it?"))
    assert [s.text for s in repaired] == ["DEXTER’S APARTMENT", "I don’t know.", "It’s “fine”, isn’t it?"]


def test_a_real_o_tilde_is_left_alone() -> None:
    segments = _segments("JOÃO and CONCEIÇÃO wave from the boat.", "ITÕS is a name here, once.")
    assert repair_mac_roman(segments) == segments


def test_a_compound_broken_after_its_hyphen_is_whole_again(tmp_path: Path) -> None:
    script = ScreenplayPdf()
    script.heading("EXT. MEADOW - DAY")
    script.action(
        "Out of the grass bursts a bird the size of a dog, a sparrow-",
        "sized nightmare with a beak like a can opener.",
    )
    text = _read(tmp_path, script)
    assert "a sparrow-sized nightmare" in text and "\x02" not in text


def _row(*placed: tuple[float, str]) -> list[Segment]:
    return [Segment(page=0, x=x, y=500.0, text=text, size=12.0) for x, text in placed]


def test_scene_numbers_with_revision_marks_and_a_glued_right_number() -> None:
    line, number = take_scene_numbers(_row((54, "*12A"), (108, "INT. HOUSE - NIGHT"), (525, "12A*")), 108.0)
    assert ([s.text for s in line], number) == (["INT. HOUSE - NIGHT"], "12A")
    long_heading = "INT. THE VERY LONG CORRIDOR OF THE MINISTRY OF PAPERWORK - NIGHT 2.3"
    line, number = take_scene_numbers(_row((54, "2.3"), (108, long_heading)), 108.0)
    assert ([s.text for s in line], number) == ([long_heading[:-4]], "2.3")


def test_numbers_inside_the_text_column_are_not_scene_numbers() -> None:
    """Dual dialogue's right column saying a number is dialogue, not a margin number."""
    row = _row((108, "How many?"), (338, "12"))
    assert take_scene_numbers(row, 108.0) == (row, "")


def test_dagger_revision_marks_are_furniture() -> None:
    rows = [Row(page=0, y=500.0 - 12 * n, segments=_row((108, t), (560, "†"))) for n, t in enumerate(FILLER)]
    kept = drop_page_furniture(rows, page_count=1)
    assert [[s.text for s in r.segments] for r in kept] == [[t] for t in FILLER]
    (glued,) = drop_page_furniture([Row(0, 400.0, _row((252, "SHERLOCK †")))], page_count=1)
    assert glued.segments[0].text == "SHERLOCK"


def test_page_number_and_continued_variants_are_furniture() -> None:
    furniture = ["- 7 -", "Page 7 of 98", "7/98", "(7)", "CONTINUED (2):", "(CONTINUED)"]
    rows = [Row(page=0, y=740.0, segments=_row((300, furniture[0])))]
    rows += [Row(page=0, y=700.0 - 12 * n, segments=_row((108, t))) for n, t in enumerate(FILLER)]
    rows += [Row(page=0, y=60.0 - 12 * n, segments=_row((300, t))) for n, t in enumerate(furniture[1:3])]
    kept = drop_page_furniture(rows, page_count=1)
    assert [r.segments[0].text for r in kept] == list(FILLER)
    for text in furniture[3:]:
        top = [Row(0, 700.0, _row((108, text)))] + rows[1:3]
        assert [r.segments[0].text for r in drop_page_furniture(top, page_count=1)] == list(FILLER), text


def test_squeezed_text_keeps_its_word_spaces(tmp_path: Path) -> None:
    """An OCR text layer (or a fitted line) sets glyphs narrower than their font size implies."""
    script = ScreenplayPdf()
    script.pdf.set_stretching(30)
    script.heading("INT. KITCHEN - NIGHT")
    script.action("A kettle screams on the stove. Nobody moves to take it off.")
    text = _read(tmp_path, script)
    assert text.startswith("INT. KITCHEN - NIGHT\n\nA kettle screams on the stove. Nobody moves to take it off.")


@pytest.mark.parametrize(
    ("heading", "bold"),
    [("INT. STUDY ROOM - NIGHT (TIMELINE #5)", False), ("A SCENIC OVERLOOK", True)],
)
def test_a_heading_at_the_top_of_a_page_does_not_continue_the_action_above(
    tmp_path: Path, heading: str, bold: bool
) -> None:
    """Action that runs to the page bottom without a full stop continues overleaf, but not into a slugline
    (a plain INT. heading, or a bold secondary heading in a script that bolds its sluglines)."""
    script = ScreenplayPdf()
    script.heading("INT. LIBRARY - NIGHT", bold=bold)
    script.action(*FILLER)
    script.y = 792.0 - 72.0
    script.action("TITLES: ONE WEEK LATER... TIMELINE NUMBER 5")
    script.heading(heading, bold=bold)
    script.action(*FILLER)
    text = _read(tmp_path, script)
    assert [s.heading for s in _scenes(text)] == ["INT. LIBRARY - NIGHT", heading]


def test_a_number_ending_a_speech_at_the_foot_of_a_page_is_not_a_page_number(tmp_path: Path) -> None:
    """``2004.`` as the last line of a page's last speech looks like a page number, but the page
    numbers of this script say it is page 3: it stays in the speech."""
    script = ScreenplayPdf()
    for page in range(3):
        script.heading(f"INT. OFFICE {page + 1} - DAY")
        while script.y + 3 * 12 < 720 - 4 * 12:
            script.action(*FILLER)
        script.y = 720 - 3 * 12.0  # the speech's last line on the page's last line
        script.speech("WORKER", "I haven't enjoyed myself since", "2004." if page == 1 else "Tuesday.")
    text = _read(tmp_path, script)
    assert "WORKER\nI haven't enjoyed myself since 2004.\n" in text
    assert not re.search(r"^\d+\.$", text, re.M)  # the real page numbers are still dropped


def test_dual_dialogue_under_a_long_left_cue_keeps_its_columns(tmp_path: Path) -> None:
    """``HARVEY (INTO INTERCOM)`` ends past the start of the right column's lines: the columns are
    where the lines start, not halfway between the cues."""
    script = ScreenplayPdf()
    script.heading("INT. HARVEY'S OFFICE - DAY")
    script.action("Harvey smiles and shakes his head.")
    script.dual(
        ("HARVEY (INTO INTERCOM)", ["Donna, I need you to show", "Mike how to fill out a", "subpoena."]),
        ("DONNA (ON INTERCOM)", ["No problem.  After that", "you want me to show him", "how to wipe his ass?"]),
    )
    text = _read(tmp_path, script)
    assert "HARVEY (INTO INTERCOM)\nDonna, I need you to show Mike how to fill out a subpoena.\n" in text
    assert "DONNA (ON INTERCOM) ^\nNo problem. After that you want me to show him how to wipe his ass?" in text
