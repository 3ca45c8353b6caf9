"""The emitter forces a line's type exactly when the Fountain parser would read it as something else.

Both ask the one grammar (``resources.providers.screenplay_grammar``), so what a layout reader meant is
what the canonical script reads back as.
"""

from __future__ import annotations

import pytest

from cineforge_assets.screenplay.elements import ElementType
from cineforge_assets.screenplay.formats.emit import FountainBuilder
from cineforge_assets.screenplay.fountain import parse_fountain

T = ElementType


def read_back(builder: FountainBuilder) -> list[tuple[ElementType, str]]:
    return [(e.type, e.text) for e in parse_fountain(builder.text()).elements]


@pytest.mark.parametrize("text", ["CUT TO:", "TO:", "FADE OUT.", "Smash cut to:"])
def test_a_transition_reads_back_as_that_transition(text: str) -> None:
    builder = FountainBuilder()
    builder.transition(text)
    assert read_back(builder) == [(T.TRANSITION, text)]


@pytest.mark.parametrize(
    "action",
    [
        "BANG (offscreen) a door slams.\nEveryone jumps.",
        "THE DOOR SLAMS.\nEveryone jumps.",
        "CUT TO:\nthe chase.",
        "She waits.",
    ],
)
def test_an_action_paragraph_reads_back_as_action(action: str) -> None:
    builder = FountainBuilder()
    builder.action(action)
    assert read_back(builder) == [(T.ACTION, action)]


@pytest.mark.parametrize("cue", ["EDWARD", "RENé", "McCLANE", "3RD MAN"])
def test_a_cue_of_any_case_reads_back_as_a_cue_with_its_dialogue(cue: str) -> None:
    builder = FountainBuilder()
    builder.speech(cue, [("dialogue", "Hello.")])
    assert read_back(builder) == [(T.CHARACTER, cue), (T.DIALOGUE, "Hello.")]
