"""Render a Fountain screenplay to an industry-layout PDF (fpdf2).

    .venv/bin/python samples/render_pdf.py samples/the-lighthouse-keepers-ledger.fountain [out.pdf]

US Letter, Courier 12pt (10 characters per inch, 6 lines per inch), 1.5in left margin, 1in top
and bottom: scene headings and action at 1.5in, character cues at 3.7in, dialogue at 2.5in
(3.5in wide), parentheticals at 3.1in, transitions flush right at 7.5in, page numbers ``2.``
top right from page 2 on, and ``(MORE)`` / ``NAME (CONT'D)`` when a speech breaks across pages.
Scene headings are bold (a common "bold sluglines" setting) unless ``--plain-headings``.

The PDF reader tests use this to make PDFs whose layout they know; it is also how the shipped
sample PDF is made.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cineforge_assets.screenplay.elements import Element, ElementType, Script  # noqa: E402

PT_PER_IN = 72.0
REPRODUCIBLE_DATE = datetime(2026, 1, 1, tzinfo=UTC)
FONT_SIZE = 12.0
LINE = 12.0  # 6 lines per inch
CHAR = 7.2  # Courier 12pt advance
PAGE_W, PAGE_H = 8.5 * PT_PER_IN, 11 * PT_PER_IN
TOP, BOTTOM = 1.0 * PT_PER_IN, 1.0 * PT_PER_IN
LINES_PER_PAGE = int((PAGE_H - TOP - BOTTOM) // LINE)  # 54

ACTION_X = 1.5 * PT_PER_IN
DIALOGUE_X = 2.5 * PT_PER_IN
PAREN_X = 3.1 * PT_PER_IN
CUE_X = 3.7 * PT_PER_IN
RIGHT_X = 7.5 * PT_PER_IN
ACTION_WIDTH = 60
DIALOGUE_WIDTH = 35
PAREN_WIDTH = 26

_EMPHASIS_RE = re.compile(r"(\*{1,3}|_)(?=\S)(.+?)(?<=\S)\1")
_ASCII = str.maketrans(
    {"’": "'", "‘": "'", "“": '"', "”": '"', "—": "--", "–": "-", "…": "...", "\u00a0": " "}
)


@dataclass
class Line:
    x: float
    text: str
    bold: bool = False
    align: str = "left"  # left | right | center


@dataclass
class Block:
    kind: str
    lines: list[Line]
    space_before: int = 1
    cue: str = ""  # for speeches: the cue text, to repeat with (CONT'D)
    keep_with_next: bool = False
    body: list[Line] = field(default_factory=list)


def plain(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = _EMPHASIS_RE.sub(r"\2", text)
    return text.replace("\\", "").translate(_ASCII).encode("latin-1", "replace").decode("latin-1")


def wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for raw in plain(text).split("\n"):
        indent = len(raw) - len(raw.lstrip(" "))
        wrapped = textwrap.wrap(raw.strip(), max(10, width - indent), break_on_hyphens=False) or [""]
        lines.extend(" " * indent + w for w in wrapped)
    return lines


def blocks_for(script: Script, bold_headings: bool = True) -> list[Block]:
    blocks: list[Block] = []
    elements = list(script.elements)
    i = 0
    while i < len(elements):
        element = elements[i]
        kind = element.type
        if kind == ElementType.CHARACTER:
            cue = " ".join(filter(None, [plain(element.text).upper(), plain(element.extension)]))
            body: list[Line] = []
            i += 1
            while i < len(elements) and elements[i].type in (ElementType.DIALOGUE, ElementType.PARENTHETICAL):
                body.extend(_speech_lines(elements[i]))
                i += 1
            blocks.append(Block("speech", [Line(CUE_X, cue)] + body, cue=cue, body=body))
            continue
        if kind == ElementType.SCENE_HEADING:
            text = plain(element.text).upper()
            blocks.append(Block("heading", [Line(ACTION_X, text, bold=bold_headings)], keep_with_next=True))
        elif kind in (ElementType.ACTION, ElementType.LYRICS):
            blocks.append(Block("action", [Line(ACTION_X, t) for t in wrap(element.text, ACTION_WIDTH)]))
        elif kind == ElementType.TRANSITION:
            blocks.append(Block("transition", [Line(RIGHT_X, plain(element.text).upper(), align="right")]))
        elif kind == ElementType.CENTERED:
            lines = [Line(0, t.strip(), align="center") for t in wrap(element.text, ACTION_WIDTH)]
            blocks.append(Block("centered", lines))
        elif kind == ElementType.PAGE_BREAK:
            blocks.append(Block("page_break", []))
        i += 1
    return blocks


def _speech_lines(element: Element) -> list[Line]:
    if element.type == ElementType.PARENTHETICAL:
        return [Line(PAREN_X, t) for t in wrap(element.text, PAREN_WIDTH)]
    return [Line(DIALOGUE_X, t) for t in wrap(element.text, DIALOGUE_WIDTH)]


def _blank(count: int) -> list[Line | None]:
    return [None] * count


def paginate(blocks: list[Block]) -> list[list[Line | None]]:
    """Lay blocks onto pages of LINES_PER_PAGE; ``None`` is a blank line."""
    pages: list[list[Line | None]] = [[]]

    def room() -> int:
        return LINES_PER_PAGE - len(pages[-1])

    def new_page() -> None:
        pages.append([])

    for index, block in enumerate(blocks):
        if block.kind == "page_break":
            if pages[-1]:
                new_page()
            continue
        gap = block.space_before if pages[-1] else 0
        need = gap + len(block.lines)
        if block.keep_with_next and index + 1 < len(blocks):
            need += 1 + min(2, len(blocks[index + 1].lines))
        if need <= room():
            pages[-1].extend(_blank(gap))
            pages[-1].extend(block.lines)
            continue
        if block.kind == "speech" and _split_speech(block, pages, gap):
            continue
        if block.kind == "action" and room() - gap >= 2 and len(block.lines) - (room() - gap) >= 2:
            take = room() - gap
            pages[-1].extend(_blank(gap))
            pages[-1].extend(block.lines[:take])
            new_page()
            pages[-1].extend(block.lines[take:])
            continue
        new_page()
        pages[-1].extend(block.lines)
    return [p for p in pages if p]


def _split_speech(block: Block, pages: list[list[Line | None]], gap: int) -> bool:
    """Break a speech: cue + at least two lines + (MORE) here, NAME (CONT'D) + the rest overleaf."""
    available = LINES_PER_PAGE - len(pages[-1]) - gap - 2  # cue line and (MORE) line
    body = block.body
    if available < 2 or len(body) - available < 1:
        return False
    take = available
    # Never end a page on a parenthetical: it belongs with the line it introduces.
    while take > 1 and body[take - 1].x == PAREN_X:
        take -= 1
    more: list[Line | None] = [Line(CUE_X, "(MORE)")]
    contd: list[Line | None] = [Line(CUE_X, f"{block.cue} (CONT'D)")]
    pages[-1].extend(_blank(gap) + [block.lines[0]] + body[:take] + more)
    rest: list[Line | None] = list(body[take:])
    while len(rest) > LINES_PER_PAGE - 1:
        pages.append(contd + rest[: LINES_PER_PAGE - 2] + more)
        rest = rest[LINES_PER_PAGE - 2 :]
    pages.append(contd + rest)
    return True


def render_title_page(pdf: FPDF, title_page: dict[str, list[str]]) -> None:
    pdf.add_page()
    y = 3.5 * PT_PER_IN
    for key in ("title", "credit", "author", "authors", "source"):
        for value in title_page.get(key, []):
            text = plain(value).upper() if key == "title" else plain(value)
            pdf.set_font("Courier", "B" if key == "title" else "", FONT_SIZE)
            pdf.text(PAGE_W / 2 - pdf.get_string_width(text) / 2, y, text)
            y += LINE * (2 if key in ("title", "credit") else 1)
    lower = [plain(v) for key in ("draft date", "contact", "copyright") for v in title_page.get(key, [])]
    y = PAGE_H - BOTTOM - LINE * (len(lower) - 1)
    pdf.set_font("Courier", "", FONT_SIZE)
    for text in lower:
        pdf.text(ACTION_X, y, text)
        y += LINE


def render(script: Script, *, bold_headings: bool = True) -> bytes:
    pdf = FPDF(unit="pt", format="letter")
    pdf.set_auto_page_break(False)
    pdf.set_creator("CineForge samples/render_pdf.py")
    pdf.set_creation_date(REPRODUCIBLE_DATE)  # same input, same bytes: the committed sample stays diff-free
    pdf.set_title(plain(script.title) or "Screenplay")
    if script.title_page:
        render_title_page(pdf, script.title_page)
    for number, page in enumerate(paginate(blocks_for(script, bold_headings)), start=1):
        pdf.add_page()
        pdf.set_font("Courier", "", FONT_SIZE)
        if number > 1:
            label = f"{number}."
            pdf.text(RIGHT_X - pdf.get_string_width(label), 0.5 * PT_PER_IN + FONT_SIZE, label)
        for row, line in enumerate(page):
            if line is None or not line.text.strip():
                continue
            y = TOP + LINE * (row + 1) - 2
            pdf.set_font("Courier", "B" if line.bold else "", FONT_SIZE)
            width = pdf.get_string_width(line.text)
            if line.align == "right":
                x = RIGHT_X - width
            elif line.align == "center":
                x = (ACTION_X + RIGHT_X) / 2 - width / 2
            else:
                x = line.x
            pdf.text(x, y, line.text)
    return bytes(pdf.output())


def render_fountain(text: str, *, bold_headings: bool = True) -> bytes:
    from cineforge_assets.screenplay.fountain import parse_fountain

    return render(parse_fountain(text), bold_headings=bold_headings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("fountain", type=Path)
    parser.add_argument("pdf", type=Path, nargs="?")
    parser.add_argument("--plain-headings", action="store_true", help="do not bold scene headings")
    args = parser.parse_args(argv)
    out = args.pdf or args.fountain.with_suffix(".pdf")
    out.write_bytes(
        render_fountain(args.fountain.read_text(encoding="utf-8"), bold_headings=not args.plain_headings)
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
