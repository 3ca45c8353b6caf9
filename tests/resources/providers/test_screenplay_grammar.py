"""The one screenplay grammar (headings, transitions, cues, extensions) that detection, the Fountain parser,
the emitter, the layout readers and the offline engine share."""

from __future__ import annotations

import pytest

from resources.providers.screenplay_grammar import (
    CONTINUED_EXTENSION_RE,
    CUE_EXTENSION_RE,
    CUE_NAME_END_RE,
    PRINTED_CUE_RE,
    SCENE_HEADING_RE,
    is_cue,
    is_scene_heading,
    is_transition,
    parse_scene_heading,
    split_scene_number,
)


@pytest.mark.parametrize(
    "line",
    ["INT. HOUSE - DAY", "EXT HOUSE", "est. city", "INT./EXT. CAR", "INT/EXT CAR", "I/E. CAR", "int.house"],
)
def test_spec_prefixes_followed_by_a_dot_or_a_space_are_headings(line: str) -> None:
    assert SCENE_HEADING_RE.match(line)


@pytest.mark.parametrize("line", ["EXT/INT. SORORITY HOUSE - THE DOORWAY", "I / E TRUCK - DUSK"])
def test_prefixes_outside_the_spec_need_forcing_as_in_every_fountain_reader(line: str) -> None:
    """Big Fish's Final Draft file types ``EXT/INT. SORORITY HOUSE`` as action and screenplain reads it so;
    reading it as a heading would split scenes no other Fountain application splits."""
    assert not is_scene_heading(line)
    assert is_scene_heading("." + line)


@pytest.mark.parametrize(
    "heading",
    ["INT./EXT. CAR - DAY", "INT/EXT CAR - DAY", "EXT./INT. CAR - DAY", "EXT/INT. CAR - DAY", "INT. / EXT. CAR - DAY",
     "I/E CAR - DAY"],
)
def test_every_two_sided_prefix_is_int_ext_and_none_of_it_is_the_location(heading: str) -> None:
    assert parse_scene_heading(heading)[:3] == ("INT/EXT", "CAR", "DAY")
    assert parse_scene_heading("." + heading)[:3] == ("INT/EXT", "CAR", "DAY")


def test_the_scene_number_is_split_off_the_heading() -> None:
    assert parse_scene_heading(".BACK IN THE APARTMENT #12A#") == ("", "BACK IN THE APARTMENT", "", "12A")
    assert split_scene_number("INT. HOUSE - DAY  #I-1-A#") == ("INT. HOUSE - DAY", "I-1-A")
    assert split_scene_number("INT. ROOM #12") == ("INT. ROOM #12", None)


@pytest.mark.parametrize("line", [".BACK IN THE APARTMENT", ". ...LATER", ".\u2020NAK"])
def test_a_single_period_before_text_forces_a_heading(line: str) -> None:
    assert is_scene_heading(line)


@pytest.mark.parametrize("line", ["...and then", "..", ".", ". ", "Back in the apartment."])
def test_an_ellipsis_or_a_bare_period_forces_nothing(line: str) -> None:
    assert not is_scene_heading(line)


@pytest.mark.parametrize("line", ["INTERIOR HOUSE", "EXTRA", "INT", "INT-HOUSE", "  INT. HOUSE", "THE INT. HOUSE"])
def test_other_lines_are_not_headings(line: str) -> None:
    assert not SCENE_HEADING_RE.match(line)


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
def test_a_heading_splits_into_int_ext_location_and_time_of_day(heading: str, expected: tuple[str, str, str]) -> None:
    assert parse_scene_heading(heading)[:3] == expected


@pytest.mark.parametrize(
    "line", ["CUT TO:", "SMASH CUT TO:", "  DISSOLVE TO:  ", "MATCH CUT TO:", "FONDU ENCHAÎNÉ TO:"]
)
def test_upper_case_lines_ending_in_to_colon_are_transitions(line: str) -> None:
    assert is_transition(line)


@pytest.mark.parametrize("line", ["TO:", "Cut to:", "CUT TO", "FADE OUT.", "CUT TO: BLACK", "CUT TO é TO:"])
def test_other_lines_are_not_transitions(line: str) -> None:
    assert not is_transition(line)


@pytest.mark.parametrize("line", ["EDWARD", "EDWARD (V.O.)", "EDWARD (cont'd)", "3RD MAN", "@McCLANE", "RENÉ"])
def test_cues_are_upper_case_before_their_first_extension_or_forced(line: str) -> None:
    assert is_cue(line)


@pytest.mark.parametrize("line", ["Edward", "RENé", "@", "!BANG BANG", "(V.O.)", "123"])
def test_mixed_case_bare_forced_action_and_letterless_lines_are_not_cues(line: str) -> None:
    assert not is_cue(line)


def test_the_printed_cue_shape_takes_short_names_with_extensions_and_refuses_long_capitals() -> None:
    assert PRINTED_CUE_RE.match("EDWARD (V.O.) (CONT'D) ^")
    assert PRINTED_CUE_RE.match("@McC") is None
    assert PRINTED_CUE_RE.match("THE DOOR SLAMS AND EVERYONE IN THE ROOM TURNS") is None


@pytest.mark.parametrize(
    "cue", ["EDWARD (CONT'D)", "EDWARD (cont’d)", "EDWARD (CONTD.)", "EDWARD (CONTINUED)", "EDWARD (CONT.)"]
)
def test_every_spelling_of_continued_is_one_extension(cue: str) -> None:
    assert CONTINUED_EXTENSION_RE.sub("", cue) == "EDWARD"


def test_a_cue_name_ends_at_its_first_extension_or_a_bare_contd() -> None:
    assert CUE_NAME_END_RE.sub("", "SHERLOCK (V.O.) (CONT'D)") == "SHERLOCK"
    assert CUE_NAME_END_RE.sub("", "SHERLOCK CONT’D") == "SHERLOCK"
    assert CUE_EXTENSION_RE.sub("", "SHERLOCK (V.O.) HOLMES") == "SHERLOCK HOLMES"
