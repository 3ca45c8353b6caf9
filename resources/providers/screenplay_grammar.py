"""The screenplay grammar, written once for every reader of screenplay text: scene headings (what makes a
line one, and its parts: INT/EXT, location, time of day, scene number), transitions, character cues and
their extensions.

A leaf module (standard library only) so both the domain code (``cineforge_assets.screenplay``: format
detection, the Fountain parser, the scene splitter, the emitter that writes Fountain, the PDF/DOCX readers,
fidelity scoring) and the offline engine here in ``resources/`` can import it without ``resources/``
reaching up into ``cineforge_assets``.

The rules are the Fountain spec's as the parser applies them (``is_scene_heading``, ``is_transition``,
``is_cue``): the emitter asks the same questions to know when a line must be forced, so what it writes
reads back as it meant. ``PRINTED_CUE_RE`` is the stricter shape used on text not yet known to be a
screenplay. ``parse_scene_heading`` reads a line already known to be a heading, so it takes every prefix
form real scripts print, including those an unforced Fountain line may not start with.
"""
from __future__ import annotations

import re
from typing import Literal, NamedTuple

# What makes an unforced line a scene heading: one of the Fountain spec's prefixes (INT, EXT, EST, INT./EXT,
# INT/EXT, I/E) followed by a dot or a space, in any case. ``EXT./INT.`` passes as ``EXT.``; ``EXT/INT.`` does
# not, as in the spec, screenplain and the Final Draft file of Big Fish (typed as action there):
# a writer forces it (``.EXT/INT. CAR``). Use with ``.match``.
SCENE_HEADING_RE = re.compile(r"(?:INT\.?/EXT\.?|I/E|INT|EXT|EST)[ .]", re.IGNORECASE)

# What a heading's prefix means once a line is known to be a heading (unforced, forced, or typed as one in
# FDX/DOCX/PDF): every two-sided form Final Draft and real scripts print (``INT./EXT.``, ``EXT./INT.``,
# ``EXT/INT``, ``I/E``, spaces around the slash) is INT/EXT. The two-sided forms come first so the group
# takes ``EXT./INT`` whole rather than stopping at ``EXT``.
_PREFIX_AT_START_RE = re.compile(
    r"(?P<prefix>INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I\s*/\s*E|INT|EXT|EST)(?:\.|\s|$)\s*"
)

# A single period forces a heading (``.BACK IN THE APARTMENT``); ``...`` opens an ordinary line of action.
# Spaces may follow the period, which is how the writer forces a heading that itself starts with one.
FORCED_HEADING_MARK = "."
FORCED_HEADING_RE = re.compile(r"\.(?!\.)(?=\s*\S)")

# A scene number at the end of a heading, as the spec writes it: ``#12#``, ``#12A#``, ``#I-1-A#``, ``#1.#``.
_SCENE_NUMBER_RE = re.compile(r"\s*#([\w\-.]+)#\s*$")


def is_scene_heading(line: str) -> bool:
    """A line the parser reads as a scene heading (alone in its paragraph): a prefix, or forced with ``.``."""
    return bool(SCENE_HEADING_RE.match(line) or FORCED_HEADING_RE.match(line))


def split_scene_number(heading: str) -> tuple[str, str | None]:
    """``INT. HOUSE - DAY #12A#`` -> (``INT. HOUSE - DAY``, ``12A``); (heading, None) without a number."""
    numbered = _SCENE_NUMBER_RE.search(heading)
    if numbered is None:
        return heading, None
    return heading[: numbered.start()], numbered.group(1)


# ---------------------------------------------------------------- parts of a scene heading

IntExt = Literal["INT", "EXT", "INT/EXT", "EST", ""]

_INT_EXT_BY_PREFIX: dict[str, IntExt] = {"INT": "INT", "EXT": "EXT", "EST": "EST"}
_DASH_SPLIT_RE = re.compile(r"\s+(?:-{1,2}|–|—)\s+")
_BRACKETED_RE = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_WORD_RE = re.compile(r"[A-Z]+(?:-[A-Z]+)*")
_WHITESPACE_RE = re.compile(r"\s+")

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


class SceneHeading(NamedTuple):
    """A scene heading's parts: ``INT. HOUSE - NIGHT #12#`` is ("INT", "HOUSE", "NIGHT", "12")."""

    int_ext: IntExt
    location: str
    time_of_day: str  # normalized upper-case time (DAY, NIGHT, ...), "" if the heading names none
    scene_number: str | None


def parse_scene_heading(heading: str) -> SceneHeading:
    """Split a scene heading (markup already removed) into its parts.

    ``INT.  WILL'S BEDROOM - NIGHT (1973)`` -> ("INT", "WILL'S BEDROOM", "NIGHT");
    ``INT. SAN FRANCISCO APARTMENT, DAY`` -> ("INT", "SAN FRANCISCO APARTMENT", "DAY");
    every two-sided prefix (``INT./EXT.``, ``EXT/INT``, ``I/E``) is "INT/EXT"; a forced heading
    without a prefix (``.BACK IN THE APARTMENT``) has int_ext "".
    The time is taken from the last `` - ``-separated part (or, when there is no dash, the
    last comma-separated part) when that part names a time of day; a clock time counts as the
    part of the day it falls in (``- 9:00 PM`` -> NIGHT), and parts before it that are only a
    time (``5 MINUTES LATER``) or a trailing bracketed remark are no part of the location.
    """
    text = _WHITESPACE_RE.sub(" ", heading).strip().upper()
    if FORCED_HEADING_RE.match(text):
        text = text[len(FORCED_HEADING_MARK) :].lstrip()
    text, scene_number = split_scene_number(text)

    int_ext: IntExt = ""
    prefix_match = _PREFIX_AT_START_RE.match(text)
    if prefix_match:
        prefix = prefix_match.group("prefix")
        int_ext = "INT/EXT" if "/" in prefix else _INT_EXT_BY_PREFIX[prefix]
        text = text[prefix_match.end() :]
    location, time_of_day = _location_and_time(text)
    return SceneHeading(int_ext, location, time_of_day, scene_number)


