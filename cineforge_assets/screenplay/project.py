"""Project configuration: the production-facing summary of a parsed screenplay.

Rules (documented here because downstream consumers rely on them):

* ``dialogue_lines`` of a character is the number of *speeches* it has, i.e. how many times its
  cue appears (the "number of lines" a casting breakdown reports), not the number of text lines.
* ``primary_cast`` is every character who has at least :data:`PRIMARY_SHARE_OF_SPEECHES` of all
  speeches **or** speaks in at least :data:`PRIMARY_SHARE_OF_SCENES` of the scenes, ordered by
  speeches and capped at :data:`PRIMARY_CAST_LIMIT` names.
* ``estimated_runtime_minutes`` is the sum of the scenes' laid-out screen time
  (see :mod:`cineforge_assets.screenplay.scenes`: ~55 printed lines per page, one page per
  minute), so it does not depend on how the source file happened to be paginated.
* ``page_count`` is the source's own page count when the reader knows it (PDF), else the same
  laid-out estimate over the whole body, rounded up.
* Splits (``int_ext_split``, ``day_night_split``) count scenes; scenes with no value are counted
  under ``"UNSPECIFIED"``.
* Title page: ``title`` is the title page's title unless it is empty or a template's placeholder
  (``TITLE``), then ``fallback_title`` (the file's name, read as words: ``Big-Fish`` -> ``Big Fish``);
  ``authors`` holds one name per writer (``Dan Harmon & Chris McKenna`` is two); lines the readers could not place (see
  :func:`~cineforge_assets.screenplay.formats.emit.classify_title_lines`) and placeholders are listed in
  ``title_page_left_out``, never in ``authors``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, Field

from cineforge_assets.screenplay.elements import ElementType, Script
from cineforge_assets.screenplay.formats.emit import LEFT_OUT_KEY, is_placeholder, split_names
from cineforge_assets.screenplay.fountain import character_name, strip_emphasis
from cineforge_assets.screenplay.scenes import (
    LINES_PER_PAGE,
    SECONDS_PER_PAGE,
    Cast,
    SceneRecord,
    estimate_page_count,
    estimate_printed_lines,
)

__all__ = [
    "PRIMARY_CAST_LIMIT",
    "PRIMARY_SHARE_OF_SCENES",
    "PRIMARY_SHARE_OF_SPEECHES",
    "UNSPECIFIED",
    "CharacterSummary",
    "LocationSummary",
    "ProjectConfig",
    "build_project_config",
    "title_from_file_name",
]

PRIMARY_SHARE_OF_SPEECHES = 0.05
PRIMARY_SHARE_OF_SCENES = 0.10
PRIMARY_CAST_LIMIT = 10
UNSPECIFIED = "UNSPECIFIED"


class CharacterSummary(BaseModel):
    name: str
    dialogue_lines: int = Field(description="Number of speeches (cues) the character has")
    scene_count: int = Field(description="Number of scenes the character speaks in")


class LocationSummary(BaseModel):
    name: str
    scene_count: int


class ProjectConfig(BaseModel):
    title: str
    credit: str = Field(default="", description="Title-page credit line, e.g. 'written by'")
    authors: list[str] = Field(default_factory=list)
    source: str = Field(default="", description="Title-page source line, e.g. 'based on the novel by ...'")
    draft_date: str = ""
    contact: list[str] = Field(default_factory=list, description="Title-page contact lines (address, agent)")
    title_page_left_out: list[str] = Field(
        default_factory=list,
        description="Title-page lines that are none of the fields (director, epigraph, 'Property of', placeholders)",
    )
    source_format: str
    page_count: int
    page_count_estimated: bool
    estimated_runtime_minutes: float
    scene_count: int
    characters: list[CharacterSummary]
    primary_cast: list[str]
    locations: list[LocationSummary]
    int_ext_split: dict[str, int]
    day_night_split: dict[str, int]


def _title_value(script: Script, *keys: str) -> list[str]:
    for key in keys:
        values = [strip_emphasis(v).strip() for v in script.title_page.get(key, []) if v.strip()]
        if values:
            return values
    return []


def title_from_file_name(stem: str) -> str:
    """A readable title from a file's name when the script has no title page of its own.

    ``Big-Fish`` -> ``Big Fish``, ``a_study_in_scarlet`` -> ``A Study In Scarlet``: a name without
    spaces has its ``-``/``_`` separators read as spaces, and an all-lower-case one is capitalized, so
    an FDX export without a title page is not titled with a file slug. A name with spaces is kept.
    """
    name = stem.strip()
    if " " not in name:
        name = re.sub(r"[-_]+", " ", name).strip() or name
    if name == name.lower():
        name = " ".join(word[:1].upper() + word[1:] for word in name.split())
    return name


def _title_and_authors(script: Script, fallback_title: str) -> tuple[str, list[str], list[str]]:
    """(title, authors, left out): placeholders and non-names never become the title or a writer."""
    left_out = _title_value(script, LEFT_OUT_KEY.lower())
    title = " ".join(_title_value(script, "title"))
    if is_placeholder(title):
        left_out.append(title)
        title = ""
    authors: list[str] = []
    for line in _title_value(script, "author", "authors"):
        for name in split_names(line):
            (left_out if is_placeholder(name) else authors).append(name)
    return title or title_from_file_name(fallback_title), authors, left_out


def _character_summaries(script: Script, scenes: Sequence[SceneRecord]) -> list[CharacterSummary]:
    speeches: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    cast = Cast.of(script.elements)
    for element in script.elements:
        if element.type is ElementType.CHARACTER:
            name = character_name(element.text)  # the same bare names the scenes table holds
            for speaker in cast.speakers(name) if name else []:
                speeches[speaker] += 1
                first_seen.setdefault(speaker, len(first_seen))
    scene_counts: Counter[str] = Counter(name for scene in scenes for name in scene.characters)
    names = sorted(speeches, key=lambda name: (-speeches[name], first_seen[name]))
    return [
        CharacterSummary(name=name, dialogue_lines=speeches[name], scene_count=scene_counts[name])
        for name in names
    ]


def _primary_cast(characters: Sequence[CharacterSummary], scene_count: int) -> list[str]:
    total_speeches = sum(c.dialogue_lines for c in characters)
    if not total_speeches:
        return []
    primary = [
        c.name
        for c in characters
        if c.dialogue_lines >= PRIMARY_SHARE_OF_SPEECHES * total_speeches
        or (scene_count and c.scene_count >= PRIMARY_SHARE_OF_SCENES * scene_count)
    ]
    return primary[:PRIMARY_CAST_LIMIT]


def _locations(scenes: Sequence[SceneRecord]) -> list[LocationSummary]:
    counts: Counter[str] = Counter()
    for scene in scenes:
        name = " ".join(scene.location.split())
        if name:
            counts[name] += 1
    # Counter keeps first-appearance order, so ties stay in script order.
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return [LocationSummary(name=name, scene_count=count) for name, count in ordered]


def _split(values: Sequence[str]) -> dict[str, int]:
    counts = Counter(value or UNSPECIFIED for value in values)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def build_project_config(
    script: Script,
    scenes: Sequence[SceneRecord],
    *,
    source_format: str,
    page_count: int | None = None,
    fallback_title: str = "",
) -> ProjectConfig:
    """Summarize ``script`` and its ``scenes`` (from :func:`split_scenes`) for production."""
    title, authors, left_out = _title_and_authors(script, fallback_title)
    characters = _character_summaries(script, scenes)
    runtime_seconds = sum(scene.est_screen_seconds for scene in scenes)
    estimated = page_count is None or page_count <= 0
    if estimated:
        page_count = estimate_page_count(script.elements)
    if not scenes and script.elements:
        # A script without scene headings still plays: fall back to the whole body.
        runtime_seconds = estimate_printed_lines(script.elements) / LINES_PER_PAGE * SECONDS_PER_PAGE
    assert page_count is not None
    return ProjectConfig(
        title=title,
        credit=" ".join(_title_value(script, "credit")),
        authors=authors,
        source=" ".join(_title_value(script, "source")),
        draft_date=" ".join(_title_value(script, "draft date")),
        contact=_title_value(script, "contact"),
        title_page_left_out=left_out,
        source_format=source_format,
        page_count=page_count,
        page_count_estimated=estimated,
        estimated_runtime_minutes=round(runtime_seconds / 60.0, 1),
        scene_count=len(scenes),
        characters=characters,
        primary_cast=_primary_cast(characters, len(scenes)),
        locations=_locations(scenes),
        int_ext_split=_split([scene.int_ext for scene in scenes]),
        day_night_split=_split([scene.time_of_day for scene in scenes]),
    )
