"""Scene splitting: a :class:`Script` becomes one :class:`SceneRecord` per scene heading.

A scene runs from its heading to the element before the next heading, so the scenes partition
the body of the script after the first heading; whatever comes before that heading (cold-open
action, ``FADE IN:``, act sections) is the *preamble*, returned by
:func:`split_scenes_with_preamble` rather than dropped.

Length estimate (documented choice): we lay the scene out the way a standard US screenplay page
is typeset (Courier 12 pt, 10 characters per inch, 6 lines per inch) and count printed lines:
scene headings, action and centered text wrap at 60 columns, dialogue and lyrics at 35,
parentheticals at 25; headings, action, character cues, transitions and centered text are
preceded by one blank line. A page holds ~55 such lines (the industry rule of thumb), and one
page is about one minute of screen time. Counting laid-out lines rather than words is what makes
the rule work: a page of clipped dialogue has far fewer words than a page of dense action but
plays for about the same time. On the corpus this lands within a few percent of the real PDF
page counts (Big Fish: 122 pages).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from cineforge_assets.screenplay.batching import ENRICHMENT_FIELDS
from cineforge_assets.screenplay.elements import Element, ElementType, Script
from cineforge_assets.screenplay.fountain import character_name, plain_text, render_fountain
from resources.providers.screenplay_grammar import IntExt, parse_scene_heading

__all__ = [
    "LINES_PER_PAGE",
    "SECONDS_PER_PAGE",
    "SceneRecord",
    "SceneSplit",
    "Cast",
    "cue_names",
    "name_key",
    "speakers_of_cue",
    "is_shot_heading",
    "estimate_printed_lines",
    "estimate_page_count",
    "split_scenes",
    "split_scenes_with_preamble",
    "scenes_dataframe",
    "scene_records",
    "with_enrichment",
]

LINES_PER_PAGE = 55
SECONDS_PER_PAGE = 60.0

# Column widths of the standard screenplay layout (characters of 12 pt Courier).
_WIDTH_FULL = 60
_WIDTH_DIALOGUE = 35
_WIDTH_PARENTHETICAL = 25


class SceneRecord(BaseModel):
    """One scene of the screenplay, as a row of the ``scenes`` table."""

    scene_number: int = Field(description="1-based ordinal of the scene in the script")
    scene_label: str = Field(default="", description="Scene number written in the script (#12A#), if any")
    heading: str
    int_ext: IntExt
    location: str
    time_of_day: str = Field(description="Normalized upper-case time (DAY, NIGHT, ...), '' if none")
    characters: list[str] = Field(description="Speaking characters, bare names, in order of first line")
    line_start: int = Field(description="1-based line of the heading in the canonical Fountain text")
    line_end: int = Field(description="1-based last non-blank line of the scene in that text")
    word_count: int
    page_estimate: float
    page_eighths: int = Field(description="Length in eighths of a page, as on a production breakdown")
    est_screen_seconds: float
    text: str = Field(description="The scene's Fountain text")


class SceneSplit(BaseModel):
    """The scenes plus the preamble: everything in the body before the first scene heading."""

    preamble: str
    preamble_line_start: int = 0
    preamble_line_end: int = 0
    scenes: list[SceneRecord]


# --------------------------------------------------------------------------------------------
# Headings
# --------------------------------------------------------------------------------------------

_WHITESPACE_RE = re.compile(r"\s+")
_TOKEN_RE = re.compile(r"\S*\w\S*")

# Camera directions that readers (and some writers) set as a heading line although they stay in the
# scene they interrupt: ``MONTAGE``, ``SERIES OF SHOTS``, ``INSERT - ALTIMETER``, ``STRIKER'S POV``.
_SHOT_RE = re.compile(
    r"^(?:(?:BEGIN|START|END)(?:\s+OF)?\s+)?(?:THE\s+)?"
    r"(?:MONTAGE|SERIES\s+OF\s+SHOTS|QUICK\s+CUTS|ANGLE\b|ANGLES\b|INSERT\b|CLOSE\s*ON\b|CLOSE[\s-]*UP\b"
    r"|BACK\s+TO\b|INTERCUT\b|INTERCUTTING\b|[^-]*\bPOV\b)"
)


def is_shot_heading(heading: str) -> bool:
    """A heading line that is a shot or montage marker (no INT/EXT), not a new place and time.

    Such a line must not replace the real heading of the scene it sits in, so it starts no scene of
    its own unless no real heading precedes it.
    """
    text = _WHITESPACE_RE.sub(" ", plain_text(heading)).upper().lstrip(".").strip()
    if parse_scene_heading(text).int_ext or re.search(r"\b(?:INT|EXT)\.", text):
        return False
    return bool(_SHOT_RE.match(text))


# --------------------------------------------------------------------------------------------
# Length
# --------------------------------------------------------------------------------------------

_SCREEN_TYPES = frozenset(
    {
        ElementType.SCENE_HEADING,
        ElementType.ACTION,
        ElementType.CHARACTER,
        ElementType.PARENTHETICAL,
        ElementType.DIALOGUE,
        ElementType.TRANSITION,
        ElementType.CENTERED,
        ElementType.LYRICS,
    }
)
_LAYOUT: dict[ElementType, tuple[int, int]] = {
    # type: (wrap width, blank lines before)
    ElementType.SCENE_HEADING: (_WIDTH_FULL, 1),
    ElementType.ACTION: (_WIDTH_FULL, 1),
    ElementType.CENTERED: (_WIDTH_FULL, 1),
    ElementType.CHARACTER: (_WIDTH_DIALOGUE, 1),
    ElementType.TRANSITION: (_WIDTH_FULL, 1),
    ElementType.PARENTHETICAL: (_WIDTH_PARENTHETICAL, 0),
    ElementType.DIALOGUE: (_WIDTH_DIALOGUE, 0),
    ElementType.LYRICS: (_WIDTH_DIALOGUE, 0),
}


def _wrapped_line_count(text: str, width: int) -> int:
    """Lines ``text`` takes when word-wrapped greedily at ``width`` columns (hard breaks kept)."""
    total = 0
    for line in text.split("\n"):
        if len(line) <= width:
            total += 1
            continue
        used = 0  # columns used on the current output line
        lines = 1
        for word in line.split():
            size = len(word)
            if used and used + 1 + size <= width:
                used += 1 + size
                continue
            if used:
                lines += 1
            # A word longer than the line is broken across lines, as a typewriter would.
            lines += (size - 1) // width
            used = size - ((size - 1) // width) * width
        total += lines
    return total


def estimate_printed_lines(elements: Sequence[Element]) -> int:
    """How many lines ``elements`` occupy on a standard screenplay page (see module docstring)."""
    total = 0
    for element in elements:
        layout = _LAYOUT.get(element.type)
        if layout is None:
            continue  # sections, synopses, notes and page breaks are not printed
        width, blank_before = layout
        total += blank_before + _wrapped_line_count(element.text, width)
    return total


def estimate_page_count(elements: Sequence[Element]) -> int:
    """Pages ``elements`` fill when laid out as a standard screenplay (0 for no elements)."""
    if not elements:
        return 0
    return max(1, math.ceil(estimate_printed_lines(elements) / LINES_PER_PAGE))


def _word_count(elements: Sequence[Element]) -> int:
    return sum(len(_TOKEN_RE.findall(e.text)) for e in elements if e.type in _SCREEN_TYPES)


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------


# How a cue names several speakers at once: ``ABED / TROY``, ``SHIRLEY AND BRITTA``, ``JEFF & ANNIE``.
_GROUP_CUE_SPLIT_RE = re.compile(r"\s*(?:/|&|\bAND\b)\s*")


def cue_names(elements: Sequence[Element]) -> frozenset[str]:
    """Every bare name a character cue of ``elements`` carries, as written (group cues included)."""
    return frozenset(
        name for element in elements if element.type is ElementType.CHARACTER if (name := character_name(element.text))
    )


def speakers_of_cue(name: str, known: Collection[str]) -> list[str]:
    """The speakers of a bare cue: ``ABED / TROY`` -> ABED and TROY when both speak alone elsewhere
    (``known``), so a group line counts for each and no ``ABED / TROY`` joins the cast; a cue whose parts
    are not all such speakers (``MR. AND MRS. SMITH``, ``EVERYONE BUT JEFF``) stays one speaker."""
    parts = [part for part in _GROUP_CUE_SPLIT_RE.split(name) if part]
    if len(parts) > 1 and all(part in known for part in parts):
        return parts
    return [name]


def name_key(name: str) -> str:
    """What two spellings of one name share: ``MRS. JONES`` / ``MRS JONES``, ``O’BRIEN`` / ``O'BRIEN``,
    ``JOSÉ`` / ``JOSE``, ``McANNA`` / ``MCANNA`` all give one key. Letters and digits only, accents
    dropped, case folded; a word or a digit more (``JOE`` / ``JOE'S VOICE``, ``COP 1`` / ``COP 2``) is
    another key, so distinct characters never share one."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if c.isalnum()).casefold()


@dataclass(frozen=True)
class Cast:
    """The speaking names of a script, one spelling per person.

    A script typed over months (or a PDF read back) spells one name two ways (``MRS. JONES`` on
    page 3, ``MRS JONES`` on page 40); the cast lists such a person once, under the spelling the
    cues use most (the first seen on a tie). Only spellings with one :func:`name_key` are merged.
    """

    spellings: Mapping[str, str]  # name_key -> the spelling the cast uses
    known: frozenset[str]  # every cue's name, in the cast's spelling

    @classmethod
    def of(cls, elements: Sequence[Element]) -> Cast:
        counts: Counter[str] = Counter(
            name
            for element in elements
            if element.type is ElementType.CHARACTER
            if (name := character_name(element.text))
        )
        spellings: dict[str, str] = {}
        for name, count in counts.items():  # Counter keeps first-seen order, so ties go to the first
            key = name_key(name)
            if key and (key not in spellings or count > counts[spellings[key]]):
                spellings[key] = name
        return cls(spellings, frozenset(spellings.get(name_key(name), name) for name in counts))

    def spelling(self, name: str) -> str:
        return self.spellings.get(name_key(name), name)

    def speakers(self, name: str) -> list[str]:
        """The cast members a bare cue name stands for (see :func:`speakers_of_cue`)."""
        parts = [self.spelling(part) for part in _GROUP_CUE_SPLIT_RE.split(name) if part]
        if len(parts) > 1 and all(part in self.known for part in parts):
            return parts
        return [self.spelling(name)]


def _speaking_characters(elements: Sequence[Element], cast: Cast) -> list[str]:
    seen: dict[str, None] = {}
    for element in elements:
        if element.type is ElementType.CHARACTER:
            name = character_name(element.text)
            if name:
                for speaker in cast.speakers(name):
                    seen.setdefault(speaker, None)
    return list(seen)


def _last_content_line(lines: Sequence[str], first: int, last: int) -> int:
    """The last 1-based line in [first, last] that is not blank (``first`` if all are)."""
    while last > first and not lines[last - 1].strip():
        last -= 1
    return last


def _source(script: Script, fountain_text: str | None) -> tuple[list[str], list[int]]:
    """The text the line numbers refer to and each element's start line in it."""
    elements = script.elements
    if fountain_text is not None and all(e.line > 0 for e in elements):
        return fountain_text.split("\n"), [e.line for e in elements]
    text, element_lines = render_fountain(script)
    return text.split("\n"), element_lines


def _scene_record(
    ordinal: int,
    heading: Element,
    elements: Sequence[Element],
    text_lines: Sequence[str],
    start: int,
    end: int,
    cast: Cast,
) -> SceneRecord:
    plain_heading = plain_text(heading.text)
    int_ext, location, time_of_day, _ = parse_scene_heading(plain_heading)
    printed_lines = estimate_printed_lines(elements)
    pages = printed_lines / LINES_PER_PAGE
    return SceneRecord(
        scene_number=ordinal,
        scene_label=heading.scene_number or "",
        heading=plain_heading,
        int_ext=int_ext,
        location=location,
        time_of_day=time_of_day,
        characters=_speaking_characters(elements, cast),
        line_start=start,
        line_end=end,
        word_count=_word_count(elements),
        page_estimate=round(pages, 3),
        page_eighths=max(1, round(pages * 8)),
        est_screen_seconds=round(pages * SECONDS_PER_PAGE, 1),
        text="\n".join(text_lines[start - 1 : end]),
    )


def _scene_starts(elements: Sequence[Element]) -> list[int]:
    """Indexes of the headings that open a scene: every heading but a shot line after a real one."""
    starts: list[int] = []
    after_real_heading = False
    for index, element in enumerate(elements):
        if element.type is not ElementType.SCENE_HEADING:
            continue
        if is_shot_heading(element.text):
            if after_real_heading:
                continue
        else:
            after_real_heading = True
        starts.append(index)
    return starts


def split_scenes_with_preamble(script: Script, fountain_text: str | None = None) -> SceneSplit:
    """Split ``script`` into scenes and the preamble before the first heading.

    ``fountain_text`` is the Fountain text the script was parsed from (its element ``line``
    numbers refer to it); without it, or when the elements carry no line numbers, the canonical
    text from :func:`render_fountain` is used.
    """
    text_lines, element_lines = _source(script, fountain_text)
    elements = script.elements
    heading_indexes = _scene_starts(elements)
    total_lines = len(text_lines)

    preamble_end_index = heading_indexes[0] if heading_indexes else len(elements)
    preamble = ""
    preamble_start = preamble_end = 0
    if preamble_end_index > 0:
        preamble_start = element_lines[0]
        boundary = element_lines[preamble_end_index] - 1 if heading_indexes else total_lines
        preamble_end = _last_content_line(text_lines, preamble_start, boundary)
        preamble = "\n".join(text_lines[preamble_start - 1 : preamble_end])

    scenes: list[SceneRecord] = []
    cast = Cast.of(elements)
    for ordinal, index in enumerate(heading_indexes, start=1):
        next_index = heading_indexes[ordinal] if ordinal < len(heading_indexes) else len(elements)
        start = element_lines[index]
        boundary = element_lines[next_index] - 1 if next_index < len(elements) else total_lines
        end = _last_content_line(text_lines, start, boundary)
        scenes.append(
            _scene_record(
                ordinal, elements[index], elements[index:next_index], text_lines, start, end, cast
            )
        )
    return SceneSplit(
        preamble=preamble, preamble_line_start=preamble_start, preamble_line_end=preamble_end, scenes=scenes
    )


def split_scenes(script: Script, fountain_text: str | None = None) -> list[SceneRecord]:
    """One :class:`SceneRecord` per scene heading (see :func:`split_scenes_with_preamble`)."""
    return split_scenes_with_preamble(script, fountain_text).scenes


def scenes_dataframe(records: Sequence[SceneRecord]) -> pd.DataFrame:
    """The scenes as a table, one row per scene; ``characters`` is a list-valued column."""
    columns = list(SceneRecord.model_fields)
    frame = pd.DataFrame([record.model_dump() for record in records], columns=columns)
    return frame


def scene_records(table: pd.DataFrame) -> list[SceneRecord]:
    """The :class:`SceneRecord` rows of a ``scenes`` table (the inverse of :func:`scenes_dataframe`; columns
    a model added, such as the enrichment, are left out). A table read back from Parquet holds NumPy
    values (``characters`` an array), so each value is turned into its Python counterpart first."""
    columns = list(SceneRecord.model_fields)
    values = {name: table[name].tolist() for name in columns}
    values["characters"] = [list(names) for names in values["characters"]]
    return [
        SceneRecord.model_validate({name: values[name][row] for name in columns}) for row in range(len(table))
    ]


def with_enrichment(
    table: pd.DataFrame, answers: Mapping[int, Mapping[str, Any]], served_by: Mapping[int, str]
) -> pd.DataFrame:
    """``table`` with each scene's model answer (``summary``, ``mood``, ``visual_description``, stripped)
    and who served it (``enriched_by``) as columns; every scene must have an answer (see
    :func:`~cineforge_assets.screenplay.batching.missing_enrichment`)."""
    numbers = [int(n) for n in table["scene_number"]]
    for name in ENRICHMENT_FIELDS:
        table[name] = [str(answers[n][name]).strip() for n in numbers]
    table["enriched_by"] = [served_by[n] for n in numbers]
    return table
