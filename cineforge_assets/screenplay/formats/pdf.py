"""Screenplay PDF -> Fountain text, rebuilt from page layout.

A screenplay PDF encodes element types only through position: scene headings and action sit at
the left margin, character cues ~2in further in, dialogue ~1in in, parentheticals between,
transitions flush right. We read every glyph's position with PDFium (``pdf_text``, where the
measurement that chose it over ``pypdf``'s text visitor and ``pdfplumber`` is written up; the
bench repeats it into BENCHMARKS.md), rebuild lines by position (so a cue drawn after
its dialogue still leads it), and remove page furniture: running headers and footers, page
numbers, ``CONTINUED`` lines, revision marks, and scene numbers in either margin (or typed before
the slugline), which are kept on the line and written as Fountain's ``#12A#``. We then learn
this document's columns from statistics (action = the leftmost column of long lines; cue = caps
line directly followed by a less-indented line; dialogue = what follows cues) and walk the lines
top to bottom, using vertical gaps as blank lines and undoing what pagination added: ``(MORE)`` /
``(CONT'D)`` continuation cues, speeches and paragraphs split across pages, and hard-wrapped
lines. A caps line at the action margin is a heading, a shot or action, never a cue.
``bench/pdf_traits.py`` measures all this on the corpus drawn the way other screenwriting programs
draw a page.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from cineforge_assets.screenplay.formats.emit import (
    Conversion,
    FountainBuilder,
    classify_title_lines,
    read_running_header,
)
from cineforge_assets.screenplay.formats.errors import (
    CorruptSourceError,
    EncryptedPdfError,
    ScannedPdfError,
)
from cineforge_assets.screenplay.formats.ocr import add_text_layer
from cineforge_assets.screenplay.formats.pdf_text import (
    COURIER_ADVANCE,
    Segment,
    document_segments,
    pages_with_images,
)
from cineforge_assets.screenplay.fountain import character_name
from resources.providers.screenplay_grammar import CAPITALS_RE, CONTINUED_EXTENSION_RE, CUE_EXTENSION_RE
from resources.providers.screenplay_grammar import SCENE_HEADING_RE as HEADING_RE

TEXT_LAYER_MIN_CHARS_PER_PAGE = 2  # below this the "text" is stray marks on scanned images
# A page of a typed PDF with fewer visible characters than this and a picture is a scanned page; a
# typed page holds hundreds, the barest (a title, an act break) a dozen or more.
SCANNED_PAGE_MAX_CHARS = 10
MARGIN_BAND = 0.9 * 72  # pt from the top or bottom edge: page headers and footers, never script text

# 12.  12A.  (12)  - 12 -  Page 12  Page 12 of 98  12/98
_PAGE_NUMBER_RE = re.compile(r"^(?:page\s+)?[(\-–]?\s*\d{1,4}[A-Z]?\s*[)\-–]?\.?(?:\s*(?:of|/)\s*\d+)?$", re.I)
_MORE_RE = re.compile(r"^\(\s*MORE\s*\)$", re.I)
# CONTINUED:  (CONTINUED)  CONTINUED: (2)  CONTINUED (2):  CONT'D
_CONTINUED_RE = re.compile(r"^\(?\s*(?:CONTINUED|CONT'D|CONT’D)\s*\)?:?$|^CONTINUED:?\s*\(\d+\):?$", re.I)
# Printed scene numbers: 12, 12A, A12, 12AB, 2.3, 2.3A; a revision mark may cling to either side.
_SCENE_NUMBER_RE = re.compile(r"^[*†]?([A-Z]{0,2}\d{1,4}(?:\.\d{1,3})?[A-Z]{0,3})\.?[*†]?$")
_TYPED_NUMBER_RE = re.compile(r"^([A-Z]{0,2}\d{1,4}[A-Z]{0,3})[.)]?\s+")
_GLUED_NUMBER_RE = re.compile(r"\s+([*†]?([A-Z]{0,2}\d{1,4}(?:\.\d{1,3})?[A-Z]{0,3})\.?[*†]?)$")
_REVISION_MARK_RE = re.compile(r"^[*†‡]+$")
_OMITTED_RE = re.compile(r"^[*\s]*(?:SCENES?\s+)?(?:OMITTED|OMIT|DELETED)[.*\s]*$", re.I)  # a numbered slot, no scene
# Camera directions set at the action margin, often in bold like the sluglines: never a heading
# (and, being at the action margin, never a cue either).
SHOT_RE = re.compile(
    r"^(?:ANGLE|INSERT|CLOSE|CLOSEUP|CLOSE-UP|EXTREME|WIDE|MEDIUM|TIGHT|REVERSE|OVER|TRACKING|AERIAL|"
    r"BACK TO|SERIES OF SHOTS|MONTAGE|END MONTAGE|INTERCUT|FREEZE FRAME|SUPER|TITLE|SPLIT SCREEN)\b"
    r"|\bPOV\b|\bSHOT\b|\bON SCREEN\b"
)
# Revision page colours in the order studios issue them, as a revised page's header names them.
_REVISION_COLOUR_RE = re.compile(
    r"\b(?:white|blue|pink|yellow|green|goldenrod|buff|salmon|cherry|tan|gr[ae]y|ivory)\b", re.I
)
_REVISION_LABEL_RE = re.compile(r"\b(?:rev(?:ision|ised)?|draft|amended)\b", re.I)
_DATE_RE = re.compile(r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b")
_TRAILING_REVISION_MARK_RE = re.compile(r"\s+[*†‡]+$")
_NO_LOWER_RE = re.compile(r"^[^a-z]*$")
# A slugline typed in mixed case still has the slugline's punctuated prefix: Int. / Ext. / Int./Ext. / I/E
_TYPED_HEADING_RE = re.compile(r"^(?:(?:INT|EXT)\.?/(?:INT|EXT)\.?|I/E\.?|INT\.|EXT\.|EST\.)\s*[A-Z0-9]", re.I)
_TERMINAL_SENTENCE_RE = re.compile(r"[.!?]$")
_TERMINAL_RE = re.compile(r"[.!?:\"'”’)\]\-—]$")


@dataclass
class Row:
    page: int
    y: float
    segments: list[Segment]
    scene_number: str = ""  # printed in the margin beside this line (a numbered heading)

    @property
    def first(self) -> Segment:
        return self.segments[0]


@dataclass
class Layout:
    """The columns this document uses, in PDF points."""

    char: float
    leading: float
    action: float
    dialogue: float
    parenthetical: float
    cue: float
    right: float
    center: float
    action_width: int
    dialogue_width: int
    bottom: float
    bold_headings: bool = False  # this document sets its scene headings in bold


@dataclass
class _Line:
    role: str  # action (incl. headings), dialogue, parenthetical, cue, transition, centered, continued-cue
    text: str
    row: Row
    indent: int = 0  # extra spaces relative to the column (kept for indented action)


def pdf_to_fountain(data: bytes, path: Path) -> Conversion:
    reader = _open(data, path)
    warnings: list[str] = []
    segments = _segments(data, path)
    if _visible_chars(segments) < TEXT_LAYER_MIN_CHARS_PER_PAGE * len(reader.pages):
        reader, segments = _ocr_or_fail(data, path, reader, warnings)
    else:
        segments = _ocr_scanned_pages(data, path, len(reader.pages), segments, warnings)
    rows = group_rows(segments)
    header = running_header(rows, len(reader.pages), _page_height(reader))
    rows = drop_page_furniture(rows, len(reader.pages), _page_height(reader))
    title_rows, body_rows = split_title_page(rows)
    if not body_rows:
        body_rows, title_rows = title_rows, []
    layout = learn_layout(body_rows)
    builder = FountainBuilder()
    title_page = read_title_page(title_rows, layout, _page_width(reader)) if title_rows else {}
    if "Title" not in title_page and header:
        # No title page (or one without a title): the running header names the script.
        title_page = {**read_running_header(header), **title_page}
    if title_page:
        builder.title_page(title_page)
    build_fountain(body_rows, layout, builder, warnings)
    return Conversion(text=builder.text(), page_count=len(reader.pages), warnings=warnings)


# --------------------------------------------------------------------------- opening


def _open(data: bytes, path: Path) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise CorruptSourceError(path, "pdf", f"pypdf could not read the file ({exc}).") from exc
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")  # owner-password-only PDFs open with an empty user password
        except (FileNotDecryptedError, NotImplementedError, PdfReadError) as exc:
            raise EncryptedPdfError(path, "pdf", f"the PDF is encrypted ({exc}).") from exc
        if not opened:
            raise EncryptedPdfError(path, "pdf", "the PDF is password protected.")
    try:
        if len(reader.pages) == 0:
            raise CorruptSourceError(path, "pdf", "the PDF has no pages.")
    except (PdfReadError, ValueError, KeyError) as exc:
        raise CorruptSourceError(path, "pdf", f"the page tree is damaged ({exc}).") from exc
    return reader


def _visible_chars(segments: Iterable[Segment]) -> int:
    return sum(len(s.text.replace(" ", "")) for s in segments)


def _ocr_or_fail(
    data: bytes, path: Path, reader: PdfReader, warnings: list[str]
) -> tuple[PdfReader, list[Segment]]:
    """No text layer: OCR it (formats/ocr.py), or say what to install."""
    ocr_reader = PdfReader(io.BytesIO(add_text_layer(data, path, len(reader.pages))))
    segments = extract_segments(ocr_reader)
    if _visible_chars(segments) == 0:
        raise ScannedPdfError(path, "pdf", "it has no text layer and OCR found no text.")
    warnings.append("PDF had no text layer; text recovered with OCR (check names and numbers)")
    return ocr_reader, segments


def scanned_pages(data: bytes, segments: list[Segment], page_count: int) -> list[int]:
    """Pages (0-based) of a typed PDF that are pictures of text: next to no text layer, and an image."""
    chars: Counter[int] = Counter()
    for segment in segments:
        chars[segment.page] += len(segment.text.replace(" ", ""))
    textless = [page for page in range(page_count) if chars[page] < SCANNED_PAGE_MAX_CHARS]
    return pages_with_images(data, textless) if textless else []


def _ocr_scanned_pages(
    data: bytes, path: Path, page_count: int, segments: list[Segment], warnings: list[str]
) -> list[Segment]:
    """A typed PDF with some scanned pages (a typed title page on a scanned script, scanned inserts in a
    typed draft): OCR those pages only and read the rest from their text layer. Without OCR, or when
    it fails, the typed pages are still read and a warning names the pages left out."""
    pages = scanned_pages(data, segments, page_count)
    if not pages:
        return segments
    printed = ", ".join(str(page + 1) for page in pages)
    try:
        ocr_segments = extract_segments(
            PdfReader(io.BytesIO(add_text_layer(data, path, page_count, pages=pages)))
        )
    except ScannedPdfError as exc:
        warnings.append(f"page(s) {printed} are scanned images and were left out: {exc.problem} {exc.hint}")
        return segments
    scanned = set(pages)
    recognised = [s for s in ocr_segments if s.page in scanned]
    warnings.append(f"page(s) {printed} had no text layer; text recovered with OCR (check names and numbers)")
    kept = [s for s in segments if s.page not in scanned]
    return sorted(kept + recognised, key=lambda s: s.page)


# --------------------------------------------------------------------------- extraction


def extract_segments(reader: PdfReader) -> list[Segment]:
    """Every line segment of an opened PDF (the OCR path hands over a pypdf reader of its output)."""
    reader.stream.seek(0)
    try:
        return document_segments(bytes(reader.stream.read()))[0]
    except pdfium.PdfiumError:
        return []


def _segments(data: bytes, path: Path) -> list[Segment]:
    try:
        return document_segments(data)[0]
    except pdfium.PdfiumError as exc:
        raise CorruptSourceError(path, "pdf", f"PDFium could not read the file ({exc}).") from exc


def group_rows(segments: list[Segment]) -> list[Row]:
    """Segments on one baseline form a row; rows in reading order."""
    rows: list[Row] = []
    by_page: dict[int, list[Segment]] = {}
    for segment in segments:
        by_page.setdefault(segment.page, []).append(segment)
    for page in sorted(by_page):
        for segment in sorted(by_page[page], key=lambda s: (-s.y, s.x)):
            if rows and rows[-1].page == page and abs(rows[-1].y - segment.y) < 0.3 * segment.size:
                rows[-1].segments.append(segment)
            else:
                rows.append(Row(page, segment.y, [segment]))
    for row in rows:
        row.segments.sort(key=lambda s: s.x)
    return rows


# --------------------------------------------------------------------------- page furniture


def _page_width(reader: PdfReader) -> float:
    try:
        return float(reader.pages[0].mediabox.width)
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError):
        return 612.0


def _page_height(reader: PdfReader) -> float:
    try:
        return float(reader.pages[0].mediabox.height)
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError):
        return 792.0


def drop_page_furniture(rows: list[Row], page_count: int, page_height: float = 792.0) -> list[Row]:
    """Remove page numbers, running headers/footers, CONTINUED lines and revision marks; move
    scene numbers printed in the margins onto their row's ``scene_number``."""
    repeated = _repeated_lines(rows, page_count, page_height)
    action = action_margin(rows)
    right_numbers = _right_number_column(rows, action, page_height)
    kept: list[Row] = []
    pages: dict[int, list[Row]] = {}
    for row in rows:
        pages.setdefault(row.page, []).append(row)
    first_page = min(pages, default=0)
    offset = _page_number_offset(pages, page_height)
    for page_rows in pages.values():
        # Headers and footers live in the first/last row; page numbers may share a row with them or
        # sit one row further in; CONTINUED: follows the header.
        outer = {id(r) for r in page_rows[:1] + page_rows[-1:]}
        edge = {id(r) for r in page_rows[:3] + page_rows[-2:]}
        previous: Row | None = None
        for row in page_rows:
            in_band = row.y > page_height - MARGIN_BAND or row.y < MARGIN_BAND
            header = _is_numbered_header(row, first_page) or _is_revision_label(row, first_page)
            if id(row) in outer and in_band and header:
                continue  # "THE ORCHARD - Pink Rev.   2." above the text: a header even when not repeated
            segments = [s for s in row.segments if not (id(row) in outer and _header_key(s) in repeated)]
            if not in_band:
                segments, number = take_scene_numbers(
                    [_without_revision_mark(s) for s in segments], action, right_numbers
                )
            else:
                segments, number = [_without_revision_mark(s) for s in segments], ""
            page_number_possible = in_band or not _wraps_a_heading(row, previous)
            segments = [
                s
                for s in segments
                if not _is_furniture(
                    s, id(row) in edge, page_number_possible and (in_band or _fits_page(s, row.page, offset))
                )
            ]
            if number and _CONTINUED_RE.match(" ".join(s.text for s in segments)):
                continue  # "12  CONTINUED: (2)  12" repeats the heading's number at a page top
            if segments:
                kept.append(Row(row.page, row.y, segments, number))
            previous = row
    return kept