def _location_and_time(text: str) -> tuple[str, str]:
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
        candidate = _normalize_time_of_day(parts[-1])
        if candidate:
            time_of_day = candidate
            parts = parts[:-1]
            # ``OLD MAN'S HOUSE - 5 MINUTES LATER - NIGHT``: the earlier time is no place either.
            while len(parts) > 1 and _is_time_only(parts[-1]):
                parts = parts[:-1]
            location = separator.join(part.strip() for part in parts)
    return location.strip(" .,-"), time_of_day


def _normalize_time_of_day(segment: str) -> str:
    """``NIGHT (1973)`` -> NIGHT, ``[THE NEXT] MORNING`` -> MORNING, ``A BIT LATER`` -> LATER.

    Bracketed remarks are ignored unless nothing outside them names a time. Returns "" when the
    segment names no time of day.
    """
    upper = segment.upper()
    outside = _BRACKETED_RE.sub(" ", upper)
    return _time_word(outside) or _time_word(upper)


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
    if not _normalize_time_of_day(part):
        return False
    if _clock_time_of_day(part):
        return True
    words = _WORD_RE.findall(_BRACKETED_RE.sub(" ", part.upper()))
    return all(word in _TIME_WORDS or word in _RELATIVE_TIME_WORDS for word in words)


# ---------------------------------------------------------------- transitions

TRANSITION_SUFFIX = "TO:"


def is_transition(line: str) -> bool:
    """A transition by the spec: a line in upper case ending in ``TO:`` (``CUT TO:``, ``SMASH CUT TO:``).

    ``TO:`` alone is not one (the parser reads it as action). Whitespace around the line is ignored.
    """
    text = line.strip()
    return len(text) > len(TRANSITION_SUFFIX) and text.isupper() and text.endswith(TRANSITION_SUFFIX)


# ---------------------------------------------------------------- character cues

# ``@`` forces a cue whatever its case (``@McCLANE``).
FORCED_CUE_MARK = "@"


# ``!`` forces action: such a line is never a cue, however it is cased.
FORCED_ACTION_MARK = "!"


def is_cue(line: str) -> bool:
    """A line the parser reads as a character cue when dialogue follows it: forced with ``@``, or in upper
    case before its first extension (``EDWARD (V.O.)``, ``EDWARD (cont'd)``), and not forced to action."""
    if line.startswith(FORCED_ACTION_MARK):
        return False
    if line.startswith(FORCED_CUE_MARK) and len(line) > len(FORCED_CUE_MARK):
        return True
    return line.split("(", 1)[0].isupper()


# A cue as screenwriting software prints one: a short name in capitals (digits and ``.'-#&`` allowed, at
# most 39 characters), any extensions, ``^`` for the second speaker of dual dialogue. Stricter than
# ``is_cue``: format detection uses it to tell a screenplay from prose in capitals.
PRINTED_CUE_RE = re.compile(r"^@?[A-Z0-9][A-Z0-9 .'\-#&]{0,38}(?:\s*\([^)]*\))*\s*\^?$")

# A line in capitals as the layout readers (PDF, DOCX) judge a cue or a heading: a capital A-Z and no
# lower-case a-z (digits, punctuation and accented capitals allowed).
CAPITALS_RE = re.compile(r"^[^a-z]*[A-Z][^a-z]*$")

# ---------------------------------------------------------------- cue extensions

# One parenthesised extension after a cue's name, with the space before it: ``(V.O.)``, ``(O.S.)``,
# ``(CONT'D)``, ``(ON PHONE)``.
CUE_EXTENSION_RE = re.compile(r"\s*\([^)]*\)")

# The "continued" mark a page break or a returning speaker adds to a cue, as programs spell it: CONT'D,
# CONT’D, CONTD (each with or without a final dot), CONTINUED, CONT, CONT.
_BARE_CONTINUED = r"CONT(?:'|\u2019)?D\.?"
CONTINUED_MARK = rf"(?:{_BARE_CONTINUED}|CONTINUED|CONT\.?)"
# The mark as an extension (with the space before it), in any case: ``(CONT'D)``, ``(cont'd)``, ``(CONTINUED)``.
CONTINUED_EXTENSION_RE = re.compile(rf"\s*\({CONTINUED_MARK}\)", re.IGNORECASE)

# Where a cue's name ends: at its first extension, or at the bare ``CONT'D`` some programs print without
# parentheses (``SHERLOCK CONT'D``).
CUE_NAME_END_RE = re.compile(rf"\s*\(.*$|\s+{_BARE_CONTINUED}$", re.IGNORECASE)
