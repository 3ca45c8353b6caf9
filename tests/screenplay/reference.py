"""Test helpers: corpus access and the reference parser (screenplain) for comparisons."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

CORPUS_SCRIPTS = ("Big-Fish", "The-Last-Birthday-Card")


def read_corpus_fountain(corpus_dir: Path, name: str) -> str:
    return (corpus_dir / f"{name}.fountain").read_text(encoding="utf-8")


def _reference_name(cue: object) -> str:
    """screenplain keeps the whole cue (``EDWARD (V.O.)(CONT'D)``); reduce it to the bare name."""
    text = str(cue).strip()
    if text.startswith("@"):
        text = text[1:]
    text = text.split("(", 1)[0].strip()
    if text.endswith("^"):
        text = text[:-1]
    return " ".join(text.split())


def screenplain_scenes(fountain_text: str) -> list[tuple[str, set[str]]]:
    """(heading, speaking characters) per scene, as the reference parser screenplain sees them."""
    screenplain_fountain = pytest.importorskip("screenplain.parsers.fountain")
    from screenplain.types import Dialog, DualDialog, Slug

    screenplay = screenplain_fountain.parse(io.StringIO(fountain_text))
    scenes: list[tuple[str, set[str]]] = []
    for paragraph in screenplay.paragraphs:
        if isinstance(paragraph, Slug):
            scenes.append((str(paragraph.line), set()))
        elif scenes and isinstance(paragraph, Dialog):
            scenes[-1][1].add(_reference_name(paragraph.character))
        elif scenes and isinstance(paragraph, DualDialog):
            scenes[-1][1].add(_reference_name(paragraph.left.character))
            scenes[-1][1].add(_reference_name(paragraph.right.character))
    return scenes