def _printed_number(text: str) -> int | None:
    digits = re.search(r"\d+", text)
    return int(digits.group()) if digits else None


def _page_number_offset(pages: dict[int, list[Row]], page_height: float) -> int | None:
    """Printed page number minus the PDF's page index, as the page numbers in the margin bands say
    (a title page or a cover shifts it); None when they say nothing."""
    offsets: Counter[int] = Counter()
    for page, page_rows in pages.items():
        for row in page_rows[:1] + page_rows[-1:]:
            if row.y > page_height - MARGIN_BAND or row.y < MARGIN_BAND:
                for segment in row.segments:
                    number = _printed_number(segment.text) if _PAGE_NUMBER_RE.match(segment.text) else None
                    if number is not None:
                        offsets[number - page] += 1
    if not offsets:
        return None
    offset, count = offsets.most_common(1)[0]
    return offset if count >= 2 else None


def _fits_page(segment: Segment, page: int, offset: int | None) -> bool:
    """A page number outside the margin bands must be this page's number (``2004.`` ending a speech
    at the foot of page 35 is not); without page numbers in the bands to go by, any may be."""
    number = _printed_number(segment.text)
    return offset is None or number is None or abs(number - (page + offset)) <= 1


def _wraps_a_heading(row: Row, previous: Row | None) -> bool:
    """The row is the second line of a slugline just above it: ``INT. WILL'S BEDROOM - NIGHT`` /
    ``(1973)`` at a page top is a heading's end, not a page number."""
    return (
        previous is not None
        and 0 < previous.y - row.y <= 1.5 * row.first.size
        and any(HEADING_RE.match(s.text) for s in previous.segments)
    )


