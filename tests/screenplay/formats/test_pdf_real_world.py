"""The PDF reader on real screenwriting software's PDFs (../shared/corpus/real-world/), read in place.

Each file is scored against its Fountain transcription with the corrections that
``bench/fidelity.py`` lists (the transcriptions are approximate; every correction has a reason).
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

from bench.fidelity import CHARACTER_TARGET, HEADING_TARGET, corrected_reference
from cineforge_assets.screenplay.fidelity import compare, digest_fountain, digest_screenplain
from cineforge_assets.screenplay.formats.reader import RawSource, read_source
from cineforge_assets.screenplay.fountain import parse_fountain
from cineforge_assets.screenplay.scenes import split_scenes

from .conftest import REPO_ROOT

REAL_WORLD = (
    "community-3x03-remedial-chaos-theory",  # Final Draft Mac: numbers both margins, CONTINUED: (2), header
    "a-study-in-scarlet",  # Final Draft for Windows: numbers both margins, revision asterisks
    "suits-pilot",  # Final Draft for Windows: episode title in the header, deep cue indent
    "dexter-101-pilot",  # Final Draft 7 Mac: cues drawn after their dialogue
    "bright",  # Final Draft Mac: a clean modern feature draft
)


@pytest.fixture(scope="module")
def real_world() -> Path:
    base = Path(os.environ.get("CINEFORGE_CORPUS", REPO_ROOT.parent / "shared" / "corpus")).resolve()
    folder = base / "real-world"
    if not all((folder / f"{name}.{ext}").exists() for name in REAL_WORLD for ext in ("pdf", "fountain")):
        pytest.skip(f"real-world screenplays not found at {folder}")
    return folder


@cache
def _read(path: Path) -> RawSource:
    return read_source(path)


@pytest.mark.parametrize("name", REAL_WORLD)
def test_real_world_pdf_meets_the_heading_and_speaker_targets(real_world: Path, name: str) -> None:
    raw = _read(real_world / f"{name}.pdf")
    reference, _applied = corrected_reference(name, (real_world / f"{name}.fountain").read_text(encoding="utf-8"))
    report = compare(digest_screenplain(reference), digest_fountain(raw.text)[0])
    assert report.headings.f1 >= HEADING_TARGET, report
    assert report.characters.f1 >= CHARACTER_TARGET, report


def test_production_draft_keeps_its_printed_scene_numbers(real_world: Path) -> None:
    text = _read(real_world / "community-3x03-remedial-chaos-theory.pdf").text
    scenes = split_scenes(parse_fountain(text), text)
    assert len(scenes) == 36
    assert scenes[0].heading == "INT. APARTMENT BUILDING HALLWAY - NIGHT" and scenes[0].scene_label == "1"
    assert all(s.scene_label for s in scenes)
    body = text.split("\n\n", 1)[1]  # after the title page, which names the episode
    assert not re.search(r"CONTINUED|\(MORE\)|\"Community\"", body)


def test_revision_asterisks_never_reach_a_name(real_world: Path) -> None:
    text = _read(real_world / "a-study-in-scarlet.pdf").text
    scenes = split_scenes(parse_fountain(text), text)
    names = {name for scene in scenes for name in scene.characters}
    assert "SHERLOCK" in names and not [n for n in names if "*" in n]
    assert not [s.heading for s in scenes if "*" in s.heading or re.search(r"\d$", s.heading)]
    script = parse_fountain(text)
    assert not any("GREEN AMENDED" in e.text for e in script.elements)  # the running header ...
    assert script.title_page["draft date"] == ["SHOOTING SCRIPT - GREEN AMENDED", "18/04/10"]  # ... read as such


def test_final_draft_7_cues_lead_their_speeches(real_world: Path) -> None:
    text = _read(real_world / "dexter-101-pilot.pdf").text
    assert "DEXTER (V.O.)\nMy name is Dexter -- Dexter Morgan and" in text


def test_final_draft_7_mac_roman_quotes_are_repaired(real_world: Path) -> None:
    text = _read(real_world / "dexter-101-pilot.pdf").text
    assert "INT. DEXTER’S APARTMENT - COCONUT GROVE, FL - DAWN" in text
    assert "Õ" not in text and "“Bach Magnificat.”" in text


def test_line_end_hyphens_are_hyphens(real_world: Path) -> None:
    text = _read(real_world / "bright.pdf").text
    assert "\x02" not in text and "A sparrow-sized hybrid" in text


def test_final_draft_dual_dialogue_gives_two_speeches(real_world: Path) -> None:
    text = _read(real_world / "a-study-in-scarlet.pdf").text
    assert (
        "JOHN\nSoon as we get all this rubbish cleaned out.\n\nSHERLOCK ^\nSo I went ahead and moved in.\n" in text
    )
