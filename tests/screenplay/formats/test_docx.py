"""Word reader: screenplay styles, indentation-only layouts, Fountain typed into Word."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import docx
import pytest
from docx.shared import Inches

from cineforge_assets.screenplay.elements import ElementType
from cineforge_assets.screenplay.formats.docx import write_docx
from cineforge_assets.screenplay.formats.errors import CorruptSourceError
from cineforge_assets.screenplay.formats.reader import RawSource, read_source
from cineforge_assets.screenplay.fountain import parse_fountain

from .conftest import REPO_ROOT, SCRIPTS, assert_floor, fidelity

SAMPLE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"


@cache
def _docx_from_fountain(fountain: Path, styled: bool, out: Path) -> RawSource:
    path = out / f"{fountain.stem}-{'styled' if styled else 'indented'}.docx"
    path.write_bytes(write_docx(parse_fountain(fountain.read_text(encoding="utf-8")), styled=styled))
    return read_source(path)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docx")


@pytest.mark.parametrize("name", SCRIPTS)
def test_styled_docx_of_the_corpus_meets_the_fidelity_floor(corpus: Path, out_dir: Path, name: str) -> None:
    raw = _docx_from_fountain(corpus / f"{name}.fountain", True, out_dir)
    assert raw.format == "docx" and raw.warnings == []
    assert_floor(fidelity(corpus / f"{name}.fountain", raw.text))


def test_styled_docx_carries_the_title_page(out_dir: Path) -> None:
    raw = _docx_from_fountain(SAMPLE, True, out_dir)
    page = parse_fountain(raw.text).title_page
    assert page["title"] == ["THE LIGHTHOUSE KEEPER'S LEDGER"]
    assert page["author"] == ["CineForge Sample Desk"] and page["draft date"] == ["23 November 2026"]


def test_indentation_only_docx_is_read_by_layout(corpus: Path, out_dir: Path) -> None:
    """Everything "Normal", cues/dialogue/parentheticals told apart by left indent alone."""
    raw = _docx_from_fountain(corpus / "Big-Fish.fountain", False, out_dir)
    assert any("indentation" in w for w in raw.warnings)
    assert_floor(fidelity(corpus / "Big-Fish.fountain", raw.text))


def test_indentation_only_sample_keeps_every_speech(out_dir: Path) -> None:
    raw = _docx_from_fountain(SAMPLE, False, out_dir)
    report = fidelity(SAMPLE, raw.text)
    assert report.attribution == 1.0 and report.headings.precision == 1.0
    # The forced ".THE LANTERN ROOM" is an indistinguishable margin paragraph without a style: action.
    assert report.candidate_scenes == report.reference_scenes - 1


def _plain_docx(lines: list[str]) -> bytes:
    document = docx.Document()
    for line in lines:
        document.add_paragraph(line)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.mark.parametrize("blank_paragraphs", [True, False], ids=["with-blank-paragraphs", "packed"])
def test_fountain_typed_into_word(tmp_path: Path, blank_paragraphs: bool) -> None:
    fountain = SAMPLE.read_text(encoding="utf-8")
    lines = [line for line in fountain.split("\n") if blank_paragraphs or line.strip()]
    path = tmp_path / "pasted.docx"
    path.write_bytes(_plain_docx(lines))
    raw = read_source(path)
    report = fidelity(SAMPLE, raw.text)
    assert report.headings.f1 == 1.0
    assert report.attribution >= 0.95
    if blank_paragraphs:
        assert raw.text == fountain


def test_generic_styles_with_direct_indents(tmp_path: Path) -> None:
    document = docx.Document()
    rows = [
        ("INT. BOATHOUSE - NIGHT", 0.0),
        ("", 0.0),
        ("Water laps at the pilings.", 0.0),
        ("", 0.0),
        ("ODA", 2.2),
        ("(to herself)", 1.6),
        ("Nobody comes here anymore.", 1.0),
        ("", 0.0),
        ("KIT (O.S.)", 2.2),
        ("Somebody does.", 1.0),
    ]
    for text, indent in rows:
        paragraph = document.add_paragraph(text)
        paragraph.paragraph_format.left_indent = Inches(indent)
    path = tmp_path / "boathouse.docx"
    document.save(str(path))
    script = parse_fountain(read_source(path).text)
    kinds = [(e.type, e.text) for e in script.elements]
    assert kinds == [
        (ElementType.SCENE_HEADING, "INT. BOATHOUSE - NIGHT"),
        (ElementType.ACTION, "Water laps at the pilings."),
        (ElementType.CHARACTER, "ODA"),
        (ElementType.PARENTHETICAL, "(to herself)"),
        (ElementType.DIALOGUE, "Nobody comes here anymore."),
        (ElementType.CHARACTER, "KIT"),
        (ElementType.DIALOGUE, "Somebody does."),
    ]


def test_damaged_docx_is_corrupt(tmp_path: Path) -> None:
    good = write_docx(parse_fountain("INT. A - DAY\n\nAction.\n"))
    path = tmp_path / "damaged.docx"
    path.write_bytes(good[:200])
    with pytest.raises(CorruptSourceError) as caught:
        read_source(path)
    assert "damaged.docx" in str(caught.value)