def action_margin(rows: list[Row]) -> float:
    """Left edge of the action column: the leftmost x where many long, mixed-case lines start.

    Not simply the commonest start of long lines: a talky script (deep cue indent, wide
    dialogue) has more long dialogue lines than action lines.
    """
    starts = Counter(
        round(s.x * 2) / 2 for r in rows for s in r.segments if len(s.text) > 35 and any(c.islower() for c in s.text)
    )
    if not starts:
        return min((s.x for r in rows for s in r.segments), default=72.0)
    busiest = starts.most_common(1)[0][1]
    return min(x for x, n in starts.items() if n >= max(min(3, busiest), 0.1 * busiest))


def _without_revision_mark(segment: Segment) -> Segment:
    if not segment.text.endswith(("*", "†", "‡")):  # the common case, without a regex scan
        return segment
    text = _TRAILING_REVISION_MARK_RE.sub("", segment.text)
    if text == segment.text:
        return segment
    return Segment(segment.page, segment.x, segment.y, text, segment.size, segment.bold)


def _right_number_column(rows: list[Row], action: float, page_height: float) -> float | None:
    """Where this document prints scene numbers in the right margin: the commonest start of a
    number standing apart at the end of a line, far right of the action margin (None: no such column)."""
    starts = [
        r.segments[-1].x
        for r in rows
        if len(r.segments) > 1
        and MARGIN_BAND <= r.y <= page_height - MARGIN_BAND
        and r.segments[-1].x > action + 45 * r.segments[-1].size * COURIER_ADVANCE
        and _SCENE_NUMBER_RE.match(r.segments[-1].text)
    ]
    return _mode(starts, 0.0) if len(starts) >= 2 else None


