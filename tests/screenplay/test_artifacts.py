"""The ingest artifacts' domain steps: what goes to a model, what cannot become a script, canonical Fountain."""

from __future__ import annotations

import pytest

from cineforge_assets.screenplay.artifacts import (
    canonicalize,
    element_counts,
    is_screenplay_shaped,
    missing_script_body,
)
from cineforge_assets.screenplay.formats.reader import RawSource

SCRIPT = """Title: The Ledger

INT. LIGHTHOUSE - NIGHT

Maria climbs the stairs.

MARIA
He came back.

EXT. PIER - DAY

Waves.
"""
PROSE = "The harbor at dawn is grey and quiet. Maria walks along the pier with a letter in her hand."


def raw(text: str, fmt: str = "text", name: str = "ledger.txt") -> RawSource:
    return RawSource(
        source_path=f"/in/{name}", file_name=name, format=fmt, confidence=1.0, text=text, sha256="0" * 64, byte_size=1
    )


@pytest.mark.parametrize(
    ("text", "fmt", "shaped"),
    [(SCRIPT, "text", True), (PROSE, "text", False), (PROSE, "pdf", True), (PROSE, "fountain", True)],
)
def test_only_prose_without_a_scene_heading_goes_to_a_model(text: str, fmt: str, shaped: bool) -> None:
    assert is_screenplay_shaped(raw(text, fmt)) is shaped


def test_a_title_page_without_a_body_is_named_and_prose_is_not() -> None:
    reason = missing_script_body(raw("Title: The Ledger\nAuthor: Ann Lee\n"))
    assert reason is not None and "no script body after the title page" in reason and "author, title" in reason
    assert missing_script_body(raw(PROSE)) is None
    assert missing_script_body(raw(SCRIPT)) is None


def test_canonicalize_counts_elements_whose_lines_point_into_the_canonical_text() -> None:
    artifact = canonicalize(SCRIPT, raw(SCRIPT), normalized_by="deterministic")
    assert artifact.title == "The Ledger"
    assert artifact.element_counts == element_counts(artifact.elements)
    assert artifact.element_counts["scene_heading"] == 2 and sum(artifact.element_counts.values()) == len(
        artifact.elements
    )
    lines = artifact.fountain.split("\n")
    assert all(lines[e.line - 1].strip() for e in artifact.elements)
    assert canonicalize(artifact.fountain, raw(artifact.fountain), "deterministic").fountain == artifact.fountain


def test_canonicalize_titles_a_script_without_a_title_page_by_its_file() -> None:
    body = SCRIPT.split("\n", 2)[2]
    assert canonicalize(body, raw(body, name="ledger.fountain"), "deterministic").title == "ledger.fountain"
