"""The one scene-heading grammar that detection, the Fountain parser and the offline engine share."""

from __future__ import annotations

import re

import pytest

from resources.providers.screenplay_grammar import SCENE_HEADING_PREFIX, SCENE_HEADING_RE


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