def take_scene_numbers(
    segments: list[Segment], action: float, right_numbers: float | None = None
) -> tuple[list[Segment], str]:
    """Scene numbers in either margin of a line: ``12  INT. HOUSE - DAY  12`` -> the line, ``12``.

    A left number ends before the action margin; a right one starts far right of it (past where
    dual dialogue's right column begins); a right number that the text ran into is cut off when
    it repeats the left one, or when it starts at the document's right-number column
    (``right_numbers``): a slugline that fills its line ends a character or two before that column,
    closer than the gap that cuts a line into segments.
    """
    if not segments:
        return segments, ""
    segments, typed = _typed_scene_number(segments, action)
    if len(segments) < 2:
        line, number = _cut_glued_right_number(segments, right_numbers)
        return line, typed or number
    char = segments[0].size * COURIER_ADVANCE
    number = ""
    first = _SCENE_NUMBER_RE.match(segments[0].text)
    if first and segments[0].x_end < action - char / 2:
        number, segments = first.group(1), segments[1:]
    last = _SCENE_NUMBER_RE.match(segments[-1].text)
    if len(segments) > 1 and last and segments[-1].x > action + 45 * char:
        number, segments = number or last.group(1), segments[:-1]
    elif number and re.search(rf"\s[*†]?{re.escape(number)}[*†]?$", segments[-1].text):
        glued = segments[-1]
        text = re.sub(rf"\s+[*†]?{re.escape(number)}[*†]?$", "", glued.text)
        segments = segments[:-1] + [Segment(glued.page, glued.x, glued.y, text, glued.size, glued.bold)]
    elif not number:
        segments, number = _cut_glued_right_number(segments, right_numbers)
    return segments, typed or number


def _typed_scene_number(segments: list[Segment], action: float) -> tuple[list[Segment], str]:
    """``12. INT. BARN - NIGHT`` at the action margin: a number typed before the slugline (a
    word-processor script) is the scene number, when what follows it is a slugline. So is a left
    margin number set so close to the slugline that the two read as one run (``123 INT. BARN``)."""
    first = segments[0]
    found = _TYPED_NUMBER_RE.match(first.text)
    if not found or first.x > action + first.size:
        return segments, ""
    rest = first.text[found.end() :]
    # Only a margin number starts left of the action margin, so a caps line glued to one (a numbered
    # secondary heading, ``124 THE MAZDA``) is a heading too; at the margin it must read as a slugline.
    in_margin = first.x < action - first.size and bool(_NO_LOWER_RE.match(rest))
    if not (in_margin or HEADING_RE.match(rest)):
        return segments, ""
    # The slugline keeps the number's place at the action margin: it is set there, not indented.
    line = Segment(first.page, first.x, first.y, rest, first.size, first.bold, first.end)
    return [line, *segments[1:]], found.group(1)


def _cut_glued_right_number(segments: list[Segment], column: float | None) -> tuple[list[Segment], str]:
    glued = segments[-1]
    found = _GLUED_NUMBER_RE.search(glued.text) if column is not None else None
    if column is None or not found or found.start() == 0:
        return segments, ""
    pitch = (glued.x_end - glued.x) / len(glued.text)
    if abs(glued.x_end - len(found.group(1)) * pitch - column) > 1.5 * pitch:
        return segments, ""
    text = glued.text[: found.start()]
    if not _NO_LOWER_RE.match(text):  # a slugline is in capitals; prose ending in a number is prose
        return segments, ""
    return segments[:-1] + [Segment(glued.page, glued.x, glued.y, text, glued.size, glued.bold)], found.group(2)


def _header_key(segment: Segment) -> tuple[int, str]:
    """Height and wording with what changes page to page (numbers, dates, revision colours) blanked."""
    return round(segment.y), re.sub(r"\d+", "#", _REVISION_COLOUR_RE.sub("~", segment.text.lower()))


