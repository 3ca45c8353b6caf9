"""Final Draft (.fdx) XML -> Fountain text.

Parsed with defusedxml: an FDX that declares entities (billion laughs, external entities) is
refused outright. Final Draft never writes a DTD, so nothing legitimate is lost.

Styled runs (``<Text Style="Bold+Underline">``) become Fountain emphasis only where Fountain keeps
emphasis as part of the words (action, dialogue, centered text); a heading, cue or transition is
written as plain text, since it names a place, a person or a cut and the style is only typography.
A ``Shot`` paragraph is a camera direction inside the current scene, so it is written as action and
never opens a scene. A scene heading's own ``Number`` becomes Fountain's ``#12A#``; the page count
comes from the scenes' ``SceneProperties`` (``Page`` and ``Length``) when Final Draft wrote them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element as XmlElement
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from cineforge_assets.screenplay.formats.emit import Conversion, FountainBuilder, classify_title_lines, clean
from cineforge_assets.screenplay.formats.errors import CorruptSourceError

_HEADING_TYPES = {"scene heading"}
_ACTION_TYPES = {"action", "general", "cast list", "outline", "outline body", "shot"}
# Scene numbers Fountain can carry between its # marks (``12``, ``12A``, ``A12``, ``2.3``).
_SCENE_NUMBER_RE = re.compile(r"^[\w\-.]+$")
_LENGTH_RE = re.compile(r"^\s*(?:(\d+)\s*)?(?:(\d+)\s*/\s*8)?\s*$")
_SPEECH_TYPES = {"parenthetical", "dialogue"}


@dataclass
class _Speech:
    cue: str
    parts: list[tuple[str, str]] = field(default_factory=list)
    dual: bool = False


def fdx_to_fountain(data: bytes, path: Path) -> Conversion:
    root = _parse(data, path)
    if root.tag != "FinalDraft":
        raise CorruptSourceError(path, "fdx", f"the XML root is <{root.tag}>, not <FinalDraft>.")
    warnings: list[str] = []
    builder = FountainBuilder()
    title_page = _title_page(root.find("TitlePage"))
    if title_page:
        builder.title_page(title_page)
    content = root.find("Content")
    if content is None:
        raise CorruptSourceError(path, "fdx", "the document has no <Content> element.")
    paragraphs = list(content.findall("Paragraph"))
    _emit_paragraphs(paragraphs, builder, warnings)
    return Conversion(text=builder.text(), page_count=page_count(paragraphs), warnings=warnings)


def page_count(paragraphs: list[XmlElement]) -> int | None:
    """Pages of the script as Final Draft paginated it: the page the last scene starts on plus the
    whole pages it runs over (``<SceneProperties Page="96" Length="2 3/8">`` -> 98). None when the
    file carries no scene properties (a converter's FDX), and the laid-out estimate is used instead.
    """
    last = 0
    for paragraph in paragraphs:
        properties = paragraph.find("SceneProperties")
        if properties is None:
            continue
        try:
            page = int((properties.get("Page") or "").strip())
        except ValueError:
            continue
        eighths = _eighths(properties.get("Length") or "")
        last = max(last, page + max(0, math.ceil(eighths / 8) - 1))
    return last or None


def _eighths(length: str) -> int:
    """``1 3/8`` -> 11, ``4/8`` -> 4; 0 when Final Draft wrote something else."""
    match = _LENGTH_RE.match(length)
    if not match or not any(match.groups()):
        return 0
    whole, part = match.groups()
    return int(whole or 0) * 8 + int(part or 0)


def _parse(data: bytes, path: Path) -> XmlElement:
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise CorruptSourceError(
            path,
            "fdx",
            f"the XML declares entities ({type(exc).__name__}), which Final Draft never writes; "
            "it was refused to guard against entity-expansion and external-entity attacks.",
            "Re-export the script from Final Draft (File > Save As .fdx) and drop the new file.",
        ) from exc
    except ParseError as exc:
        raise CorruptSourceError(path, "fdx", f"the XML is not well-formed ({exc}).") from exc
    return root


def paragraph_text(paragraph: XmlElement, styled: bool = True) -> str:
    """Concatenate the <Text> runs, turning Final Draft styles into Fountain emphasis when ``styled``."""
    pieces: list[str] = []
    for run in paragraph.findall("Text"):
        text = (run.text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
        pieces.append(_emphasise(text, run.get("Style", "")) if styled else text)
    return "".join(pieces)


# Paragraphs whose words are a name, a place or a cut: their style is typography, not emphasis.
_PLAIN_TYPES = _HEADING_TYPES | {"character", "transition"}


def _emphasise(text: str, style: str) -> str:
    styles = {s.strip().lower() for s in style.split("+") if s.strip()}
    core = text.strip()
    if not core or "\n" in core or not styles & {"bold", "italic", "underline"}:
        return text
    marked = core
    if "italic" in styles:
        marked = f"*{marked}*"
    if "bold" in styles:
        marked = f"**{marked}**"
    if "underline" in styles:
        marked = f"_{marked}_"
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return lead + marked + trail


def _emit_paragraphs(paragraphs: list[XmlElement], builder: FountainBuilder, warnings: list[str]) -> None:
    speech: _Speech | None = None

    def flush() -> None:
        nonlocal speech
        if speech is not None:
            builder.speech(speech.cue, speech.parts, dual=speech.dual)
            speech = None

    for paragraph in paragraphs:
        dual = paragraph.find("DualDialogue")
        if dual is not None:
            flush()
            _emit_dual(list(dual.findall("Paragraph")), builder)
            continue
        kind = (paragraph.get("Type") or "Action").strip().lower()
        text = paragraph_text(paragraph, styled=kind not in _PLAIN_TYPES)
        if kind == "character":
            flush()
            speech = _Speech(cue=clean(text))
        elif kind in _SPEECH_TYPES:
            if speech is None:
                warnings.append(
                    f"{paragraph.get('Type')} paragraph without a character cue kept as action: "
                    f"{clean(text)[:40]!r}"
                )
                builder.action(text)
            else:
                speech.parts.append((kind, text))
        else:
            flush()
            _emit_block(kind, paragraph, text, builder, warnings)
    flush()


def _emit_block(
    kind: str, paragraph: XmlElement, text: str, builder: FountainBuilder, warnings: list[str]
) -> None:
    if kind in _HEADING_TYPES:
        number = (paragraph.get("Number") or "").strip()
        builder.heading(f"{text} #{number}#" if _SCENE_NUMBER_RE.match(number) and clean(text) else text)
    elif kind == "transition":
        builder.transition(text)
    elif kind in ("new act", "end of act"):
        builder.centered(text)
    elif kind == "lyrics":
        builder.action("\n".join("~" + line for line in text.split("\n") if line.strip()))
    elif paragraph.get("Alignment", "").lower() == "center":
        builder.centered(text)
    else:
        if kind not in _ACTION_TYPES:
            warnings.append(f"unknown paragraph type {paragraph.get('Type')!r} kept as action")
        builder.action(text)


def _emit_dual(paragraphs: list[XmlElement], builder: FountainBuilder) -> None:
    speeches: list[_Speech] = []
    for paragraph in paragraphs:
        kind = (paragraph.get("Type") or "").strip().lower()
        text = paragraph_text(paragraph, styled=kind != "character")
        if kind == "character":
            speeches.append(_Speech(cue=clean(text), dual=bool(speeches)))
        elif kind in _SPEECH_TYPES and speeches:
            speeches[-1].parts.append((kind, text))
    for speech in speeches:
        builder.speech(speech.cue, speech.parts, dual=speech.dual)


def _title_page(title: XmlElement | None) -> dict[str, list[str]]:
    """Map Final Draft's free-form title page paragraphs onto Fountain title page keys."""
    if title is None:
        return {}
    content = title.find("Content")
    paragraphs = content.findall("Paragraph") if content is not None else title.findall("Paragraph")
    centered: list[str] = []
    other: list[str] = []
    for paragraph in paragraphs:
        for line in paragraph_text(paragraph, styled=False).split("\n"):
            line = clean(line)
            if not line:
                continue
            if paragraph.get("Alignment", "").lower() == "center":
                centered.append(line)
            else:
                other.append(line)
    return classify_title_lines(centered, other)
