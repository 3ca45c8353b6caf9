"""The fidelity digest names speakers and headings as the scenes table does."""

from __future__ import annotations

import pytest

from cineforge_assets.screenplay.fidelity import normalise_character, normalise_heading
from cineforge_assets.screenplay.fountain import character_name


@pytest.mark.parametrize(
    "cue", ["SHERLOCK CONT'D", "Sherlock (V.O.) (cont'd)", "@SHERLOCK ^", "*SHERLOCK*", "SHERLOCK (ON PHONE) *"]
)
def test_a_speaker_is_scored_under_the_bare_name_the_scenes_table_gives_them(cue: str) -> None:
    assert normalise_character(cue) == character_name(cue).upper() == "SHERLOCK"


@pytest.mark.parametrize(
    "heading", [".BACK IN THE APARTMENT #12A#", "**back in the apartment**", ". back in the apartment"]
)
def test_a_heading_is_scored_without_its_forcing_mark_scene_number_or_markup(heading: str) -> None:
    assert normalise_heading(heading) == "BACK IN THE APARTMENT"