def _is_revision_label(row: Row, first_page: int) -> bool:
    """``Pink Revision 3/2/2021`` in the margin band: a revised page's label, even alone on its row and
    on only some pages (programs print it on the pages a revision touched)."""
    text = " ".join(s.text for s in row.segments)
    return (
        row.page > first_page
        and bool(_REVISION_LABEL_RE.search(text))
        and bool(_DATE_RE.search(text) or _REVISION_COLOUR_RE.search(text))
    )


def _repeated_lines(rows: list[Row], page_count: int, page_height: float) -> set[tuple[int, str]]:
    """Text repeated at the same height on many pages, in the top or bottom margin band.

    Many is 30% of the pages, and at least two (the margin band holds no script text, so the
    same words at the same height on two pages are furniture).
    """
    if page_count < 2:
        return set()
    band = MARGIN_BAND
    counts = Counter(_header_key(s) for r in rows if r.y > page_height - band or r.y < band for s in r.segments)
    return {key for key, n in counts.items() if n >= max(2, page_count * 0.3)}


def running_header(rows: list[Row], page_count: int, page_height: float = 792.0) -> list[str]:
    """The running header's words, left to right, without the page number: the text repeated at
    the top of most pages (``A STUDY IN PINK  SHOOTING SCRIPT - GREEN AMENDED  18/04/10``).

    Read before the furniture is dropped, for a PDF without a title page, where the header is
    the only place the script's title is printed.
    """
    repeated = _repeated_lines(rows, page_count, page_height)
    if not repeated:
        return []
    headers: Counter[tuple[tuple[int, str], ...]] = Counter()
    texts: dict[tuple[tuple[int, str], ...], list[str]] = {}
    pages: dict[int, list[Segment]] = {}
    for row in rows:
        if row.y > page_height - MARGIN_BAND:
            pages.setdefault(row.page, []).extend(
                s
                for s in row.segments
                if _header_key(s) in repeated and not _PAGE_NUMBER_RE.match(s.text) and not _CONTINUED_RE.match(s.text)
            )
    for segments in pages.values():
        if segments:
            key = tuple(_header_key(s) for s in segments)
            headers[key] += 1
            texts.setdefault(key, [s.text for s in segments])
    if not headers:
        return []
    return texts[headers.most_common(1)[0][0]]


def _is_numbered_header(row: Row, first_page: int) -> bool:
    """Text beside a page number in the margin band (``THE ORCHARD - Pink Rev.  23.``): a running
    header or footer even when its wording changes from page to page (revision colours, dates)."""
    return (
        row.page > first_page
        and len(row.segments) > 1
        and any(bool(_PAGE_NUMBER_RE.match(s.text)) for s in (row.segments[0], row.segments[-1]))
    )


def _is_furniture(segment: Segment, at_page_edge: bool, off_action_margin: bool = True) -> bool:
    text = segment.text
    if _REVISION_MARK_RE.match(text):
        return True
    page_number = off_action_margin and bool(_PAGE_NUMBER_RE.match(text))
    return at_page_edge and (page_number or bool(_CONTINUED_RE.match(text)))


# --------------------------------------------------------------------------- title page


