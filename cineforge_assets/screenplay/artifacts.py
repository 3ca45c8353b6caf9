"""The ingest artifacts as domain values, and the pure steps that make them.

``canonical_script`` is a :class:`CanonicalScript` (canonical Fountain plus its parsed elements) and
``project_config`` a :class:`ProjectConfigArtifact`; the IO manager stores both as JSON. Which input goes to a
model first (:func:`is_screenplay_shaped`), which cannot become a script at all (:func:`missing_script_body`)
and how text becomes the canonical artifact (:func:`canonicalize`) are decided here, without Dagster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, Field

from cineforge_assets.screenplay.elements import Element, ElementType, Script
from cineforge_assets.screenplay.formats.reader import RawSource
from cineforge_assets.screenplay.fountain import parse_fountain, write_fountain
from cineforge_assets.screenplay.project import ProjectConfig

__all__ = [
    "SCREENPLAY_FORMATS",
    "CanonicalScript",
    "ProjectConfigArtifact",
    "canonicalize",
    "element_counts",
    "is_screenplay_shaped",
    "missing_script_body",
]

# Formats that are screenplays by construction: their readers emit Fountain, never prose.
SCREENPLAY_FORMATS = frozenset({"fountain", "fdx", "pdf", "docx"})


class CanonicalScript(BaseModel):
    """The screenplay as canonical Fountain plus its parsed elements."""

    title: str
    title_page: dict[str, list[str]]
    fountain: str
    elements: list[Element]
    element_counts: dict[str, int]
    source_format: str
    source_file: str = Field(default="", description="The source's file name ('' in older artifacts)")
    page_count: int | None = None
    normalized_by: str = Field(description="'deterministic' or the provider/model that rewrote the input")

    def script(self) -> Script:
        """The parsed script, as stored: the elements were parsed from ``fountain`` itself."""
        return Script(title_page=self.title_page, elements=self.elements)


class ProjectConfigArtifact(ProjectConfig):
    """The project configuration plus what a model read in the script (genre, tone, logline)."""

    genre: str = ""
    tone: str = ""
    logline: str = ""
    insights_by: str = ""


def missing_script_body(raw: RawSource) -> str | None:
    """Why ``raw`` cannot become a script (a title page and nothing after it), or None.

    Only text that parses as a Fountain title page counts: prose has no title page and goes to the
    model to be normalized."""
    script = parse_fountain(raw.text)
    if script.title_page and not script.elements:
        return (
            f"{raw.file_name}: no script body after the title page "
            f"(title page keys: {', '.join(sorted(script.title_page))}); add the screenplay and ingest it again"
        )
    return None


def is_screenplay_shaped(raw: RawSource) -> bool:
    """Screenplay-shaped input is parsed deterministically; only prose (text with no scene heading that a
    Fountain parser finds) goes to a model."""
    if raw.format in SCREENPLAY_FORMATS:
        return True
    script = parse_fountain(raw.text)
    return any(e.type == ElementType.SCENE_HEADING for e in script.elements)


def element_counts(elements: Iterable[Element]) -> dict[str, int]:
    """How many elements of each type, by type name, in order of first appearance."""
    return dict(Counter(element.type.value for element in elements))


def canonicalize(text: str, raw: RawSource, normalized_by: str) -> CanonicalScript:
    """``text`` (Fountain: the source's, or a model's from prose) as the canonical artifact of ``raw``."""
    fountain = write_fountain(parse_fountain(text))
    script = parse_fountain(fountain)  # element lines now refer to the canonical text
    return CanonicalScript(
        title=script.title or raw.file_name,
        title_page=script.title_page,
        fountain=fountain,
        elements=script.elements,
        element_counts=element_counts(script.elements),
        source_format=raw.format,
        source_file=raw.file_name,
        page_count=raw.page_count,
        normalized_by=normalized_by,
    )
