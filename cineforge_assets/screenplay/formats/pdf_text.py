"""Text of a PDF as positioned lines: every glyph's origin read with PDFium, lines rebuilt by position.

Why PDFium (``pypdfium2``), chosen by measurement (``bench/fidelity.py`` repeats it; figures in
BENCHMARKS.md). Speed, Big Fish (122 pages, 147k glyphs) on this project's 2-core machine: every
glyph's origin and advance box through PDFium 0.20 s; ``pypdf``'s ``visitor_text`` 0.66 s (and it
reports runs, not glyphs); ``pdfplumber``'s per-character objects 4.5 s. Robustness, on the
real-world PDFs: ``pypdf``'s visitor gives a run one origin, so a run that places its parts by
inline positioning glues them together: the reader built on it read the Final Draft production
draft (scene numbers in both margins) as 2 scenes of 36 (``... - NIGHT1 1``) and A Study in
Scarlet (Final Draft for Windows) at heading F1 0.00. The same layout logic fed PDFium's glyphs,
changing nothing else, read them as 36 of 36 scenes and at heading F1 0.93 (the rest was the
transcription's fault, see the bench's corrections). ``pdfplumber`` has glyph
boxes too, so it would be as robust, but 20x slower than PDFium and 7x slower than bare
``pypdf`` text extraction, past this project's budget (file -> scenes within 1.5x of that).

Reading order is rebuilt here, not taken from the stream: glyphs are grouped into rows by
baseline, sorted left to right, and a row is cut into segments where a horizontal gap is wider
than a few characters (a scene number in the margin, the right-hand speech of dual dialogue).
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, replace

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

COURIER_ADVANCE = 0.6  # glyph width / font size for Courier, the screenplay face
SEGMENT_GAP_CHARS = 2.5  # a gap wider than this (in character widths) starts a new segment
_SAME_BASELINE = 0.3  # rows: baselines closer than this fraction of the font size are one line
_INVISIBLE = {0, 0xFFFE, 0xFFFF}
# PDFium reports a hyphen that ends a line as 0x02; ligatures of proportional faces become letters.
_PDFIUM_MARKS = {0x02: "-", 0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi", 0xFB04: "ffl"}
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


@dataclass
class _Glyph:
    x: float
    y: float
    end: float
    char: str
    size: float
    bold: bool


def page_glyphs(textpage: pdfium.PdfTextPage) -> list[_Glyph]:
    """Visible glyphs of one page with origin, advance end, size and weight, in stream order.

    Font size and weight are asked once per run of glyphs on one baseline (they do not change
    inside a run in screenplay software's output), which keeps the per-glyph cost to three
    C calls.
    """
    handle = textpage.raw
    origin_x, origin_y = ctypes.c_double(), ctypes.c_double()
    box = pdfium_c.FS_RECTF()
    matrix = pdfium_c.FS_MATRIX()
    glyphs: list[_Glyph] = []
    size, bold, last_y, last_end = 12.0, False, None, None
    for index in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(handle, index)
        if code in _INVISIBLE or chr(code).isspace():
            continue
        char = _PDFIUM_MARKS.get(code) or chr(code)
        pdfium_c.FPDFText_GetCharOrigin(handle, index, origin_x, origin_y)
        pdfium_c.FPDFText_GetLooseCharBox(handle, index, box)
        x, y = origin_x.value, origin_y.value
        if last_y is None or last_end is None or abs(y - last_y) > 0.5 or not (-1 < x - last_end < size):
            size, bold = _font(handle, index, matrix)
        glyphs.append(_Glyph(x, y, max(box.right, x), char, size, bold))
        last_y, last_end = y, box.right
    return glyphs


def _font(handle: pdfium_c.FPDF_TEXTPAGE, index: int, matrix: pdfium_c.FS_MATRIX) -> tuple[float, bool]:
    nominal = pdfium_c.FPDFText_GetFontSize(handle, index) or 12.0
    scale = 1.0
    if pdfium_c.FPDFText_GetMatrix(handle, index, matrix):
        scale = (matrix.c**2 + matrix.d**2) ** 0.5 or 1.0
    weight = pdfium_c.FPDFText_GetFontWeight(handle, index)
    bold = weight >= 600
    if not bold:
        name = ctypes.create_string_buffer(128)
        flags = ctypes.c_int()
        if pdfium_c.FPDFText_GetFontInfo(handle, index, name, 128, flags):
            lowered = name.value.decode("latin-1").lower()
            bold = "bold" in lowered or "black" in lowered
    return nominal * scale, bold


def segments_from_glyphs(page: int, glyphs: list[_Glyph]) -> list[Segment]:
    """Rows by baseline, glyphs left to right, segments cut at wide gaps."""
    segments: list[Segment] = []
    for row in _rows(glyphs):
        row.sort(key=lambda g: g.x)
        current: list[_Glyph] = []
        text = ""
        for glyph in row:
            if current:
                last = current[-1]
                advance = last.size * COURIER_ADVANCE
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
            page = document[index]
            textpage = page.get_textpage()
            try:
                segments.extend(segments_from_glyphs(index, page_glyphs(textpage)))
            finally:
                textpage.close()
                page.close()
        return repair_mac_roman(segments), len(document)
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