def split_title_page(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """The first page is a title page when it has no scene heading and no speech on it."""
    if not rows:
        return [], rows
    first_page = rows[0].page
    first = [r for r in rows if r.page == first_page]
    rest = [r for r in rows if r.page != first_page]
    if not rest or len(first) > 30:
        return [], rows
    if any(HEADING_RE.match(s.text) for r in first for s in r.segments):
        return [], rows
    page_left = min(s.x for r in rest for s in r.segments)
    indented = sum(1 for r in first if r.first.x > page_left + 40)
    if indented == 0:
        return [], rows
    return first, rest


def read_title_page(rows: list[Row], layout: Layout, page_width: float = 612.0) -> dict[str, list[str]]:
    """Centered lines (on the page or on the text column) are title/credit/author/source; the rest
    (usually bottom left) draft date, contact and copyright."""
    centered: list[Segment] = []
    other: list[str] = []
    body_size = _mode((s.size for r in rows for s in r.segments), 12.0)
    for row in rows:
        for segment in row.segments:
            mid = (segment.x + segment.x_end) / 2
            off_center = min(abs(mid - layout.center), abs(mid - page_width / 2))
            # A line from the action margin across the page is a legal notice, not a centred credit; a
            # title set large may be that wide and still be centred (30 characters of 24 pt Courier).
            inset = segment.x > layout.action + 2 * layout.char or segment.size > body_size + 1
            if off_center < 6 * layout.char and inset:
                centered.append(segment)
            else:
                other.append(segment.text)
    sizes = [s.size for s in centered]
    if sizes and max(sizes) > min(sizes) + 1:  # the title is set larger than the rest
        title = [s.text for s in centered if s.size == max(sizes)]
        rest = [s.text for s in centered if s.size != max(sizes)]
        return classify_title_lines(rest, other, title=title)
    return classify_title_lines([s.text for s in centered], other)


# --------------------------------------------------------------------------- layout statistics


def _mode(values: Iterable[float], default: float) -> float:
    counts = Counter(round(v * 2) / 2 for v in values)
    return counts.most_common(1)[0][0] if counts else default


def learn_layout(rows: list[Row]) -> Layout:
    """The document's columns, measured from where its lines start (no fixed template: every program and
    every writer sets the margins a little differently)."""
    segments = [s for r in rows for s in r.segments]
    size = _mode((s.size for s in segments), 12.0)
    char = size * COURIER_ADVANCE
    leading = _line_spacing(rows, size)
    action = action_margin(rows)
    cue, dialogue, parenthetical = _speech_columns(rows, action, char, leading)
    right = _right_margin(segments, action, char)
    return Layout(
        char=char,
        leading=leading,
        action=action,
        dialogue=dialogue,
        parenthetical=parenthetical,
        cue=cue,
        right=right,
        center=(action + right) / 2,
        action_width=_column_width(segments, action, char, default=60),
        dialogue_width=_column_width(segments, dialogue, char, default=35),
        bottom=min((r.y for r in rows), default=0.0),
        bold_headings=_headings_are_bold(segments, action, char),
    )


def _line_spacing(rows: list[Row], size: float) -> float:
    """The commonest gap near one line height (blank lines make 2x gaps common in short texts)."""
    gaps = [
        round(a.y - b.y, 1)
        for a, b in zip(rows, rows[1:], strict=False)
        if a.page == b.page and 0 < a.y - b.y < 3 * size
    ]
    return _mode((g for g in gaps if 0.8 * size <= g <= 1.6 * size), size)


def _speech_columns(rows: list[Row], action: float, char: float, leading: float) -> tuple[float, float, float]:
    """(cue, dialogue, parenthetical) x: from each cue-like line and the line right under it."""
    cues: list[float] = []
    after_cue: list[Segment] = []
    for row, nxt in zip(rows, rows[1:], strict=False):
        if _is_cue_over(row, nxt, action, char, leading):
            cues.append(row.first.x)
            after_cue.append(nxt.first)
    cue = _mode(cues, action + 22 * char)
    dialogue = _mode((s.x for s in after_cue if not s.text.startswith("(")), action + 10 * char)
    parenthetical = _mode((s.x for s in after_cue if s.text.startswith("(")), dialogue + 6 * char)
    return cue, dialogue, parenthetical


def _is_cue_over(row: Row, nxt: Row, action: float, char: float, leading: float) -> bool:
    """``row`` looks like a character cue: short, upper case, well right of action, and ``nxt`` (on the
    next line of the same page) starts between the action column and the cue."""
    if len(row.segments) != 1 or nxt.page != row.page or not (0 < row.y - nxt.y < 1.5 * leading):
        return False
    seg = row.first
    return (
        seg.x > action + 10 * char
        and len(seg.text) < 45
        and bool(CAPITALS_RE.match(_strip_extensions(seg.text) or "x"))
        and action + 2 * char < nxt.first.x < seg.x - char
    )


def _right_margin(segments: list[Segment], action: float, char: float) -> float:
    """From full action lines; a short document may have too few, so assume 6in."""
    full_lines = [s.x_end for s in segments if abs(s.x - action) < char and len(s.text) >= 50]
    return max(full_lines) if len(full_lines) >= 10 else action + 60 * char


def _column_width(segments: list[Segment], column: float, char: float, *, default: int) -> int:
    """The longest line (in characters) that starts at ``column``."""
    return max((len(s.text) for s in segments if abs(s.x - column) < char), default=default)


def _headings_are_bold(segments: list[Segment], action: float, char: float) -> bool:
    headings = [s for s in segments if abs(s.x - action) < char and HEADING_RE.match(s.text)]
    return bool(headings) and sum(s.bold for s in headings) >= 0.8 * len(headings)


def _strip_extensions(text: str) -> str:
    return CUE_EXTENSION_RE.sub("", text).replace("^", "").strip()


# --------------------------------------------------------------------------- classification


def classify(segment: Segment, layout: Layout) -> tuple[str, int]:
    """Role of a segment from its x position: (role, extra indent in characters)."""
    x, char = segment.x, layout.char
    columns = [
        ("action", layout.action),
        ("dialogue", layout.dialogue),
        ("parenthetical", layout.parenthetical),
        ("cue", layout.cue),
    ]
    role, column = min(columns, key=lambda c: abs(x - c[1]))
    near = abs(x - column) <= 1.5 * char
    if segment.x_end >= layout.right - 1.5 * char and x > layout.cue + 3 * char:
        return "transition", 0
    mid = (x + segment.x_end) / 2
    if not near and abs(mid - layout.center) <= 2 * char and x > layout.action + 4 * char:
        return "centered", 0
    if not near and x > layout.cue + 3 * char:
        return "transition", 0
    if role == "parenthetical" and not segment.text.startswith("("):
        role = "dialogue"
    if role == "dialogue" and segment.text.startswith("(") and layout.parenthetical != layout.dialogue:
        role = "parenthetical" if x > layout.dialogue + char else role
    indent = max(0, round((x - layout.action) / char)) if not near or role != "action" else 0
    return role, indent


# --------------------------------------------------------------------------- assembling Fountain


class _Assembler:
    """Walks rows top to bottom, groups lines into paragraphs and feeds them to the Fountain builder.

    A paragraph (``block``) ends at a vertical gap wider than one line. At a page break the open
    block is kept when the new page continues it: dialogue lines (a speech split by the page
    break, with or without ``(MORE)``/``(CONT'D)``), or action when the last page ran to the
    bottom margin mid-sentence.
    """

    def __init__(self, layout: Layout, builder: FountainBuilder) -> None:
        self.layout = layout
        self.builder = builder
        self.block: list[_Line] = []
        self.more_pending = False  # the open speech ended its page with (MORE)
        self.rejoined_speeches = 0

    def feed(self, rows: list[Row]) -> None:
        previous: Row | None = None
        index = 0
        while index < len(rows):
            row = rows[index]
            if self._is_dual_start(row):
                self.flush()
                index = self._dual(rows, index)
                previous = rows[index - 1]
                continue
            line = self._line(row)
            if previous is not None and row.page != previous.page:
                self._page_break(line, previous)
            elif previous is not None and previous.y - row.y > 1.5 * self.layout.leading:
                self.flush()
            if _MORE_RE.match(line.text) and line.role != "action":
                self.more_pending = True
            elif line.role != "continued-cue":
                self.block.append(line)
            previous = row
            index += 1
        self.flush()

    def _line(self, row: Row) -> _Line:
        role, indent = classify(row.first, self.layout)
        text = _join_segments(row, self.layout) if role == "action" else " ".join(s.text for s in row.segments)
        return _Line(role=role, text=text, row=row, indent=indent)

    def _page_break(self, line: _Line, previous: Row) -> None:
        open_speech = bool(self.block) and self.block[0].role == "cue"
        more_pending, self.more_pending = self.more_pending, False
        if open_speech and line.role in ("dialogue", "parenthetical"):
            self.rejoined_speeches += 1
            return
        if open_speech and line.role == "cue" and more_pending and CONTINUED_EXTENSION_RE.search(line.text):
            current = character_name(self.block[0].text)
            if character_name(line.text) == current:
                line.role = "continued-cue"
                self.rejoined_speeches += 1
                return
        continues_action = (
            line.role == "action"
            and bool(self.block)
            and self.block[-1].role == "action"
            and not line.indent
            and not self._opens_scene(line)
            and previous.y <= self.layout.bottom + 2 * self.layout.leading
            and not _TERMINAL_RE.search(self.block[-1].text)
        )
        if not continues_action:
            self.flush()

    def _opens_scene(self, line: _Line) -> bool:
        """The line is set as a slugline: ``INT./EXT.``, a printed scene number, or bold caps in a
        script that bolds its sluglines (a heading overleaf never continues the action above it)."""
        run = [line]
        return _is_heading(run) or _is_numbered_heading(run) or (self.layout.bold_headings and _is_bold_heading(run))

    def flush(self) -> None:
        block, self.block = self.block, []
        if not block:
            return
        if (
            block[0].role == "cue"
            and len(block) > 1
            and all(line.role in ("dialogue", "parenthetical") for line in block[1:])
        ):
            self.builder.speech(block[0].text, _speech_parts(block[1:], self.layout.dialogue_width))
        else:
            self._emit_non_speech(block)

    def _emit_non_speech(self, block: list[_Line]) -> None:
        """Headings, action, transitions, centered text, and lines orphaned from a speech."""
        if block[0].role == "cue" and len(block) > 1 and block[1].role in ("dialogue", "parenthetical"):
            # A speech followed without a blank line by something else: split at the first non-speech line.
            end = next(i for i, line in enumerate(block[1:], 1) if line.role not in ("dialogue", "parenthetical"))
            self.builder.speech(block[0].text, _speech_parts(block[1:end], self.layout.dialogue_width))
            block = block[end:]
        run: list[_Line] = []

        def group(line: _Line) -> str:
            return line.role if line.role in ("transition", "centered") else "action"

        def emit_run() -> None:
            if not run:
                return
            kind = group(run[0])
            if kind == "transition":
                for line in run:
                    self.builder.transition(line.text)
            elif kind == "centered":
                for line in run:
                    self.builder.centered(line.text)
            elif _is_heading(run) or _is_numbered_heading(run) or (self.layout.bold_headings and _is_bold_heading(run)):
                number = run[0].row.scene_number
                self.builder.heading(" ".join(line.text for line in run) + (f" #{number}#" if number else ""))
            else:
                self.builder.action(_action_text(run, self.layout))
            run.clear()

        for line in block:
            if run and group(run[0]) != group(line):
                emit_run()
            run.append(line)
        emit_run()

    def _is_dual_start(self, row: Row) -> bool:
        if len(row.segments) != 2:
            return False
        left, right = row.segments
        caps = all(CAPITALS_RE.match(_strip_extensions(s.text) or "x") and len(s.text) < 40 for s in row.segments)
        return caps and left.x > self.layout.action + 4 * self.layout.char and right.x > self.layout.center

    def _dual(self, rows: list[Row], index: int) -> int:
        """Consume a side-by-side dialogue block starting at ``rows[index]``; return the next index."""
        start = rows[index]
        left_cue, right_cue = start.segments
        block: list[Segment] = []
        last = start
        index += 1
        while index < len(rows):
            row = rows[index]
            if row.page != last.page or last.y - row.y > 1.5 * self.layout.leading:
                break
            block.extend(row.segments)
            last = row
            index += 1
        right_edge = _right_column(block, left_cue, right_cue, self.layout.char)
        split = right_edge - self.layout.char / 2
        sides: list[list[Segment]] = [[], []]
        for segment in block:
            for part in _split_at(segment, right_edge, self.layout.char):
                sides[0 if part.x < split else 1].append(part)
        for n, (cue, side) in enumerate(zip(start.segments, sides, strict=True)):
            lines = [_Line("parenthetical" if s.text.startswith("(") else "dialogue", s.text, start) for s in side]
            width = max((len(s.text) for s in side), default=0) + 2
            self.builder.speech(cue.text, _speech_parts(lines, width), dual=n == 1)
        return index


def _right_column(block: list[Segment], left_cue: Segment, right_cue: Segment, char: float) -> float:
    """Where the right column of dual dialogue starts: at the widest gap between the line starts
    (each column's lines start at its dialogue or parenthetical indent, a few characters apart).
    Not the midpoint between the cues: a long left cue (``HARVEY (INTO INTERCOM)``) may end past
    the start of the right column's dialogue. When every right line ran into a left one (a narrow
    gutter), only the cues tell."""
    starts = sorted({round(s.x, 1) for s in block})
    gaps = [(b - a, b) for a, b in zip(starts, starts[1:], strict=False)]
    widest = max(gaps, default=(0.0, 0.0))
    if widest[0] >= 6 * char:
        return widest[1]
    middle = (left_cue.x_end + right_cue.x) / 2
    return min((s.x for s in block if s.x >= middle), default=middle)


def _split_at(segment: Segment, edge: float, char: float) -> list[Segment]:
    """A left-column line that ran into the right column (no gap wide enough to cut it when the
    line was read) is cut where the right column begins."""
    if segment.x >= edge or segment.x_end <= edge + char:
        return [segment]
    cut = round((edge - segment.x) / char)
    left, right = segment.text[:cut].rstrip(), segment.text[cut:].strip()
    if not left or not right:
        return [segment]
    return [
        Segment(segment.page, segment.x, segment.y, left, segment.size, segment.bold),
        Segment(segment.page, edge, segment.y, right, segment.size, segment.bold),
    ]


def _is_heading(run: list[_Line]) -> bool:
    """A scene heading, possibly wrapped onto a second line (``INT. VW GTI, ... MINUTES / LATER``, or
    ``INT. WILL'S BEDROOM - NIGHT / (1973)``, a second line with no letter in it).

    Some programs print the slugline as typed (``Int. Kitchen - Night``): a mixed-case line is a
    heading too when its prefix has the dot or slash of a slugline (``Int.``, ``Ext.``, ``I/E``), which
    English prose does not start a paragraph with, and it is no longer than a wrapped slugline.
    """
    if len(run) > 3 or any(line.indent for line in run) or not HEADING_RE.match(run[0].text):
        return False
    if all(_NO_LOWER_RE.match(line.text) for line in run):
        return True
    typed = bool(_TYPED_HEADING_RE.match(run[0].text))
    return len(run) <= 2 and typed and not _TERMINAL_SENTENCE_RE.search(run[-1].text)


def _is_numbered_heading(run: list[_Line]) -> bool:
    """A caps line at the action margin with a scene number printed beside it is a heading, even
    without INT./EXT. (a production draft numbers its secondary headings too)."""
    return (
        len(run) <= 2
        and bool(run[0].row.scene_number)
        and not _OMITTED_RE.match(run[0].text)
        and not any(line.indent for line in run)
        and all(CAPITALS_RE.match(line.text) for line in run)
    )


def _is_bold_heading(run: list[_Line]) -> bool:
    """In a document that bolds its sluglines, a bold caps line at the margin is a heading
    even without INT./EXT. (a secondary heading such as ``THE LANTERN ROOM``)."""
    return (
        len(run) <= 2
        and not any(line.indent for line in run)
        and all(all(s.bold for s in line.row.segments) for line in run)
        and all(CAPITALS_RE.match(line.text) and not line.text.endswith(":") for line in run)
        and not SHOT_RE.search(run[0].text)
    )


def _speech_parts(lines: list[_Line], width: int) -> list[tuple[str, str]]:
    """Group a speech's lines into parentheticals and dialogue, re-joining wrapped lines."""
    grouped: list[tuple[str, list[str]]] = []
    for line in lines:
        kind = "parenthetical" if line.role == "parenthetical" else "dialogue"
        if grouped and grouped[-1][0] == kind and (kind == "dialogue" or not grouped[-1][1][-1].endswith(")")):
            grouped[-1][1].append(line.text)
        elif grouped and grouped[-1][0] == "parenthetical" and not grouped[-1][1][-1].endswith(")"):
            grouped[-1][1].append(line.text)  # second line of a wrapped parenthetical
        else:
            grouped.append((kind, [line.text]))
    return [(kind, " ".join(texts) if kind == "parenthetical" else _rejoin(texts, width)) for kind, texts in grouped]


def _join_segments(row: Row, layout: Layout) -> str:
    """Several segments on an action row (e.g. a tabbed list): keep them apart with spaces."""
    pieces = [row.segments[0].text]
    for previous, segment in zip(row.segments, row.segments[1:], strict=False):
        gap = max(1, round((segment.x - previous.x_end) / layout.char))
        pieces.append(" " * gap + segment.text)
    return "".join(pieces)


def _rejoin(lines: list[str], width: int) -> str:
    """Undo hard wrapping: a line that stopped well short of the column width was broken on purpose."""
    out = lines[0]
    for previous, line in zip(lines, lines[1:], strict=False):
        next_word = line.split(" ", 1)[0]
        wrapped = len(previous) + 1 + len(next_word) > width - 1
        if wrapped and re.search(r"[A-Za-z]-$", previous):
            out += line  # a compound broken after its hyphen: sparrow- / sized
        else:
            out += (" " if wrapped else "\n") + line
    return out


def _action_text(run: list[_Line], layout: Layout) -> str:
    if any(line.indent for line in run):
        return "\n".join(" " * line.indent + line.text for line in run)
    return _rejoin([line.text for line in run], layout.action_width)


def build_fountain(rows: list[Row], layout: Layout, builder: FountainBuilder, warnings: list[str]) -> None:
    assembler = _Assembler(layout, builder)
    assembler.feed(rows)
    if assembler.rejoined_speeches:
        warnings.append(f"re-joined {assembler.rejoined_speeches} speech(es) split across pages")
