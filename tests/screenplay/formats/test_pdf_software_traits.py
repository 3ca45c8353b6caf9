"""The PDF reader on PDFs drawn the way other screenwriting programs set a page (``bench/pdf_traits.py``).

Each test draws a short Fountain script with one trait into ``tmp_path`` and reads it back; the last
test runs every trait of the benchmark over the shipped sample script.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.pdf_traits import TRAITS, TRAITS_BY_NAME, Trait, render_trait, score_trait, source_for
from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.screenplay.fountain import parse_fountain
from cineforge_assets.screenplay.scenes import SceneRecord, split_scenes

from .conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"
ACTION = "Rain hammers the corrugated roof. Water runs in ropes off the gutter."


def _scenes(tmp_path: Path, fountain: str, **style: object) -> list[SceneRecord]:
    trait = Trait("test", "", style)
    path = tmp_path / "script.pdf"
    path.write_bytes(render_trait(trait, source_for(trait, fountain)))
    text = read_source(path).text
    return split_scenes(parse_fountain(text), text)


def test_a_wrapped_heading_keeps_a_second_line_without_letters(tmp_path: Path) -> None:
    fountain = f"INT. WILL'S BEDROOM - NIGHT (1973)\n\n{ACTION}\n\nEXT. YARD - DAY\n\n{ACTION}\n"
    scenes = _scenes(tmp_path, fountain, heading_width=30)
    assert [s.heading for s in scenes] == ["INT. WILL'S BEDROOM - NIGHT (1973)", "EXT. YARD - DAY"]


def test_mixed_case_sluglines_are_headings(tmp_path: Path) -> None:
    fountain = (
        f"Int. Kitchen - Night\n\n{ACTION}\n\nANNA\nWho left the gate open?\n\n"
        f"Ext. Orchard / Barn - Continuous\n\n{ACTION}\n\nBEN\nThe wind did.\n\n"
        f"Ext./Int. South La/Cop Car (Moving) - Day\n\n{ACTION}\n\nANNA\nPull over.\n"
    )
    scenes = _scenes(tmp_path, fountain, heading_bold=False)
    assert [(s.heading, s.characters) for s in scenes] == [
        ("Int. Kitchen - Night", ["ANNA"]),
        ("Ext. Orchard / Barn - Continuous", ["BEN"]),
        ("Ext./Int. South La/Cop Car (Moving) - Day", ["ANNA"]),
    ]


def test_a_right_scene_number_close_after_a_full_width_heading_is_a_scene_number(tmp_path: Path) -> None:
    """A slugline that fills the line ends two characters before the right margin's scene number."""
    long_heading = "INT. DEXTER'S CIVIC - IN FRONT OF RITA'S HOUSE - MIAMI, FL - SAME"
    fountain = "".join(f"{h}\n\n{ACTION}\n\n" for h in ("INT. BARN - NIGHT", long_heading, "EXT. YARD - DAY"))
    scenes = _scenes(tmp_path, fountain, scene_numbers="right")
    assert [(s.heading, s.scene_label) for s in scenes] == [
        ("INT. BARN - NIGHT", "1"),
        (long_heading, "2"),
        ("EXT. YARD - DAY", "3"),
    ]


def test_a_scene_number_typed_before_the_slugline_is_its_scene_number(tmp_path: Path) -> None:
    fountain = f"INT. BARN - NIGHT\n\n{ACTION}\n\n12 ANGRY MEN file into the yard.\n\nEXT. YARD - DAY\n\n{ACTION}\n"
    scenes = _scenes(tmp_path, fountain, scene_numbers="inline", heading_bold=False)
    assert [(s.heading, s.scene_label) for s in scenes] == [("INT. BARN - NIGHT", "1"), ("EXT. YARD - DAY", "2")]


@pytest.mark.parametrize("trait", TRAITS, ids=[t.name for t in TRAITS])
def test_every_software_trait_reads_the_sample_back(tmp_path: Path, trait: Trait) -> None:
    fountain = SAMPLE.read_text(encoding="utf-8")
    if not trait.marks_secondary_headings:  # printed like caps action: the known limit, not this test's subject
        fountain = fountain.replace(".THE LANTERN ROOM", "INT. THE LANTERN ROOM")
    score = score_trait(trait, SAMPLE.stem, fountain, tmp_path)
    assert score.report.headings.f1 == 1.0, score.report
    assert score.report.characters.f1 == 1.0, score.report


TITLE_PAGE_TRAITS = [t for t in TRAITS if t.title_page is not None]


@pytest.mark.parametrize("trait", TITLE_PAGE_TRAITS, ids=[t.name for t in TITLE_PAGE_TRAITS])
def test_every_title_page_trait_reads_the_page_back_as_drawn(tmp_path: Path, trait: Trait) -> None:
    """Title, writers, draft date and contact of the sample as each program's title page sets them
    (or, without a title page, as its running header prints them)."""
    score = score_trait(trait, SAMPLE.stem, SAMPLE.read_text(encoding="utf-8"), tmp_path)
    assert score.title_page is not None and 0.0 not in score.title_page, score.title_page
    assert score.stray_words == 0


@pytest.mark.parametrize("trait", ["revision-header", "revision-header-bottom-numbers", "production-draft"])
def test_a_revision_header_whose_colour_changes_page_to_page_leaves_no_trace(tmp_path: Path, trait: str) -> None:
    chosen = TRAITS_BY_NAME[trait]
    path = tmp_path / "script.pdf"
    path.write_bytes(render_trait(chosen, source_for(chosen, SAMPLE.read_text(encoding="utf-8"))))
    text = read_source(path).text
    assert "Revision" not in text and "3/2/2021" not in text


def test_a_left_scene_number_set_close_to_the_slugline_is_its_scene_number(tmp_path: Path) -> None:
    """``123`` at 1.05in ends a character and a half before a slugline at 1.5in: one run of text."""
    numbers = ["1", "12", "123", "124A", "A125"]
    fountain = "".join(f"INT. ROOM {n} - NIGHT #{n}#\n\n{ACTION}\n\n" for n in numbers)
    fountain += f".THE MAZDA #126#\n\n{ACTION}\n"  # a numbered secondary heading
    scenes = _scenes(tmp_path, fountain, scene_numbers="left", left_number_x=1.05)
    assert [(s.heading, s.scene_label) for s in scenes] == [(f"INT. ROOM {n} - NIGHT", n) for n in numbers] + [
        ("THE MAZDA", "126")
    ]
