"""The one screenplay grammar (headings, transitions, cues, extensions) that detection, the Fountain parser,
the emitter, the layout readers and the offline engine share."""

from __future__ import annotations

import re

import pytest

from resources.providers.screenplay_grammar import (
    CONTINUED_EXTENSION_RE,
    CUE_EXTENSION_RE,
    CUE_NAME_END_RE,
    PRINTED_CUE_RE,
    SCENE_HEADING_PREFIX,
    SCENE_HEADING_RE,
    is_cue,
    is_transition,
)


@pytest.mark.parametrize(
    "line",
    ["INT. HOUSE - DAY", "EXT HOUSE", "est. city", "INT./EXT. CAR", "INT/EXT CAR", "I/E. CAR", "int.house"],
)
def test_spec_prefixes_followed_by_a_dot_or_a_space_are_headings(line: str) -> None:
    assert SCENE_HEADING_RE.match(line)


@pytest.mark.parametrize("line", ["INTERIOR HOUSE", "EXTRA", "INT", "INT-HOUSE", "  INT. HOUSE", "THE INT. HOUSE"])
def test_other_lines_are_not_headings(line: str) -> None:
    assert not SCENE_HEADING_RE.match(line)


def test_a_group_around_the_prefix_takes_int_ext_whole() -> None:
    match = re.match(rf"({SCENE_HEADING_PREFIX})[.\s]+(.*)", "INT./EXT. CAR - NIGHT", re.IGNORECASE)
    assert match is not None
    assert match.group(1) == "INT./EXT."
    assert match.group(2) == "CAR - NIGHT"


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
