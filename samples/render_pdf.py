"""Render a Fountain screenplay to an industry-layout PDF (fpdf2).

    .venv/bin/python samples/render_pdf.py samples/the-lighthouse-keepers-ledger.fountain [out.pdf]

US Letter, Courier 12pt (10 characters per inch, 6 lines per inch), 1.5in left margin, 1in top
and bottom: scene headings and action at 1.5in, character cues at 3.7in, dialogue at 2.5in
(3.5in wide), parentheticals at 3.1in, transitions flush right at 7.5in, page numbers ``2.``
top right from page 2 on, and ``(MORE)`` / ``NAME (CONT'D)`` when a speech breaks across pages.
Scene headings are bold (a common "bold sluglines" setting) unless ``--plain-headings``.

The PDF reader tests use this to make PDFs whose layout they know; it is also how the shipped
sample PDF is made. ``Style`` changes the page the way other screenwriting programs set it (A4,
indents, another monospaced face or size, scene numbers in one margin or typed inline, page numbers
at the bottom, a revision header, curly ``(CONT’D)``): ``bench/pdf_traits.py`` draws the corpus with
each of those traits to measure the reader on layouts it was not written against.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cineforge_assets.screenplay.elements import Element, ElementType, Script  # noqa: E402

PT_PER_IN = 72.0
REPRODUCIBLE_DATE = datetime(2026, 1, 1, tzinfo=UTC)
PAGE_SIZES = {"letter": (8.5 * PT_PER_IN, 11 * PT_PER_IN), "a4": (595.28, 841.89)}

_EMPHASIS_RE = re.compile(r"(\*{1,3}|_)(?=\S)(.+?)(?<=\S)\1")
_ASCII = str.maketrans(
    {"’": "'", "‘": "'", "“": '"', "”": '"', "—": "--", "–": "-", "…": "...", "\u00a0": " "}
)


@dataclass(frozen=True)
class Style:
    """How a screenwriting program lays the page out; the defaults are this renderer's own layout.

    Positions are in inches from the page's left edge. The trait harness (``bench/pdf_traits.py``)
    varies these to draw the same script the way other software does.
    """

    page: str = "letter"  # letter | a4
    font: str = "Courier"  # a PDF core font, or the path of a monospaced TTF (its Bold beside it)
    font_size: float = 12.0
    line: float = 12.0  # leading in points: 6 lines per inch
    top: float = 1.0
    bottom: float = 1.0
    action_x: float = 1.5
    dialogue_x: float = 2.5
    paren_x: float = 3.1
    cue_x: float = 3.7
    right_x: float = 7.5
    action_width: int = 60
    dialogue_width: int = 35
    paren_width: int = 26
    heading_width: int = 60  # a longer scene heading wraps onto a second line
    heading_bold: bool = True
    heading_underline: bool = False
    cue_bold: bool = False
    left_number_x: float = 0.0  # where a left scene number starts; 0: 0.75in left of the action margin
    scene_numbers: str = ""  # "", "left", "right", "both", or "inline" (``12. INT. ...``): numbered 1, 2, 3...
    page_numbers: str = "top-right"  # "top-right" (``12.``) or "bottom-center"
    header: str = ""  # top left from page 2 on; ``{colour}`` cycles through ``colours`` page by page
    colours: tuple[str, ...] = ("White",)
    contd: str = "(CONT'D)"  # the continuation cue's extension (``(CONT’D)`` with a curly apostrophe)
    more: str = "(MORE)"  # under a speech the page break cuts
    transition_x: float = 0.0  # 0: flush right at right_x; else left-aligned at this many inches
    lines_before_heading: int = 1  # blank lines above a scene heading (Final Draft lets it be 2)
    contd_repeat_speaker: bool = False  # a speaker talking again after action gets ``(CONT'D)`` too
    smart_quotes: bool = False  # print ’ “ ” — as typed (Windows-1252 has them) instead of ASCII
    title_size: float = 0.0  # the title page's title in this size (0: the body's size)
    title_bold: bool = True
    title_underline: bool = False
    title_case: str = "upper"  # "upper" or "as-typed": how the title page prints the title
    draft_right: bool = False  # draft and date bottom right, contact bottom left (Final Draft's layout)
    # Dual dialogue (a cue marked ``^`` speaks beside the one before): two columns side by side, each
    # ``dual_width`` characters wide, the cue ``dual_cue_indent`` in and a parenthetical ``dual_paren_indent``
    # in from its column. 0 for ``dual_right_x``: one speech after the other, as a plain layout would.
    # A scene running over a page break: ``(CONTINUED)`` flush right under the last line, and
    # ``CONTINUED:`` above the first line overleaf (``CONTINUED: (2)`` on the scene's third page), with
    # the scene's numbers when the script prints them. "" for either: not printed.
    justify_action: bool = False  # action paragraphs justified (word processors), the last line ragged
    continued_bottom: str = ""
    continued_top: str = ""
    dual_left_x: float = 1.5
    dual_right_x: float = 0.0
    dual_width: int = 25
    dual_cue_indent: float = 1.0
    dual_paren_indent: float = 0.3

    @property
    def size(self) -> tuple[float, float]:
        return PAGE_SIZES[self.page]

    @property
    def lines_per_page(self) -> int:
        return int((self.size[1] - (self.top + self.bottom) * PT_PER_IN) // self.line)

    def x(self, inches: float) -> float:
        return inches * PT_PER_IN


@dataclass
class Line:
    x: float
    text: str
    bold: bool = False
    align: str = "left"  # left | right | center
    underline: bool = False
    number: str = ""  # scene number printed in the margin(s) beside this line
    beside: list[Line] = field(default_factory=list)  # more text on the same row (dual dialogue)
    heading: bool = False  # the first line of a scene heading
    justify: int = 0  # stretch the words to this many characters (a justified paragraph's line)


@dataclass
class Block:
    kind: str
    lines: list[Line]
    space_before: int = 1
    cue: str = ""  # for speeches: the cue text, to repeat with (CONT'D)
    keep_with_next: bool = False
    body: list[Line] = field(default_factory=list)


def plain(text: str, smart_quotes: bool = False) -> str:
    previous = None
    while previous != text:
        previous = text
        text = _EMPHASIS_RE.sub(r"\2", text)
    text = text.replace("\\", "")
    if smart_quotes:
        return text.encode("windows-1252", "replace").decode("windows-1252")
    return text.translate(_ASCII).encode("latin-1", "replace").decode("latin-1")


def wrap(text: str, width: int, smart_quotes: bool = False, long_words: bool = False) -> list[str]:
    lines: list[str] = []
    for raw in plain(text, smart_quotes).split("\n"):
        indent = len(raw) - len(raw.lstrip(" "))
        # A word longer than the column overflows it, as screenwriting programs set it; never split mid-word
        # (``long_words``: split it, at its hyphens first, where it would overprint a dual column).
        wrapped = (
            textwrap.wrap(
                raw.strip(), max(10, width - indent), break_on_hyphens=long_words, break_long_words=long_words
            )
            or [""]
        )
        lines.extend(" " * indent + w for w in wrapped)
    return lines


def blocks_for(script: Script, style: Style) -> list[Block]:
    blocks: list[Block] = []
    elements = list(script.elements)
    quotes = style.smart_quotes
    scene_number = 0
    last_speaker = ""  # in this scene, for the repeated speaker's (CONT'D)
    i = 0
    while i < len(elements):
        element = elements[i]
        kind = element.type
        if kind == ElementType.CHARACTER:
            extension = plain(element.extension, quotes)
            name = plain(element.text, quotes).upper()
            if style.contd_repeat_speaker and name == last_speaker and "CONT" not in extension.upper():
                extension = " ".join(filter(None, [extension, style.contd]))
            last_speaker = name
            cue = " ".join(filter(None, [name, extension]))
            body: list[Line] = []
            i += 1
            body_start = i
            while i < len(elements) and elements[i].type in (ElementType.DIALOGUE, ElementType.PARENTHETICAL):
                body.extend(_speech_lines(elements[i], style))
                i += 1
            nxt = elements[i] if i < len(elements) else None
            if style.dual_right_x and nxt is not None and nxt.type == ElementType.CHARACTER and nxt.dual:
                i, other = _speech_after(elements, i + 1)
                blocks.append(_dual_block((cue, elements[body_start : i - len(other) - 1]), (nxt, other), style))
                last_speaker = ""
                continue
            cue_line = Line(style.x(style.cue_x), cue, bold=style.cue_bold)
            blocks.append(Block("speech", [cue_line] + body, cue=name, body=body))
            continue
        if kind == ElementType.SCENE_HEADING:
            scene_number += 1
            last_speaker = ""
            number = (element.scene_number or str(scene_number)) if style.scene_numbers else ""
            heading = plain(element.text, quotes)
            if style.scene_numbers == "inline":
                heading, number = f"{number}. {heading}", ""
            lines = [
                Line(style.x(style.action_x), text, bold=style.heading_bold, underline=style.heading_underline)
                for text in textwrap.wrap(heading, style.heading_width, break_long_words=False) or [""]
            ]
            lines[0].number = number
            lines[0].heading = True
            blocks.append(Block("heading", lines, space_before=style.lines_before_heading, keep_with_next=True))
        elif kind in (ElementType.ACTION, ElementType.LYRICS):
            texts = wrap(element.text, style.action_width, quotes)
            lines = [Line(style.x(style.action_x), t) for t in texts]
            if style.justify_action:
                for line, following in zip(lines, texts[1:], strict=False):
                    if following.strip():  # the paragraph goes on: not its last line
                        line.justify = style.action_width
            blocks.append(Block("action", lines))
        elif kind == ElementType.TRANSITION:
            text = plain(element.text, quotes).upper()
            if style.transition_x:
                blocks.append(Block("transition", [Line(style.x(style.transition_x), text)]))
            else:
                blocks.append(Block("transition", [Line(style.x(style.right_x), text, align="right")]))
        elif kind == ElementType.CENTERED:
            lines = [Line(0, t.strip(), align="center") for t in wrap(element.text, style.action_width, quotes)]
            blocks.append(Block("centered", lines))
        elif kind == ElementType.PAGE_BREAK:
            blocks.append(Block("page_break", []))
        i += 1
    return blocks


def _speech_after(elements: list[Element], i: int) -> tuple[int, list[Element]]:
    """The dialogue and parentheticals from ``elements[i]`` on, and the index after them."""
    start = i
    while i < len(elements) and elements[i].type in (ElementType.DIALOGUE, ElementType.PARENTHETICAL):
        i += 1
    return i, elements[start:i]


def _dual_block(left: tuple[str, list[Element]], right: tuple[Element, list[Element]], style: Style) -> Block:
    """Two speeches side by side, row by row, kept on one page (as Final Draft and Fade In set them)."""
    quotes = style.smart_quotes
    left_cue, left_body = left
    right_cue = " ".join(filter(None, [plain(right[0].text, quotes).upper(), plain(right[0].extension, quotes)]))
    columns: list[list[Line]] = []
    for column_x, cue, body in ((style.dual_left_x, left_cue, left_body), (style.dual_right_x, right_cue, right[1])):
        # a long left cue moves left only as far as it must not to run into the right cue
        # (``TROY (ALTERED ELECTRONIC VOICE)``); the right one has the margin to run into
        room = style.dual_right_x + style.dual_cue_indent - 0.3 - column_x - len(cue) * style.font_size / 120
        indent = max(0.0, min(style.dual_cue_indent, room)) if column_x == style.dual_left_x else style.dual_cue_indent
        lines = [Line(style.x(column_x + indent), cue, bold=style.cue_bold)]
        for element in body:
            paren = element.type == ElementType.PARENTHETICAL
            x = style.x(column_x + (style.dual_paren_indent if paren else 0.0))
            # a word longer than the column breaks (at its hyphens first), as it would not overprint the other
            width = style.dual_width - (3 if paren else 0)
            lines.extend(Line(x, t) for t in wrap(element.text, width, quotes, long_words=True))
        columns.append(lines)
    rows: list[Line] = []
    for index in range(max(len(c) for c in columns)):
        here = [c[index] for c in columns if index < len(c)]
        if index >= len(columns[0]):  # the left speech is over: the right one's line alone on the row
            rows.append(here[0])
        else:
            rows.append(replace(here[0], beside=here[1:]))
    return Block("dual", rows)


def _speech_lines(element: Element, style: Style) -> list[Line]:
    if element.type == ElementType.PARENTHETICAL:
        return [Line(style.x(style.paren_x), t) for t in wrap(element.text, style.paren_width, style.smart_quotes)]
    return [Line(style.x(style.dialogue_x), t) for t in wrap(element.text, style.dialogue_width, style.smart_quotes)]


def _blank(count: int) -> list[Line | None]:
    return [None] * count


def paginate(blocks: list[Block], style: Style) -> list[list[Line | None]]:
    """Lay blocks onto pages of ``style.lines_per_page``; ``None`` is a blank line."""
    per_page = style.lines_per_page - (2 if style.continued_top or style.continued_bottom else 0)
    pages: list[list[Line | None]] = [[]]

    def room() -> int:
        return per_page - len(pages[-1])

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
        if block.kind == "speech" and _split_speech(block, pages, gap, style):
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


def _split_speech(block: Block, pages: list[list[Line | None]], gap: int, style: Style) -> bool:
    """Break a speech: cue + at least two lines + (MORE) here, NAME (CONT'D) + the rest overleaf."""
    per_page = style.lines_per_page
    available = per_page - len(pages[-1]) - gap - 2  # cue line and (MORE) line
    body = block.body
    if available < 2 or len(body) - available < 1:
        return False
    take = available
    paren_x = style.x(style.paren_x)
    # Never end a page on a parenthetical: it belongs with the line it introduces.
    while take > 1 and body[take - 1].x == paren_x:
        take -= 1
    cue_x = style.x(style.cue_x)
    more: list[Line | None] = [Line(cue_x, style.more)]
    contd: list[Line | None] = [Line(cue_x, f"{block.cue} {style.contd}")]
    pages[-1].extend(_blank(gap) + [block.lines[0]] + body[:take] + more)
    rest: list[Line | None] = list(body[take:])
    while len(rest) > per_page - 1:
        pages.append(contd + rest[: per_page - 2] + more)
        rest = rest[per_page - 2 :]
    pages.append(contd + rest)
    return True


def render_title_page(pdf: FPDF, title_page: dict[str, list[str]], style: Style) -> None:
    pdf.add_page()
    page_w, page_h = style.size
    y = 3.5 * PT_PER_IN
    for key in ("title", "credit", "author", "authors", "source"):
        for value in title_page.get(key, []):
            text = plain(value, style.smart_quotes)
            is_title = key == "title"
            if is_title and style.title_case == "upper":
                text = text.upper()
            size = (style.title_size or style.font_size) if is_title else style.font_size
            step = max(style.line, 1.2 * size) if is_title and style.title_size else style.line
            _set_font(pdf, style, bold=is_title and style.title_bold, underline=is_title and style.title_underline)
            pdf.set_font_size(size)
            pdf.text(page_w / 2 - pdf.get_string_width(text) / 2, y, text)
            y += step * (2 if key in ("title", "credit") else 1)
    _set_font(pdf, style)
    draft = [plain(v, style.smart_quotes) for v in title_page.get("draft date", [])]
    lower = [plain(v, style.smart_quotes) for key in ("contact", "copyright") for v in title_page.get(key, [])]
    if not style.draft_right:
        lower, draft = draft + lower, []
    for block, right in ((lower, False), (draft, True)):
        y = page_h - style.bottom * PT_PER_IN - style.line * (len(block) - 1)
        for text in block:
            x = style.x(style.right_x) - pdf.get_string_width(text) if right else style.x(style.action_x)
            pdf.text(x, y, text)
            y += style.line


def _set_font(pdf: FPDF, style: Style, bold: bool = False, underline: bool = False) -> None:
    family = "Courier" if style.font == "Courier" else "ScriptMono"
    pdf.set_font(family, ("B" if bold else "") + ("U" if underline else ""), style.font_size)


def _new_pdf(script: Script, style: Style) -> FPDF:
    pdf = FPDF(unit="pt", format=style.size)
    pdf.core_fonts_encoding = "windows-1252"  # curly quotes in the core Courier, as Final Draft prints them
    if style.font != "Courier":
        regular = Path(style.font)
        bold = regular.with_name(regular.stem + " Bold" + regular.suffix)
        if not bold.exists():
            bold = regular.with_name(regular.stem + "-Bold" + regular.suffix)
        pdf.add_font("ScriptMono", "", str(regular))
        pdf.add_font("ScriptMono", "B", str(bold if bold.exists() else regular))
    pdf.set_auto_page_break(False)
    pdf.set_creator("CineForge samples/render_pdf.py")
    pdf.set_creation_date(REPRODUCIBLE_DATE)  # same input, same bytes: the committed sample stays diff-free
    pdf.set_title(plain(script.title) or "Screenplay")
    return pdf


def _page_furniture(pdf: FPDF, style: Style, number: int) -> None:
    if number == 1:
        return
    page_w, page_h = style.size
    _set_font(pdf, style)
    label = f"{number}."
    if style.page_numbers == "bottom-center":
        pdf.text(page_w / 2 - pdf.get_string_width(label) / 2, page_h - 0.5 * PT_PER_IN, label)
    else:
        pdf.text(style.x(style.right_x) - pdf.get_string_width(label), 0.5 * PT_PER_IN + style.font_size, label)
    if style.header:
        header = style.header.format(colour=style.colours[number % len(style.colours)])
        pdf.text(style.x(style.action_x), 0.5 * PT_PER_IN + style.font_size, header)


def _draw_line(pdf: FPDF, style: Style, line: Line, y: float) -> None:
    _set_font(pdf, style, bold=line.bold, underline=line.underline)
    width = pdf.get_string_width(line.text)
    if line.align == "right":
        x = style.x(style.right_x) - width
    elif line.align == "center":
        x = (style.x(style.action_x) + style.x(style.right_x)) / 2 - width / 2
    else:
        x = line.x
    words = line.text.split()
    if line.justify and len(words) > 1 and not line.text.startswith(" "):
        # a word processor's justified line: the spare width shared out between the words
        char = pdf.get_string_width("M")
        spare = (line.justify - len(line.text)) * char
        step = spare / (len(words) - 1)
        for word in words:
            pdf.text(x, y, word)
            x += pdf.get_string_width(word + " ") + step
    else:
        pdf.text(x, y, line.text)
    for other in line.beside:
        _draw_line(pdf, style, other, y)
    if line.number:
        _set_font(pdf, style)
        if style.scene_numbers in ("left", "both"):
            pdf.text(style.x(style.left_number_x or style.action_x - 0.75), y, line.number)
        if style.scene_numbers in ("right", "both"):
            pdf.text(style.x(style.right_x) + 0.2 * PT_PER_IN, y, line.number)


def render(script: Script, *, bold_headings: bool = True, style: Style | None = None) -> bytes:
    style = style or Style(heading_bold=bold_headings)
    pdf = _new_pdf(script, style)
    if script.title_page:
        render_title_page(pdf, script.title_page, style)
    top = style.top * PT_PER_IN
    pages = paginate(blocks_for(script, style), style)
    continued = _continued_lines(pages, style)
    for number, page in enumerate(pages, start=1):
        pdf.add_page()
        _page_furniture(pdf, style, number)
        above, below = continued[number - 1]
        rows: list[Line | None] = ([above, None] if above else []) + page
        for row, line in enumerate(rows):
            if line is None or not line.text.strip():
                continue
            _draw_line(pdf, style, line, top + style.line * (row + 1) - 2)
        if below:
            _draw_line(pdf, style, below, top + style.line * (len(rows) + 1) - 2)
    return bytes(pdf.output())


def _continued_lines(pages: list[list[Line | None]], style: Style) -> list[tuple[Line | None, Line | None]]:
    """Per page: the ``CONTINUED:`` line above its first line and the ``(CONTINUED)`` line under its
    last, where a scene runs over the page break (the next page does not open with a heading). The
    third page of a scene says ``CONTINUED: (2)``, as Final Draft and Movie Magic count them."""

    def opens_scene(page: list[Line | None]) -> bool:
        return next((line.heading for line in page if line is not None), False)

    result: list[tuple[Line | None, Line | None]] = []
    in_scene, scene_number, pages_of_scene = False, "", 1
    for index, page in enumerate(pages):
        above: Line | None = None
        if in_scene and not opens_scene(page) and style.continued_top:
            pages_of_scene += 1
            count = f" ({pages_of_scene - 1})" if pages_of_scene > 2 else ""
            number = scene_number if style.scene_numbers != "inline" else ""
            above = Line(style.x(style.action_x), style.continued_top + count, number=number)
        for line in page:
            if line is not None and line.heading:
                in_scene, scene_number, pages_of_scene = True, line.number, 1
        below: Line | None = None
        following = pages[index + 1] if index + 1 < len(pages) else None
        if in_scene and following is not None and not opens_scene(following) and style.continued_bottom:
            below = Line(style.x(style.right_x), style.continued_bottom, align="right")
        result.append((above, below))
    return result


def render_fountain(text: str, *, bold_headings: bool = True, style: Style | None = None) -> bytes:
    from cineforge_assets.screenplay.fountain import parse_fountain

    return render(parse_fountain(text), bold_headings=bold_headings, style=style)


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
