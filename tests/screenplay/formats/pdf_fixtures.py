"""Screenplay PDFs drawn the way screenwriting software draws them, for the PDF reader's tests.

Each trait the reader must survive can be switched on: scene numbers in both margins, revision
marks at the right margin, cues drawn *after* their dialogue in the content stream (Final Draft 7),
``(MORE)`` / ``CONTINUED`` page breaks with numbered ``CONTINUED:`` lines, shots at the action
margin, dual dialogue side by side, running page headers and footers. Geometry follows Final
Draft's defaults on US Letter: 12 pt Courier, action at 1.5in, dialogue 2.5in, parenthetical
~2.9in, cue 3.5in, transitions ending at 7.5in, scene numbers at 0.75in and 7.3in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fpdf import FPDF

PT_PER_CHAR = 7.2  # 12 pt Courier advance
LINE = 12.0
ACTION_X, DIALOGUE_X, PAREN_X, CUE_X = 108.0, 180.0, 209.0, 252.0
LEFT_NUMBER_X, RIGHT_NUMBER_X, REVISION_X = 54.0, 525.0, 560.0
TOP, BOTTOM = 72.0 + LINE, 792.0 - 72.0  # first and last baseline, from the page top


@dataclass
class ScreenplayPdf:
    """A cursor that lays out screenplay elements page by page."""

    header: str = ""  # running header; ``{page}`` and ``{colour}`` are filled in per page
    colours: tuple[str, ...] = ("White",)  # revision colour of each page, in turn
    page_offset: int = 0  # printed page number minus the PDF's (-1: an unnumbered cover page)
    watermark: str = ""  # drawn diagonally across every page, as afterwriting and studios do
    watermark_angle: float = 40.0  # 0: laid straight across the middle of the page, in 60 pt
    footer: str = ""
    cue_after_dialogue: bool = False  # draw each cue after its speech's lines (content-stream order)
    number_sides: str = "both"  # where scene numbers are printed: "both", "left" or "right"
    number_format: str = "{}"  # e.g. "{}." as some software prints them
    pdf: FPDF = field(init=False)
    y: float = field(init=False, default=TOP)
    page: int = field(init=False, default=0)
    scene_number: str = field(init=False, default="")  # the current scene's printed number

    def __post_init__(self) -> None:
        self.pdf = FPDF(unit="pt", format="letter")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_font("Courier", size=12)
        self.new_page()

    # ------------------------------------------------------------------ pages

    def new_page(self) -> None:
        self.pdf.add_page()
        self.page += 1
        self.y = TOP
        if self.header and self.page > 1:
            colour = self.colours[self.page % len(self.colours)]
            printed = self.page + self.page_offset
            self.pdf.text(ACTION_X, 48, self.header.format(page=printed, colour=colour))
        elif self.page > 1:
            self.pdf.text(504, 48, f"{self.page}.")
        if self.footer:
            self.pdf.text(ACTION_X, 760, self.footer)
        if self.watermark:
            self.pdf.set_font("Courier", "", 60)
            with self.pdf.rotation(self.watermark_angle, 306, 396):
                self.pdf.text(90, 398, self.watermark)
            self.pdf.set_font("Courier", "", 12)

    def continued_break(self) -> None:
        """``(CONTINUED)`` at the bottom, ``12  CONTINUED: (2)  12`` at the top of the next page."""
        self.pdf.text(463, BOTTOM + LINE, "(CONTINUED)")
        self.new_page()
        self._numbered(f"CONTINUED: ({self.page})", self.scene_number)
        self.y += LINE

    def _room(self, lines: int) -> None:
        if self.y + (lines - 1) * LINE > BOTTOM:
            self.new_page()

    def _put(self, x: float, text: str, revised: bool = False, bold: bool = False) -> None:
        self.pdf.set_font("Courier", "B" if bold else "", 12)
        self.pdf.text(x, self.y, text)
        self.pdf.set_font("Courier", "", 12)
        if revised:
            self.pdf.text(REVISION_X, self.y, "*")

    def _numbered(self, text: str, number: str, revised: bool = False, bold: bool = False) -> None:
        printed = self.number_format.format(number)
        if number and self.number_sides in ("both", "left"):
            self.pdf.text(LEFT_NUMBER_X, self.y, printed)
        if number and self.number_sides in ("both", "right"):
            self.pdf.text(RIGHT_NUMBER_X, self.y, printed)
        self._put(ACTION_X, text, revised, bold)
        self.y += LINE

    # ------------------------------------------------------------------ elements

    def heading(self, text: str, number: str = "", revised: bool = False, bold: bool = False) -> None:
        self._room(3)
        self.scene_number = number
        self._numbered(text, number, revised, bold)
        self.y += LINE

    def action(self, *lines: str, revised: bool = False, bold: bool = False) -> None:
        self._room(len(lines))
        for line in lines:
            self._put(ACTION_X, line, revised, bold)
            self.y += LINE
        self.y += LINE

    def transition(self, text: str) -> None:
        self._room(1)
        self._put(540 - len(text) * PT_PER_CHAR, text)
        self.y += 2 * LINE

    def speech(self, cue: str, *lines: str, revised: bool = False) -> None:
        """``lines``: dialogue, or ``(parenthetical)`` lines, in order."""
        self._room(len(lines) + 1)
        cue_y = self.y
        if not self.cue_after_dialogue:
            self._put(CUE_X, cue, revised)
        self.y += LINE
        for line in lines:
            self._put(PAREN_X if line.startswith("(") else DIALOGUE_X, line, revised)
            self.y += LINE
        if self.cue_after_dialogue:
            end, self.y = self.y, cue_y
            self._put(CUE_X, cue, revised)
            self.y = end
        self.y += LINE

    def speech_across_pages(self, cue: str, first: list[str], second: list[str]) -> None:
        """A speech that the page break splits: ``(MORE)`` below, ``CUE (CONT'D)`` above."""
        self.y = BOTTOM - (len(first) + 1) * LINE
        self._put(CUE_X, cue)
        self.y += LINE
        for line in first:
            self._put(DIALOGUE_X, line)
            self.y += LINE
        self._put(CUE_X, "(MORE)")
        self.continued_break()
        self._put(CUE_X, f"{cue} (CONT'D)")
        self.y += LINE
        for line in second:
            self._put(DIALOGUE_X, line)
            self.y += LINE
        self.y += LINE

    def dual(self, left: tuple[str, list[str]], right: tuple[str, list[str]], gap_chars: int = 3) -> None:
        """Two speeches side by side, as Final Draft sets dual dialogue: the left column's lines
        start at the action margin, the right column's ``gap_chars`` after the widest left line."""
        rows = max(len(left[1]), len(right[1])) + 1
        self._room(rows)
        right_x = ACTION_X + (max(len(line) for line in left[1]) + gap_chars) * PT_PER_CHAR
        for (cue, lines), text_x in ((left, ACTION_X), (right, right_x)):
            y = self.y
            self.pdf.text(text_x + 10 * PT_PER_CHAR, y, cue)
            for line in lines:
                y += LINE
                self.pdf.text(text_x + (2 * PT_PER_CHAR if line.startswith("(") else 0.0), y, line)
        self.y += (rows + 1) * LINE

    def bytes(self) -> bytes:
        return bytes(self.pdf.output())
