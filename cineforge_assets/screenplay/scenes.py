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
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field

from cineforge_assets.screenplay.batching import ENRICHMENT_FIELDS
from cineforge_assets.screenplay.elements import Element, ElementType, Script
from cineforge_assets.screenplay.fountain import character_name, plain_text, render_fountain

__all__ = [
    "LINES_PER_PAGE",
    "SECONDS_PER_PAGE",
    "SceneRecord",
    "SceneSplit",
    "parse_heading",
    "cue_names",
    "speakers_of_cue",
    "is_shot_heading",
    "normalize_time_of_day",
    "estimate_printed_lines",
    "estimate_page_count",
    "split_scenes",
    "split_scenes_with_preamble",
    "scenes_dataframe",
    "scene_records",
    "with_enrichment",
]

IntExt = Literal["INT", "EXT", "INT/EXT", "EST", ""]

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

_HEADING_PREFIX_RE = re.compile(
    r"^(?P<prefix>INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I\s*/\s*E|INT|EXT|EST)(?:\.|\s|$)\s*"
)
_SCENE_NUMBER_RE = re.compile(r"\s*#[\w\-.]+#\s*$")
_DASH_SPLIT_RE = re.compile(r"\s+(?:-{1,2}|–|—)\s+")
_BRACKETED_RE = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_WORD_RE = re.compile(r"[A-Z]+(?:-[A-Z]+)*")
_WHITESPACE_RE = re.compile(r"\s+")
_TOKEN_RE = re.compile(r"\S*\w\S*")

# Words that name a time of day, with the spelling they normalize to.
_TIME_WORDS: dict[str, str] = {
    "DAY": "DAY",
    "DAYTIME": "DAY",
    "NIGHT": "NIGHT",
    "NIGHTTIME": "NIGHT",
    "MORNING": "MORNING",
    "AFTERNOON": "AFTERNOON",
    "EVENING": "EVENING",
    "DAWN": "DAWN",
    "PRE-DAWN": "DAWN",
    "DUSK": "DUSK",
    "SUNRISE": "SUNRISE",
    "SUNSET": "SUNSET",
    "NOON": "NOON",
    "MIDDAY": "NOON",
    "MIDNIGHT": "MIDNIGHT",
    "TWILIGHT": "TWILIGHT",
    "CONTINUOUS": "CONTINUOUS",
    "CONTINUED": "CONTINUOUS",
    "LATER": "LATER",
    "EARLIER": "EARLIER",
    "SAME": "SAME",
}
_TIME_PHRASES = {"MAGIC HOUR": "MAGIC HOUR", "GOLDEN HOUR": "MAGIC HOUR"}
_INT_EXT_BY_PREFIX = {"INT": "INT", "EXT": "EXT", "EST": "EST"}

# Camera directions that readers (and some writers) set as a heading line although they stay in the
# scene they interrupt: ``MONTAGE``, ``SERIES OF SHOTS``, ``INSERT - ALTIMETER``, ``STRIKER'S POV``.
_SHOT_RE = re.compile(
    r"^(?:(?:BEGIN|START|END)(?:\s+OF)?\s+)?(?:THE\s+)?"
    r"(?:MONTAGE|SERIES\s+OF\s+SHOTS|QUICK\s+CUTS|ANGLE\b|ANGLES\b|INSERT\b|CLOSE\s*ON\b|CLOSE[\s-]*UP\b"
    r"|BACK\s+TO\b|INTERCUT\b|INTERCUTTING\b|[^-]*\bPOV\b)"
)


# A clock time as headings print it: ``9:30 AM``, ``4:30AM``, ``10 P.M.``, ``THREE FIFTY FIVE PM``.
_HOUR_WORDS = (
    "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN", "ELEVEN", "TWELVE",
)
_CLOCK_RE = re.compile(
    r"\b(?:(?P<hour>\d{1,2})(?:[:.]\d{2})?\s*"
    r"|(?P<hour_word>" + "|".join(_HOUR_WORDS) + r")(?:\s+[A-Z-]+){0,3}?\s+)"
    r"(?P<half>[AP])\.?\s?M\b"
)
# Words a part of a heading may hold and still be only a time (``5 MINUTES LATER``,
# ``A LITTLE LATER``), so it is no part of the location.
_RELATIVE_TIME_WORDS = frozenset(
    {
        "A", "AN", "FEW", "SOME", "LITTLE", "BIT", "MOMENT", "MOMENTS", "MINUTE", "MINUTES",
        "HOUR", "HOURS", "SECONDS", "SHORTLY", "MUCH", "THAT", "THE", "NEXT", "SAME", "TIME",
    }
)


def _clock_time_of_day(segment: str) -> str:
    """The part of the day a printed clock time falls in: a heading's ``9:00 PM`` is NIGHT.

    Buckets: 5-11 AM MORNING, noon-4 PM AFTERNOON, 5-8 PM EVENING, 9 PM-4 AM NIGHT, so the
    day/night split of a schedule counts a clock-timed scene with the others of its light.
    """
    match = _CLOCK_RE.search(segment)
    if match is None:
        return ""
    if match.group("hour") is not None:
        hour = int(match.group("hour"))
    else:
        hour = _HOUR_WORDS.index(match.group("hour_word")) + 1
    if not 1 <= hour <= 12:
        return ""
    hour24 = hour % 12 + (12 if match.group("half") == "P" else 0)
    if 5 <= hour24 <= 11:
        return "MORNING"
    if 12 <= hour24 <= 16:
        return "AFTERNOON"
    if 17 <= hour24 <= 20:
        return "EVENING"
    return "NIGHT"


