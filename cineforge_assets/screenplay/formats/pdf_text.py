"""Text of a PDF as positioned lines: every glyph's origin read with PDFium, lines rebuilt by position.

Why PDFium (``pypdfium2``), chosen by measurement (``bench/fidelity.py`` repeats it; figures in
BENCHMARKS.md). Speed, Big Fish (122 pages, 147k glyphs), this project's 2-core machine, idle:
every glyph's origin and advance box through PDFium 0.20 s, ``pypdf``'s ``visitor_text`` 0.66 s
(runs, not glyphs), ``pdfplumber``'s per-character objects 4.5 s. With lines built from the
glyphs (this module, what the bench times) PDFium stays level with ``pypdf``'s plain
``extract_text()`` of the same file; pdfplumber, before any line building, is 7x slower than
that, past this project's budget (file -> scenes within 1.5x of ``extract_text()``).
Robustness, on the real-world PDFs: ``pypdf``'s visitor gives a run one origin, so a run that
places its parts by inline positioning glues them together: the reader built on it read the
Final Draft production draft (scene numbers in both margins) as 2 scenes of 36
(``... - NIGHT1 1``) and A Study in Scarlet (Final Draft for Windows) at heading F1 0.00. The same
layout logic fed PDFium's glyphs, changing nothing else, read them as 36 of 36 scenes and at
heading F1 0.93 (the rest was the transcription's fault, see the bench's corrections).
``pdfplumber`` has glyph boxes too, so it would be as robust, but not within the budget.

Reading order is rebuilt here, not taken from the stream: glyphs are grouped into rows by
baseline, sorted left to right, and a row is cut into segments where a horizontal gap is wider
than a few characters (a scene number in the margin, the right-hand speech of dual dialogue).
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, replace
from typing import NamedTuple

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

COURIER_ADVANCE = 0.6  # glyph width / font size for Courier, the screenplay face
SEGMENT_GAP_CHARS = 2.5  # a gap wider than this (in character widths) starts a new segment
DISPLAY_TYPE_FACTOR = 3.5  # glyphs this many times the body size on a text page are not script text
DISPLAY_TYPE_MAX_SHARE = 0.1  # ... and make up at most this share of the page's glyphs
_SAME_BASELINE = 0.3  # rows: baselines closer than this fraction of the font size are one line
_SKIPPED = {"\x00", "\ufffe", "\uffff", "\ufffd"}  # no character, or one PDFium could not map
# PDFium reports a hyphen that ends a line as 0x02; ligatures of proportional faces become letters.
_PDFIUM_MARKS = {"\x02": "-", "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"}
# Final Draft 7 for Mac embeds fonts whose codes are Mac Roman but says nothing of it, so a reader
# decodes them as Latin-1: ’ arrives as Õ (DEXTERÕS, donÕt), “ ” as Ò Ó, — as Ñ.
_MAC_ROMAN_AS_LATIN1 = str.maketrans(
    {"Õ": "’", "Ô": "‘", "Ò": "“", "Ó": "”", "Ð": "–", "Ñ": "—", "É": "…"}  # noqa: RUF001
)
_MAC_APOSTROPHE_RE = re.compile(r"[A-Za-z]Õ[A-Za-z]")


@dataclass
class Segment:
    """A run of text on one baseline (one line of one column)."""

    page: int
    x: float  # left edge of the first visible glyph
    y: float  # baseline, from the page bottom
    text: str  # without leading/trailing spaces
    size: float
    bold: bool = False
    end: float = 0.0  # right edge of the last glyph's advance; 0 when unknown

    @property
    def x_end(self) -> float:
        return self.end or self.x + len(self.text) * self.size * COURIER_ADVANCE


class _Glyph(NamedTuple):
    x: float
    y: float
    end: float
    char: str
    size: float
    bold: bool


def page_glyphs(textpage: pdfium.PdfTextPage) -> list[_Glyph]:
    """Visible glyphs of one page with origin, advance end, size and weight, in stream order.

    This loop runs once per glyph (150k for a feature), so it stays lean: the page's text comes
    in one call, a glyph costs two C calls (origin, advance box), and font size and weight are
    asked once per run of glyphs on one baseline (they do not change inside a run).
    """
    handle = textpage.raw
    origin_x, origin_y = ctypes.c_double(), ctypes.c_double()
    box = pdfium_c.FS_RECTF()
    matrix = pdfium_c.FS_MATRIX()
    get_origin, get_box = pdfium_c.FPDFText_GetCharOrigin, pdfium_c.FPDFText_GetLooseCharBox
    glyphs: list[_Glyph] = []
    size, bold, upright, last_y, last_end = 12.0, False, True, -1e9, -1e9
    for index, char in enumerate(_page_text(textpage)):
        if char == "\ufffe":  # the page text's stand-in for a line-end hyphen (and for nothing)
            char = chr(pdfium_c.FPDFText_GetUnicode(handle, index))
        if char in _SKIPPED or char.isspace():
            continue
        get_origin(handle, index, origin_x, origin_y)
        get_box(handle, index, box)
        x, y, end = origin_x.value, origin_y.value, box.right
        if abs(y - last_y) > 0.5 or not (-1 < x - last_end < size):
            size, bold, upright = _font(handle, index, matrix)
        last_y, last_end = y, end
        if upright:  # rotated text is a watermark or a margin stamp ("DRAFT"), never script text
            glyphs.append(_Glyph(x, y, end if end > x else x, _PDFIUM_MARKS.get(char, char), size, bold))
    return glyphs


def _page_text(textpage: pdfium.PdfTextPage) -> str:
    """The page's characters, one per PDFium character index (asked per index when a character
    outside the BMP would make the UTF-16 text longer than the index range)."""
    count = textpage.count_chars()
    buffer = ctypes.create_string_buffer(2 * (count + 1))
    pdfium_c.FPDFText_GetText(textpage.raw, 0, count, ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ushort)))
    text = buffer.raw[: 2 * count].decode("utf-16-le", errors="replace")
    if len(text) == count and not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i) or 0xFFFE) for i in range(count))


def _font(handle: pdfium_c.FPDF_TEXTPAGE, index: int, matrix: pdfium_c.FS_MATRIX) -> tuple[float, bool, bool]:
    """Size in points, bold, and whether the glyph stands upright on a horizontal baseline."""
    nominal = pdfium_c.FPDFText_GetFontSize(handle, index) or 12.0
    scale, upright = 1.0, True
    if pdfium_c.FPDFText_GetMatrix(handle, index, matrix):
        scale = (matrix.c**2 + matrix.d**2) ** 0.5 or 1.0
        upright = abs(matrix.b) <= 0.05 * (abs(matrix.a) + abs(matrix.b))
    weight = pdfium_c.FPDFText_GetFontWeight(handle, index)
    bold = weight >= 600
    if not bold:
        name = ctypes.create_string_buffer(128)
        flags = ctypes.c_int()
        if pdfium_c.FPDFText_GetFontInfo(handle, index, name, 128, flags):
            lowered = name.value.decode("latin-1").lower()
            bold = "bold" in lowered or "black" in lowered
    return nominal * scale, bold, upright


def without_display_type(glyphs: list[_Glyph]) -> list[_Glyph]:
    """Drop glyphs far larger than the page's body type when they are a small part of a page of
    text: a watermark laid across the page (``CONFIDENTIAL`` at 60 pt) whose baseline would
    otherwise join a line of the script. A title page, whose large title is a good share of its
    few glyphs, keeps it."""
    if not glyphs:
        return glyphs
    sizes = sorted(g.size for g in glyphs)
    limit = DISPLAY_TYPE_FACTOR * sizes[len(sizes) // 2]
    display = sum(1 for g in glyphs if g.size > limit)
    if not display or display > DISPLAY_TYPE_MAX_SHARE * len(glyphs):
        return glyphs
    return [g for g in glyphs if g.size <= limit]


def segments_from_glyphs(page: int, glyphs: list[_Glyph]) -> list[Segment]:
    """Rows by baseline, glyphs left to right, segments cut at wide gaps.

    Gaps are measured in the row's typical glyph advance, not in a width derived from the font
    size: an OCR text layer sets a word's glyphs in a squeezed or stretched invisible font, and a
    proportional face has no single width, but within one row the median advance is the pitch.
    """
    segments: list[Segment] = []
    for row in _rows(glyphs):
        row.sort(key=lambda g: g.x)
        advances = sorted(g.end - g.x for g in row if g.end > g.x)
        advance = advances[len(advances) // 2] if advances else row[0].size * COURIER_ADVANCE
        current: list[_Glyph] = []
        text = ""
        for glyph in row:
            if current:
                last = current[-1]
                if glyph.char == last.char and abs(glyph.x - last.x) < 0.25 * advance:
                    continue  # the same glyph drawn twice (fake bold, shadow): keep one
                gap = glyph.x - last.end
                if gap > SEGMENT_GAP_CHARS * advance:
                    segments.append(_segment(page, current, text))
                    current, text = [], ""
                elif gap > 0.4 * advance:
                    text += " " * max(1, round(gap / advance))
            current.append(glyph)
            text += glyph.char
        if current:
            segments.append(_segment(page, current, text))
    return segments


def _rows(glyphs: list[_Glyph]) -> list[list[_Glyph]]:
    rows: list[list[_Glyph]] = []
    baselines: list[float] = []
    for glyph in sorted(glyphs, key=lambda g: -g.y):
        if rows and baselines[-1] - glyph.y < _SAME_BASELINE * glyph.size:
            rows[-1].append(glyph)
        else:
            rows.append([glyph])
            baselines.append(glyph.y)
    return rows


def _segment(page: int, glyphs: list[_Glyph], text: str) -> Segment:
    sizes = sorted(g.size for g in glyphs)
    return Segment(
        page=page,
        x=glyphs[0].x,
        y=glyphs[0].y,
        text=text,
        size=sizes[len(sizes) // 2],
        bold=sum(g.bold for g in glyphs) * 2 > len(glyphs),
        end=glyphs[-1].end,
    )


def document_segments(data: bytes) -> tuple[list[Segment], int]:
    """All segments of a PDF's bytes and its page count; raises ``pdfium.PdfiumError`` if unreadable."""
    document = pdfium.PdfDocument(data)
    try:
        segments: list[Segment] = []
        for index in range(len(document)):
            try:
                page = document[index]
                textpage = page.get_textpage()
            except pdfium.PdfiumError:
                continue  # one damaged page should not sink the script; its text is simply missing
            try:
                segments.extend(segments_from_glyphs(index, without_display_type(page_glyphs(textpage))))
            finally:
                textpage.close()
                page.close()
        return repair_mac_roman(segments), len(document)
    finally:
        document.close()


def pages_with_images(data: bytes, pages: list[int]) -> list[int]:
    """Which of ``pages`` (0-based) carry a picture: a page with no text and a picture is a scan; a page
    with neither is blank (a page left empty on purpose), and OCR has nothing to find on it."""
    document = pdfium.PdfDocument(data)
    try:
        found: list[int] = []
        for index in pages:
            try:
                page = document[index]
            except pdfium.PdfiumError:
                continue
            try:
                if next(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)), None) is not None:
                    found.append(index)
            finally:
                page.close()
        return found
    finally:
        document.close()


def repair_mac_roman(segments: list[Segment]) -> list[Segment]:
    """Undo Mac Roman quotes read as Latin-1 when the document shows the tell-tale ``donÕt``
    several times and has no real curly apostrophe (a real Õ sits in a name, not mid-word in
    English contractions across the script)."""
    text = "\n".join(s.text for s in segments)
    if len(_MAC_APOSTROPHE_RE.findall(text)) < 3 or "’" in text:  # noqa: RUF001
        return segments
    return [replace(s, text=s.text.translate(_MAC_ROMAN_AS_LATIN1)) for s in segments]
