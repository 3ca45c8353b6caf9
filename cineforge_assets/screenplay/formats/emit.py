"""Write typed blocks recovered from a layout format (PDF, FDX, DOCX) as Fountain text.

The readers know an element's type from layout or markup; Fountain infers type from syntax. So
whenever the plain text would be read as something else (an action line that starts with
``INT.``, a shot heading without ``INT``/``EXT``, a mixed-case character name) we force the type
with Fountain's markers (``.``, ``!``, ``@``, ``>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from resources.providers.screenplay_grammar import (
    FORCED_HEADING_MARK,
    SCENE_HEADING_RE,
    is_cue,
    is_scene_heading,
    is_transition,
)

# Keys the Fountain spec defines for the title page, in the order they are usually written.
TITLE_PAGE_KEYS = ("Title", "Credit", "Author", "Source", "Draft date", "Contact", "Copyright", "Notes")

_SPECIAL_START = ("!", "@", "~", "=", "#", ">", "[[", "/*", "\\")


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
    return [text if SCENE_HEADING_RE.match(text) else FORCED_HEADING_MARK + text]


def action_lines(text: str) -> list[str]:
    """Action paragraph; forced with ``!`` when Fountain would otherwise read it as something else."""
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    lines = [line if line.strip() else " " for line in lines]  # keep a blank line inside the paragraph
    first = lines[0].strip()
    needs_force = (
        is_scene_heading(first)
        or first.startswith(_SPECIAL_START)
        or (len(lines) > 1 and is_cue(first))
        or is_transition(first)
    )
    if needs_force:
        lines[0] = "!" + lines[0]
    return lines


def character_line(text: str, dual: bool = False) -> str:
    text = clean(text)
    forced = not is_cue(text) or bool(SCENE_HEADING_RE.match(text)) or text.startswith(_SPECIAL_START)
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
    return text if is_transition(text) else "> " + text


def centered_line(text: str) -> str:
    return "> " + clean(text) + " <"


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
    """Read a free-layout title page into Fountain title page keys.

    ``centered``: the lines set in the middle of the page, in reading order (title, credit, writers,
    source; on real pages also revision credits, "Directed by", dates and epigraphs). ``other``: the
    rest, usually bottom left or right (draft date, contact, copyright, "Property of ..."). ``title``:
    the lines the caller found set larger; they are read first, and whatever follows a credit among
    them (``DEXTER`` / ``by`` / ``James Manos, Jr.`` all in one large font) is read as such.

    Keys: Title, Credit, Author, Source, Draft date, Contact, Copyright; every line that is none of
    these (a template's ``TITLE`` placeholder, "Directed by" and the director, revision credits,
    "Property of ...", an episode number, an epigraph or dedication, code words) goes under
    :data:`LEFT_OUT_KEY`, so nothing on the page is lost and nothing lands in the writers' list by
    default. Hand-written rules rather than a model: a title page is a dozen short lines whose
    wording follows industry convention, and the rules are cheap, deterministic and testable.
    """
    reader = _TitlePageReader()
    for line in title or []:
        reader.centered(clean(line))
    if title and reader.stage == "title":
        reader.stage = "author"  # the large lines were the title; names may follow without a credit
    for line in centered:
        reader.centered(clean(line))
    reader.copyright_open = False
    for line in other:
        reader.other(clean(line))
    return reader.page


LEFT_OUT_KEY = "Left out"


# What separates the parts of a running header: a wide gap, or a dash between spaces.
_HEADER_GAP_RE = re.compile(r"\s{2,}")
_HEADER_DASH_RE = re.compile(r"\s+[-–—]\s+")


def read_running_header(parts: list[str]) -> dict[str, list[str]]:
    """Title page keys from a script's running header, for a PDF whose title page is missing.

    A program prints the title in the header of every page, often with the draft and its date:
    Final Draft's ``A STUDY IN PINK  SHOOTING SCRIPT - GREEN AMENDED  18/04/10``, a teleplay's
    ``"Community" - #303 - "Remedial Chaos Theory"`` (show, episode number, episode title), a
    revised page's ``THE ORCHARD - Pink Rev. 3/2/21``. ``parts``: the header's segments, left to
    right, page number removed. Dates and draft labels become the draft date, an episode number is
    left out, and what remains is the title (a show and an episode title joined by `` - ``).
    """
    pieces: list[str] = []
    for part in parts:
        for chunk in _HEADER_GAP_RE.split(part.strip()):
            pieces.extend(_split_title_from_draft(clean(chunk)))
    page: dict[str, list[str]] = {}
    titles: list[str] = []
    for piece in pieces:
        piece = piece.strip().strip("-–—").strip()
        if not piece or _PLACEHOLDER_RE.match(piece):
            continue
        if _EPISODE_RE.match(piece):
            page.setdefault(LEFT_OUT_KEY, []).append(piece)
        elif _is_draft_label(piece):
            page.setdefault("Draft date", []).append(piece)
        else:
            titles.append(piece.strip(_QUOTES).strip())
    if titles:
        page["Title"] = [" - ".join(t for t in titles if t)]
    return page


def _is_draft_label(text: str) -> bool:
    return len(text) <= 60 and bool(_DATE_LINE_RE.search(text) or _DRAFT_LINE_RE.search(text))


def _split_title_from_draft(chunk: str) -> list[str]:
    """``THE ORCHARD - Pink Rev. 3/2/21`` -> the title and its draft label, cut at the first dash after
    which everything is a draft label; a title with a dash in it (``FACE - OFF``) stays whole."""
    for dash in _HEADER_DASH_RE.finditer(chunk):
        head, tail_parts = chunk[: dash.start()], _HEADER_DASH_RE.split(chunk[dash.end() :])
        if all(_is_draft_label(t) or _EPISODE_RE.match(t) for t in tail_parts):
            # ``SHOOTING SCRIPT - GREEN AMENDED`` is one label; ``THE ORCHARD - Pink Rev.`` is two parts
            return [chunk] if _is_draft_label(head) else [head, *tail_parts]
    return [chunk]

# Credits of the people who wrote this script; another credit's names are not the writers.
_WRITING_CREDIT_RE = re.compile(
    r"^(?:(?:original\s+)?(?:written|screenplay|teleplay|story|screen\s*story|script|adaptation)"
    r"(?:\s*(?:&|and|/|,)\s*(?:written|screenplay|teleplay|story|screen\s*story|script))*\s+)?by\b[:\s]*",
    re.I,
)
_OTHER_CREDIT_RE = re.compile(
    r"^(?:directed|produced|executive\s+produced|created|developed|presented|current\s+revisions?"
    r"|revisions?|revised|rewrites?|polish|additional\s+\w+|edited|based\s+on\s+characters\s+created)"
    r"(?:\s+\w+)?\s+by\b[:\s]*",
    re.I,
)
_SOURCE_START_RE = re.compile(
    r"^(?:based\s+(?:up)?on|adapted\s+from|inspired\s+by|from\s+the\s+(?:novel|book|story|play|comic|short"
    r"|article|graphic|memoir)|suggested\s+by)\b",
    re.I,
)
_COPYRIGHT_LINE_RE = re.compile(r"\(c\)|©|\bcopyright\b|all\s+rights\s+reserved", re.I)
_PROPERTY_RE = re.compile(r"^(?:this\s+script\s+is\s+(?:the\s+)?)?property\s+of\b", re.I)
_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_DATE_LINE_RE = re.compile(
    r"\b\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\b"
    rf"|\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{2,4}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+(?:\d{{2,4}}|\W\d{{2}})"
    rf"|^(?:{_MONTHS})\.?,?\s+\d{{4}}$|^(?:19|20)\d{{2}}$",
    re.I,
)
_REVISION_COLOURS = (
    r"white|blue|pink|yellow|green|goldenrod|buff|salmon|cherry|tan|gray|grey|ivory|lavender|double\s+\w+"
)
_DRAFT_LINE_RE = re.compile(
    r"\b(?:draft|rev|revised|revisions?|shooting\s+script|production\s+script|amended|pages)\b"
    rf"|^(?:{_REVISION_COLOURS})(?:\s+(?:revisions?|pages|draft|amended))?\s*$",
    re.I,
)
# How to reach someone: phone, e-mail, web, street or PO box, ZIP code, WGA registration.
_ADDRESS_LINE_RE = re.compile(
    r"@|\bwww\.|https?://|\(?\b\d{3}\)?[\s./-]*\d{3}[\s.-]\d{4}\b|\bp\.?\s*o\.?\s+box\b|\b[A-Z]{2}\s+\d{5}\b"
    r"|\b\d+\s+(?:[A-Z][\w.']*\s+){1,4}(?:street|st\.?|avenue|ave\.?|boulevard|blvd\.?|road|rd\.?|drive|dr\.?"
    r"|lane|ln\.?|way|place|pl\.?|suite|floor|square)\b"
    r"|\bwga\w*\b|\bregist(?:ered|ration)\b|\bphone\b|\btel\b|\bfax\b",
    re.I,
)
# Who to reach: a production company, an agency, a management firm.
_COMPANY_LINE_RE = re.compile(
    r"\b(?:productions?|entertainment|pictures|studios?|films|agency|management|partners|inc\.?|llc|ltd\.?"
    r"|company|network|media|literary|associates|attorneys?|esq\.?|agent)\b",
    re.I,
)
# A template's placeholders, left where a title or a name should be.
_PLACEHOLDER_RE = re.compile(
    r"^[\[<(]?\s*(?:(?:script|screenplay|episode|show|your|working)\s+)?(?:title|name|author|writer|"
    r"writer'?s?\s+name|author\s+name|address|phone(?:\s+number)?|e-?mail|contact(?:\s+info)?|date"
    r"|draft\s+date)(?:\s+(?:here|goes\s+here|of\s+(?:script|screenplay)))?\s*[\]>)]?$",
    re.I,
)
_EPISODE_RE = re.compile(r"^(?:episode|ep\.?|prod(?:uction)?\.?\s*(?:#|no\.?|number))\s*#?\s*[\w.-]+$|^#\s*\d+$", re.I)
_NAME_SPLIT_RE = re.compile(r"\s*(?:&|\band\b|,(?!\s*(?:jr|sr|ii|iii|iv)\b\.?))\s*", re.I)
_NAME_WORD_RE = re.compile(
    r"^(?:[A-Z\u00C0-\u00DE][\w\u00C0-\u024F.'’-]*|[A-Z]\.|de|da|di|del|der|van|von|la|le|du|dos|bin|al|mc\w+)$"
)
_SUFFIX_RE = re.compile(r",?\s+(?:jr|sr|ii|iii|iv)\b\.?$", re.I)
# Words of a sentence or a title, never of a person's name (so "The Lord Is My Shepherd" is no writer).
_NOT_NAME_WORDS = frozenset(
    {"the", "a", "an", "of", "in", "on", "at", "for", "to", "with", "from", "is", "are", "was", "were", "be"}
    | {"my", "your", "our", "his", "her", "their", "who", "what", "when", "where", "not", "no", "all", "this"}
)
_NAME_CONNECTOR_RE = re.compile(r"^(?:&|and)$", re.I)
_QUOTES = "\"'“”‘’«»"


def is_placeholder(text: str) -> bool:
    """A template's stand-in (``TITLE``, ``[Your Name]``, ``Writer's Name``), not a real value."""
    return bool(_PLACEHOLDER_RE.match(text.strip()))


def split_names(line: str) -> list[str]:
    """``Dan Harmon & Chris McKenna`` -> both names; ``James Manos, Jr.`` stays one name."""
    return [part.strip() for part in _NAME_SPLIT_RE.split(line) if part.strip()]


def is_person_name(text: str) -> bool:
    """Two to five capitalised words (particles and initials allowed): how a writer is credited.

    One word is not taken (a code word or a placeholder is likelier than a mononymous writer).
    """
    core = _SUFFIX_RE.sub("", text.strip())
    words = core.split()
    if not 2 <= len(words) <= 5 or any(c.isdigit() for c in core):
        return False
    if any(word.lower().strip(".,") in _NOT_NAME_WORDS for word in words):
        return False
    return all(_NAME_WORD_RE.match(word) for word in words) and not _PLACEHOLDER_RE.match(core)


def _is_author_line(line: str) -> bool:
    names = split_names(line)
    return bool(names) and all(is_person_name(name) for name in names)


class _TitlePageReader:
    """One pass over the title page's lines; ``stage`` is where in the credit block we are."""

    def __init__(self) -> None:
        self.page: dict[str, list[str]] = {}
        self.stage = "title"  # title -> author -> (other_credit | source | after)
        self.copyright_open = False

    def add(self, key: str, line: str) -> None:
        if line:
            self.page.setdefault(key, []).append(line)

    def common(self, line: str) -> bool:
        """Lines that mean the same wherever they stand; True when handled.

        While the title is being read only unmistakable lines are taken here, so a title such as
        ``THE NETWORK`` or ``FIRST DRAFT`` stays a title.
        """
        in_title = self.stage == "title"
        if _PLACEHOLDER_RE.match(line):
            self.add(LEFT_OUT_KEY, line)
        elif _COPYRIGHT_LINE_RE.search(line):
            self.add("Copyright", line)
            self.copyright_open = not line.rstrip().endswith((".", "!", "?"))
        elif _PROPERTY_RE.match(line) or _EPISODE_RE.match(line):
            self.add(LEFT_OUT_KEY, line)
        elif _ADDRESS_LINE_RE.search(line) and not (in_title and _DATE_LINE_RE.search(line)):
            self.add("Contact", line)
        elif _DATE_LINE_RE.search(line) and len(line) <= 60:
            self.add("Draft date", line)
        elif in_title:
            return False
        elif _DRAFT_LINE_RE.search(line) and len(line) <= 60:
            self.add("Draft date", line)
        elif _COMPANY_LINE_RE.search(line):
            self.add("Contact", line)
        else:
            return False
        return True

    def same_case_as_authors(self, line: str) -> bool:
        """A page sets its writers' names in one style; a line in capitals after ``Rosa Diaz`` (or
        in mixed case after ``ROSA DIAZ``) is something else, such as a list of code words."""
        authors = self.page.get("Author")
        return not authors or authors[0].isupper() == line.isupper()

    def credit(self, line: str, match: re.Match[str], stage: str, key: str) -> None:
        """A credit line; the names on the same line (``Written by Max Landis``) follow it."""
        credit, rest = line[: match.end()].strip(), line[match.end() :].strip()
        self.add(key, credit)
        self.stage = stage
        if rest:
            self.centered(rest)

    def centered(self, line: str) -> None:
        if not line:
            return
        if self.copyright_open and not _COPYRIGHT_LINE_RE.search(line):
            self.add("Copyright", line)
            self.copyright_open = not line.endswith((".", "!", "?"))
            return
        source = _SOURCE_START_RE.match(line)
        if source:
            self.add("Source", line)
            self.stage = "source"
            return
        writing = _WRITING_CREDIT_RE.match(line)
        if writing and self.stage in ("title", "author", "after"):
            self.credit(line, writing, "author", "Credit")
            return
        other_credit = _OTHER_CREDIT_RE.match(line)
        if other_credit:
            self.credit(line, other_credit, "other_credit", LEFT_OUT_KEY)
            return
        if self.stage == "source":
            # "Based on the novel" / "Darkly Dreaming Dexter" / "by" / "Jeff Lindsay": one source.
            if (
                _COPYRIGHT_LINE_RE.search(line)
                or _PROPERTY_RE.match(line)
                or _ADDRESS_LINE_RE.search(line)
                or _DATE_LINE_RE.search(line)
            ):
                self.common(line)
            else:
                self.add("Source", line)
            return
        if self.common(line):
            return
        if self.stage == "title":
            self.add("Title", line.strip(_QUOTES).strip())
        elif self.stage == "author" and _is_author_line(line) and self.same_case_as_authors(line):
            self.add("Author", line)
        elif self.stage == "author" and _NAME_CONNECTOR_RE.match(line):
            self.add("Author", line)  # "Dan Harmon" / "&" / "Chris McKenna": the team goes on
        elif self.stage == "other_credit" and _is_author_line(line):
            self.add(LEFT_OUT_KEY, line)
        else:
            # Not a name where names stand: an epigraph, a dedication, code words. Later names are
            # not taken as writers unless a writing credit comes again.
            self.add(LEFT_OUT_KEY, line)
            self.stage = "after"

    def other(self, line: str) -> None:
        if not line:
            return
        if self.copyright_open and not _COPYRIGHT_LINE_RE.search(line):
            self.add("Copyright", line)
            self.copyright_open = not line.endswith((".", "!", "?"))
            return
        if self.common(line):
            return
        if _SOURCE_START_RE.match(line):
            self.add("Source", line)
        elif _is_author_line(line) or (len(line.split()) <= 4 and not line.endswith(".")):
            self.add("Contact", line)  # a name or a short line in the corner: part of the contact block
        else:
            self.add(LEFT_OUT_KEY, line)  # a sentence: a dedication, a note, a legend
