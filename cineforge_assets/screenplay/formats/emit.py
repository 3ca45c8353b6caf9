"""Write typed blocks recovered from a layout format (PDF, FDX, DOCX) as Fountain text.

The readers know an element's type from layout or markup; Fountain infers type from syntax. So
whenever the plain text would be read as something else (an action line that starts with
``INT.``, a shot heading without ``INT``/``EXT``, a mixed-case character name) we force the type
with Fountain's markers (``.``, ``!``, ``@``, ``>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cineforge_assets.screenplay.formats.detect import HEADING_RE

# Keys the Fountain spec defines for the title page, in the order they are usually written.
TITLE_PAGE_KEYS = ("Title", "Credit", "Author", "Source", "Draft date", "Contact", "Copyright", "Notes")

_CHARACTER_RE = re.compile(r"^[^a-z]*[A-Z][^a-z]*$")
_TRANSITION_RE = re.compile(r"^[^a-z]*TO:$")
_SPECIAL_START = ("!", "@", "~", "=", "#", ">", "[[", "/*", "\\")
_CONTINUED_RE = re.compile(r"\s*\((?:CONT'D|CONT’D|CONTINUED|CONT\.?)\)\s*$", re.I)
_EXTENSION_RE = re.compile(r"\s*(\([^)]*\))")
_CREDIT_RE = re.compile(r"^(written|screenplay|teleplay|story|script)?\s*(and\s+)?by\b|^by$", re.I)
_SOURCE_RE = re.compile(r"^(based on|adapted from|from the)\b", re.I)
_COPYRIGHT_RE = re.compile(r"(\(c\)|©|copyright)", re.I)
_DATE_RE = re.compile(
    r"(\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\b(19|20)\d{2}\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
    r"|draft)",
    re.I,
)


@dataclass
class Conversion:
    """What a format reader hands back: Fountain text plus what it noticed on the way."""

    text: str
    page_count: int | None = None
    warnings: list[str] = field(default_factory=list)


def clean(text: str) -> str:
    """Collapse layout whitespace inside a line, keep the words."""
    return re.sub(r"[ \t\u00a0]+", " ", text).strip()


def heading_lines(text: str) -> list[str]:
    text = clean(text)
    return [text if HEADING_RE.match(text) else "." + text]


def action_lines(text: str) -> list[str]:
    """Action paragraph; forced with ``!`` when Fountain would otherwise read it as something else."""
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    lines = [line if line.strip() else " " for line in lines]  # keep a blank line inside the paragraph
    first = lines[0].strip()
    needs_force = (
        HEADING_RE.match(first)
        or (first.startswith(".") and not first.startswith(".."))
        or first.startswith(_SPECIAL_START)
        or (len(lines) > 1 and _CHARACTER_RE.match(first))
        or _TRANSITION_RE.match(first)
    )
    if needs_force:
        lines[0] = "!" + lines[0]
    return lines


def character_line(text: str, dual: bool = False) -> str:
    text = clean(text)
    name = _EXTENSION_RE.sub("", text).strip()
    forced = not _CHARACTER_RE.match(name) or bool(HEADING_RE.match(text)) or text.startswith(_SPECIAL_START)
    line = ("@" if forced else "") + text
    return line + " ^" if dual else line


def parenthetical_line(text: str) -> str:
    text = clean(text)
    if not text.startswith("("):
        text = "(" + text
    if not text.endswith(")"):
        text = text + ")"
    return text


def dialogue_lines(text: str) -> list[str]:
    lines = [clean(line) for line in text.strip("\n").split("\n")]
    # A dialogue line that starts with "(" would be read as a parenthetical; a blank one would end the speech.
    return [(line or "  ") for line in lines]


def transition_line(text: str) -> str:
    text = clean(text)
    return text if _TRANSITION_RE.match(text) else "> " + text


def centered_line(text: str) -> str:
    return "> " + clean(text) + " <"


def strip_continued(cue: str) -> str:
    """``EDWARD (CONT'D)`` -> ``EDWARD``: the marker a page break adds, not a real extension."""
    return _CONTINUED_RE.sub("", cue).strip()


def speaker_name(cue: str) -> str:
    return _EXTENSION_RE.sub("", cue.lstrip("@")).replace("^", "").strip().upper()


def title_page_lines(title_page: dict[str, list[str]]) -> list[str]:
    """Fountain title page block (without the trailing blank line)."""
    lines: list[str] = []
    ordered = [k for k in TITLE_PAGE_KEYS if k in title_page] + [
        k for k in title_page if k not in TITLE_PAGE_KEYS
    ]
    for key in ordered:
        values = [clean(v) for v in title_page[key] if clean(v)]
        if not values:
            continue
        if len(values) == 1:
            lines.append(f"{key}: {values[0]}")
        else:
            lines.append(f"{key}:")
            lines.extend("    " + v for v in values)
    return lines


class FountainBuilder:
    """Accumulates Fountain paragraphs; a blank line separates each."""

    def __init__(self) -> None:
        self._title: list[str] = []
        self._blocks: list[list[str]] = []

    def title_page(self, title_page: dict[str, list[str]]) -> None:
        self._title = title_page_lines(title_page)

    def heading(self, text: str) -> None:
        if clean(text):
            self._blocks.append(heading_lines(text))

    def action(self, text: str) -> None:
        if text.strip():
            self._blocks.append(action_lines(text))

    def transition(self, text: str) -> None:
        if clean(text):
            self._blocks.append([transition_line(text)])

    def centered(self, text: str) -> None:
        if clean(text):
            self._blocks.append([centered_line(text)])

    def page_break(self) -> None:
        self._blocks.append(["==="])

    def speech(self, cue: str, parts: list[tuple[str, str]], dual: bool = False) -> None:
        """``parts``: ("parenthetical" | "dialogue", text) in reading order."""
        lines = [character_line(cue, dual)]
        for kind, text in parts:
            if not text.strip():
                continue
            if kind == "parenthetical":
                lines.append(parenthetical_line(text))
            else:
                lines.extend(dialogue_lines(text))
        if len(lines) == 1:
            # A cue with nothing under it is not a speech; keep the words as action.
            self.action(cue)
            return
        self._blocks.append(lines)

    def text(self) -> str:
        parts: list[str] = []
        if self._title:
            parts.append("\n".join(self._title))
        parts.extend("\n".join(block) for block in self._blocks)
        return "\n\n".join(parts) + "\n"


def classify_title_lines(
    centered: list[str], other: list[str], title: list[str] | None = None
) -> dict[str, list[str]]:
    """Centered lines: Title, Credit, Author(s), Source; the rest: Draft date, Contact, Copyright.

    ``title``: the title lines when the caller already knows them (e.g. set in a larger font).
    """
    page: dict[str, list[str]] = {"Title": list(title)} if title else {}
    stage = "author" if title else "title"
    for line in centered:
        if _COPYRIGHT_RE.search(line):
            page.setdefault("Copyright", []).append(line)
        elif _SOURCE_RE.match(line):
            page.setdefault("Source", []).append(line)
            stage = "source"
        elif stage in ("title", "author") and _CREDIT_RE.match(line):
            page.setdefault("Credit", []).append(line)
            stage = "author"
        elif stage == "title":
            page.setdefault("Title", []).append(line)
        elif stage == "author":
            page.setdefault("Author", []).append(line)
        else:
            page.setdefault("Source", []).append(line)
    for line in other:
        if _COPYRIGHT_RE.search(line):
            page.setdefault("Copyright", []).append(line)
        elif "Draft date" not in page and _DATE_RE.search(line) and len(line) < 40:
            page.setdefault("Draft date", []).append(line)
        else:
            page.setdefault("Contact", []).append(line)
    return page