def _time_word(segment: str) -> str:
    for phrase, normalized in _TIME_PHRASES.items():
        if phrase in segment:
            return normalized
    for word in _WORD_RE.findall(segment):
        if word in _TIME_WORDS:
            return _TIME_WORDS[word]
    return _clock_time_of_day(segment)


def _is_time_only(part: str) -> bool:
    """A heading part that says when, not where: ``5 MINUTES LATER``, ``9:30 AM``, ``NIGHT``."""
    if not normalize_time_of_day(part):
        return False
    if _clock_time_of_day(part):
        return True
    words = _WORD_RE.findall(_BRACKETED_RE.sub(" ", part.upper()))
    return all(word in _TIME_WORDS or word in _RELATIVE_TIME_WORDS for word in words)


def normalize_time_of_day(segment: str) -> str:
    """``NIGHT (1973)`` -> NIGHT, ``[THE NEXT] MORNING`` -> MORNING, ``A BIT LATER`` -> LATER.

    Bracketed remarks are ignored unless nothing outside them names a time. Returns "" when the
    segment names no time of day.
    """
    upper = segment.upper()
    outside = _BRACKETED_RE.sub(" ", upper)
    return _time_word(outside) or _time_word(upper)


def is_shot_heading(heading: str) -> bool:
    """A heading line that is a shot or montage marker (no INT/EXT), not a new place and time.

    Such a line must not replace the real heading of the scene it sits in, so it starts no scene of
    its own unless no real heading precedes it.
    """
    text = _WHITESPACE_RE.sub(" ", plain_text(heading)).upper().lstrip(".").strip()
    if _HEADING_PREFIX_RE.match(text) or re.search(r"\b(?:INT|EXT)\.", text):
        return False
    return bool(_SHOT_RE.match(text))


def parse_heading(heading: str) -> tuple[IntExt, str, str]:
    """Split a scene heading into (int_ext, location, time_of_day).

    ``INT.  WILL'S BEDROOM - NIGHT (1973)`` -> ("INT", "WILL'S BEDROOM", "NIGHT");
    ``INT. SAN FRANCISCO APARTMENT, DAY`` -> ("INT", "SAN FRANCISCO APARTMENT", "DAY");
    a forced heading without a prefix (``.BACK IN THE APARTMENT``) has int_ext "".
    The time is taken from the last `` - ``-separated part (or, when there is no dash, the
    last comma-separated part) when that part names a time of day; a clock time counts as the
    part of the day it falls in (``- 9:00 PM`` -> NIGHT), and parts before it that are only a
    time (``5 MINUTES LATER``) or a trailing bracketed remark are no part of the location.
    """
    text = _WHITESPACE_RE.sub(" ", plain_text(heading)).upper()
    if text.startswith(".") and not text.startswith(".."):
        text = text[1:].lstrip()
    text = _SCENE_NUMBER_RE.sub("", text)

    int_ext: IntExt = ""
    prefix_match = _HEADING_PREFIX_RE.match(text)
    if prefix_match:
        prefix = prefix_match.group("prefix")
        int_ext = "INT/EXT" if "/" in prefix else _INT_EXT_BY_PREFIX[prefix]  # type: ignore[assignment]
        text = text[prefix_match.end() :]

    time_of_day = ""
    location = text
    parts = _DASH_SPLIT_RE.split(text)
    separator = " - "
    if len(parts) == 1 and "," in text:
        parts = text.split(",")
        separator = ", "
    # A trailing remark in brackets alone (``NIGHT - [THE STORM]``) says neither where nor when.
    while len(parts) > 2 and not _BRACKETED_RE.sub("", parts[-1]).strip():
        parts = parts[:-1]
        location = separator.join(part.strip() for part in parts)
    if len(parts) > 1:
        candidate = normalize_time_of_day(parts[-1])
        if candidate:
            time_of_day = candidate
            parts = parts[:-1]
            # ``OLD MAN'S HOUSE - 5 MINUTES LATER - NIGHT``: the earlier time is no place either.
            while len(parts) > 1 and _is_time_only(parts[-1]):
                parts = parts[:-1]
            location = separator.join(part.strip() for part in parts)
    return int_ext, location.strip(" .,-"), time_of_day


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


def _speaking_characters(elements: Sequence[Element], known: Collection[str]) -> list[str]:
    seen: dict[str, None] = {}
    for element in elements:
        if element.type is ElementType.CHARACTER:
            name = character_name(element.text)
            if name:
                for speaker in speakers_of_cue(name, known):
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
    known_speakers: Collection[str],
) -> SceneRecord:
    plain_heading = plain_text(heading.text)
    int_ext, location, time_of_day = parse_heading(plain_heading)
    printed_lines = estimate_printed_lines(elements)
    pages = printed_lines / LINES_PER_PAGE
    return SceneRecord(
        scene_number=ordinal,
        scene_label=heading.scene_number or "",
        heading=plain_heading,
        int_ext=int_ext,
        location=location,
        time_of_day=time_of_day,
        characters=_speaking_characters(elements, known_speakers),
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
    known_speakers = cue_names(elements)
    for ordinal, index in enumerate(heading_indexes, start=1):
        next_index = heading_indexes[ordinal] if ordinal < len(heading_indexes) else len(elements)
        start = element_lines[index]
        boundary = element_lines[next_index] - 1 if next_index < len(elements) else total_lines
        end = _last_content_line(text_lines, start, boundary)
        scenes.append(
            _scene_record(
                ordinal, elements[index], elements[index:next_index], text_lines, start, end, known_speakers
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
