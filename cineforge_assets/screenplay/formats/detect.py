"""Decide what kind of file a source is: by content first, extension second.

Content wins because people rename files (``script.pdf.txt``, a ``.fdx`` saved from a web form);
the extension only breaks ties and raises confidence. For text we look at how many paragraphs
open with a screenplay-shaped line (scene heading, character cue, transition) to tell a Fountain
screenplay from prose or notes.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from cineforge_assets.screenplay.formats.errors import (
    CorruptSourceError,
    EmptySourceError,
    UnsupportedSourceError,
)
from resources.providers.screenplay_grammar import PRINTED_CUE_RE, SCENE_HEADING_RE, is_transition

FORMATS = ("fountain", "text", "fdx", "pdf", "docx")

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_TEXT_EXTENSIONS = {".fountain", ".spmd", ".txt", ".text", ".md", ""}
_FOUNTAIN_EXTENSIONS = {".fountain", ".spmd"}

HEADING_RE = SCENE_HEADING_RE  # the name the PDF/DOCX readers and the emitter import
FORCED_HEADING_RE = re.compile(r"^\.[^.\s]")
TITLE_KEY_RE = re.compile(
    r"^(title|credit|author|authors|source|draft date|contact|copyright|notes)\s*:", re.I
)


def detect_format(path: Path, data: bytes) -> tuple[str, float]:
    """Return ``(format, confidence)`` for a source file's bytes; raise a SourceError if unusable."""
    ext = path.suffix.lower()
    if not data:
        raise EmptySourceError(path, _format_from_extension(ext), "the file is empty (0 bytes).")
    head = data[:2048]
    if b"%PDF-" in head[:1024]:
        return "pdf", 1.0
    if head.startswith(b"PK\x03\x04"):
        return _detect_zip(path, data)
    if ext == ".pdf":
        raise CorruptSourceError(path, "pdf", "the file is named .pdf but has no PDF header.")
    if ext == ".docx":
        raise CorruptSourceError(path, "docx", "the file is named .docx but is not a Word (zip) document.")
    if head.startswith(UTF16_BOMS):
        data = data.decode("utf-16").encode("utf-8")  # Windows editors save "Unicode" text as UTF-16
        head = data[:2048]
    if _looks_binary(head):
        raise UnsupportedSourceError(
            path, "binary", "the file is binary data, not a screenplay format we read."
        )
    text_head = _decode_head(data[:8192])
    if _is_final_draft(text_head):
        return "fdx", 1.0
    if ext == ".fdx":
        raise CorruptSourceError(
            path, "fdx", "the file is named .fdx but has no <FinalDraft> document in it."
        )
    if text_head.lstrip().startswith("<?xml") or ext not in _TEXT_EXTENSIONS:
        raise UnsupportedSourceError(
            path, ext.lstrip(".") or "unknown", "this kind of file is not a screenplay format."
        )
    return _detect_text(ext, data)


def _format_from_extension(ext: str) -> str:
    return {".pdf": "pdf", ".fdx": "fdx", ".docx": "docx", ".fountain": "fountain"}.get(ext, "text")


def _detect_zip(path: Path, data: bytes) -> tuple[str, float]:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except zipfile.BadZipFile as exc:
        raise CorruptSourceError(path, "docx", f"the zip container is damaged ({exc}).") from exc
    if "word/document.xml" in names:
        return "docx", 1.0
    raise UnsupportedSourceError(path, "zip", "the zip archive is not a Word .docx document.")


def _looks_binary(head: bytes) -> bool:
    """NUL bytes or many control characters mean binary; UTF-16 text would need a BOM we don't accept."""
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls / len(head) > 0.05


def _decode_head(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _is_final_draft(text_head: str) -> bool:
    stripped = text_head.lstrip()
    return stripped.startswith("<") and "<FinalDraft" in text_head


def screenplay_shape_score(text: str) -> float:
    """Share of paragraphs that open with a screenplay-shaped line (0..1).

    Fountain screenplays score ~0.5 and above (every speech opens with a cue), prose scores ~0.
    Leading whitespace is ignored so indented plain-text exports count too.
    """
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    if not paragraphs:
        return 0.0
    shaped = sum(1 for p in paragraphs if _opens_like_screenplay(p))
    return shaped / len(paragraphs)


def _opens_like_screenplay(paragraph: str) -> bool:
    lines = [line.strip() for line in paragraph.strip("\n").split("\n")]
    first = lines[0]
    if HEADING_RE.match(first) or FORCED_HEADING_RE.match(first) or is_transition(first):
        return True
    if TITLE_KEY_RE.match(first):
        return True
    has_letters = any(c.isalpha() for c in first)
    return len(lines) > 1 and has_letters and bool(PRINTED_CUE_RE.match(first)) and first.upper() == first


def _detect_text(ext: str, data: bytes) -> tuple[str, float]:
    text = _decode_head(data[:200_000]).replace("\r\n", "\n").replace("\r", "\n")
    score = screenplay_shape_score(text)
    headings = sum(1 for line in text.split("\n") if HEADING_RE.match(line.strip()))
    screenplay_like = score >= 0.15 and (headings >= 1 or score >= 0.3)
    if ext in _FOUNTAIN_EXTENSIONS:
        return "fountain", round(min(1.0, 0.8 + score), 3) if screenplay_like else 0.6
    if screenplay_like:
        return "fountain", round(min(0.95, 0.5 + score), 3)
    return "text", round(min(0.95, 1.0 - score), 3)
