"""The element model every reader produces and every consumer reads.

A screenplay is a title page plus an ordered list of typed elements, which is exactly what the
Fountain spec describes; every source format (PDF, FDX, DOCX, plain text) is reduced to it.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class ElementType(StrEnum):
    SCENE_HEADING = "scene_heading"
    ACTION = "action"
    CHARACTER = "character"
    PARENTHETICAL = "parenthetical"
    DIALOGUE = "dialogue"
    TRANSITION = "transition"
    CENTERED = "centered"
    LYRICS = "lyrics"
    SECTION = "section"
    SYNOPSIS = "synopsis"
    NOTE = "note"
    PAGE_BREAK = "page_break"


class Element(BaseModel):
    """One screenplay element.

    ``text`` is the element's content without Fountain markup (no leading ``.``/``@``/``>``).
    For a CHARACTER, ``text`` is the bare name (``EDWARD``) and ``extension`` the parenthesised
    suffixes (``(V.O.) (CONT'D)``). ``dual`` marks the second speaker of dual dialogue (``^``).
    ``line`` is the 1-based line in the canonical Fountain text where the element starts
    (0 when unknown, e.g. before the script has been written out).
    """

    type: ElementType
    text: str
    line: int = 0
    extension: str = ""
    dual: bool = False
    scene_number: str | None = None
    level: int = 0  # section depth for SECTION

    model_config = {"frozen": True}


class Script(BaseModel):
    """A parsed screenplay: the title page (key -> lines, keys lower-cased) and the elements."""

    title_page: dict[str, list[str]] = Field(default_factory=dict)
    elements: list[Element] = Field(default_factory=list)

    @property
    def title(self) -> str:
        return " ".join(self.title_page.get("title", [])).strip()
