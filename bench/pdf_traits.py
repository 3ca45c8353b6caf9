"""The PDF reader against the traits of screenwriting software, on PDFs drawn from Fountain sources.

Each trait draws a Fountain script the way some program (or writer) sets its pages: A4, another
program's indents, wrapped or underlined sluglines, scene numbers in one margin, page numbers at
the bottom, revision headers, curly ``(CONT’D)``, cue extensions, wrapped parentheticals,
transitions and centred text, montage/intercut blocks, mixed-case or prefix-less sluglines, other
monospaced faces and sizes. A trait is a page style for ``samples/render_pdf.py`` plus, where the
trait is about content rather than layout, a rewrite of the parsed script; the rewritten script is
written back to Fountain and screenplain's parse of that text is the oracle, so the reader is
scored against what the PDF was drawn from, by a parser that is not ours.

Title page traits draw each script's own title and writers on the page a program sets (Final
Draft's contact and draft corners, a teleplay's quoted episode title and WGA number, a large bold
title, an adaptation's two-line title and source, or no title page and a running header) and score
title, writers, draft date and contact as read back against what was drawn (screenplain does not
read title pages, so here the trait's own page is the oracle).

Used by ``bench/fidelity.py`` (the traits table in BENCHMARKS.md) and by the PDF reader's tests,
which draw one trait at a time into ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from types import ModuleType

from cineforge_assets.screenplay.elements import Element, ElementType, Script
from cineforge_assets.screenplay.fidelity import FidelityReport, compare, digest_fountain, digest_screenplain
from cineforge_assets.screenplay.formats.emit import split_names
from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.screenplay.fountain import parse_fountain, plain_text, write_fountain

REPO = Path(__file__).resolve().parent.parent
COURIER_PRIME = Path(
    next(iter(importlib.util.find_spec("screenplain").submodule_search_locations or []), "")  # type: ignore[union-attr]
) / "export" / "courier_prime" / "Courier Prime.ttf"
DEJAVU_MONO = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")


@cache
def render_pdf_module() -> ModuleType:
    """samples/render_pdf.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("render_pdf", REPO / "samples" / "render_pdf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- content rewrites


def _replace_elements(script: Script, elements: list[Element]) -> Script:
    return script.model_copy(update={"elements": elements})


EXTENSIONS = ("(V.O.)", "(O.S.)", "(O.C.)", "(ON PHONE)", "(PRE-LAP)", "(CONT’D)", "(V.O.) (CONT’D)")


def with_cue_extensions(script: Script) -> Script:
    """Every third cue gains an extension: ``ANNA (ON PHONE)``, ``BEN (PRE-LAP)``, ``ANNA (CONT’D)``."""
    elements: list[Element] = []
    cues = 0
    for element in script.elements:
        if element.type is ElementType.CHARACTER and not element.extension and not element.dual:
            cues += 1
            if cues % 3 == 0:
                element = element.model_copy(update={"extension": EXTENSIONS[(cues // 3) % len(EXTENSIONS)]})
        elements.append(element)
    return _replace_elements(script, elements)


TRANSITIONS = ("CUT TO:", "SMASH CUT TO:", "DISSOLVE TO:", "MATCH CUT TO:", "CUT TO BLACK.", "FADE TO BLACK.")


def with_transitions(script: Script) -> Script:
    """``FADE IN:`` at the left to open, a transition before every third heading, ``FADE OUT.`` and a
    centred ``THE END`` to close."""
    elements = [Element(type=ElementType.ACTION, text="FADE IN:")]
    headings = 0
    for element in script.elements:
        if element.type is ElementType.SCENE_HEADING:
            headings += 1
            if headings > 1 and headings % 3 == 0:
                text = TRANSITIONS[(headings // 3) % len(TRANSITIONS)]
                elements.append(Element(type=ElementType.TRANSITION, text=text))
        elements.append(element)
    elements.append(Element(type=ElementType.TRANSITION, text="FADE OUT."))
    elements.append(Element(type=ElementType.CENTERED, text="THE END"))
    return _replace_elements(script, elements)


BLOCKS = (
    ("SERIES OF SHOTS:", "A) The kettle boils over.", "B) The cat knocks a glass off the sill."),
    ("MONTAGE - THE LONG SUMMER",),
    ("INTERCUT - PHONE CONVERSATION",),
    ("END MONTAGE",),
    ("BACK TO SCENE",),
)


def with_montage_blocks(script: Script) -> Script:
    """After every fourth heading, a montage / series-of-shots / intercut line at the action margin."""
    elements: list[Element] = []
    headings = 0
    for element in script.elements:
        elements.append(element)
        if element.type is ElementType.SCENE_HEADING:
            headings += 1
            if headings % 4 == 0:
                block = BLOCKS[(headings // 4) % len(BLOCKS)]
                elements.extend(Element(type=ElementType.ACTION, text=line) for line in block)
    return _replace_elements(script, elements)


def with_dual_dialogue(script: Script) -> Script:
    """Every third time one speech follows another directly (another speaker, no action between), the
    second is spoken at the same time: dual dialogue (``BEN ^``)."""
    elements = list(script.elements)
    pairs = 0
    previous_cue: Element | None = None  # the cue of the speech that ends right before this element
    for index, element in enumerate(elements):
        if element.type is ElementType.CHARACTER:
            follows_speech = index > 0 and elements[index - 1].type in (ElementType.DIALOGUE, ElementType.PARENTHETICAL)
            answers = previous_cue is not None and not previous_cue.dual and previous_cue.text != element.text
            if answers and follows_speech:
                pairs += 1
                if pairs % 3 == 0:
                    element = element.model_copy(update={"dual": True})
                    elements[index] = element
            previous_cue = element
        elif element.type not in (ElementType.DIALOGUE, ElementType.PARENTHETICAL):
            previous_cue = None
    return _replace_elements(script, elements)


ACT_NAMES = ("ONE", "TWO", "THREE", "FOUR", "FIVE")


def with_act_breaks(script: Script) -> Script:
    """A teleplay's acts: ``COLD OPEN`` centred before the first heading, then ``END OF ACT ONE``, a page
    break and ``ACT TWO`` centred at a heading every quarter of the script, ``END OF SHOW`` to close."""
    headings = sum(1 for e in script.elements if e.type is ElementType.SCENE_HEADING)
    per_act = max(2, headings // 4)
    elements: list[Element] = []
    seen = 0
    for element in script.elements:
        if element.type is ElementType.SCENE_HEADING:
            if seen == 0:
                elements.append(Element(type=ElementType.CENTERED, text="COLD OPEN"))
            elif seen % per_act == 0 and seen // per_act <= len(ACT_NAMES):
                act = seen // per_act
                if act > 1:
                    elements.append(Element(type=ElementType.CENTERED, text=f"END OF ACT {ACT_NAMES[act - 2]}"))
                elements.append(Element(type=ElementType.PAGE_BREAK, text=""))
                elements.append(Element(type=ElementType.CENTERED, text=f"ACT {ACT_NAMES[act - 1]}"))
            seen += 1
        elements.append(element)
    elements.append(Element(type=ElementType.CENTERED, text="END OF SHOW"))
    return _replace_elements(script, elements)


def with_mixed_case_names(script: Script) -> Script:
    """Every fourth speaker's name gains a mixed-case prefix, as names are printed: ``McANNA``, ``DeBEN``."""
    names = sorted({e.text for e in script.elements if e.type is ElementType.CHARACTER})
    prefixes = ("Mc", "De", "Mac", "Van ")
    renamed = {name: prefixes[n % len(prefixes)] + name for n, name in enumerate(names) if n % 4 == 1}
    return _replace_elements(
        script,
        [
            e.model_copy(update={"text": renamed.get(e.text, e.text)}) if e.type is ElementType.CHARACTER else e
            for e in script.elements
        ],
    )


def _title_case(text: str) -> str:
    return " ".join(word[:1].upper() + word[1:].lower() for word in text.split(" "))


def with_mixed_case_headings(script: Script) -> Script:
    """``Int. Kitchen - Night``: some programs keep the slugline as typed."""
    return _replace_elements(
        script,
        [
            e.model_copy(update={"text": _title_case(e.text)}) if e.type is ElementType.SCENE_HEADING else e
            for e in script.elements
        ],
    )


def with_prefixless_headings(script: Script) -> Script:
    """Every fourth heading loses its ``INT.``/``EXT.``: ``KITCHEN - LATER`` (a writer's secondary heading)."""
    elements: list[Element] = []
    headings = 0
    for element in script.elements:
        if element.type is ElementType.SCENE_HEADING:
            headings += 1
            rest = element.text.split(" ", 1)
            if headings % 4 == 0 and len(rest) == 2 and rest[0].upper().rstrip(".") in ("INT", "EXT"):
                element = element.model_copy(update={"text": rest[1].strip()})
        elements.append(element)
    return _replace_elements(script, elements)


def title_and_writers(script: Script) -> tuple[str, list[str]]:
    """The script's own title (the series' name for a teleplay transcription) and writers' names."""
    page = script.title_page
    title = plain_text(" ".join(page.get("title", []))).strip() or "UNTITLED"
    writers = [name for line in page.get("author", []) + page.get("authors", []) for name in split_names(line)]
    return title, writers or ["Ada Quinn"]


def _writers_line(writers: list[str]) -> str:
    return " & ".join(writers)


CONTACT_BLOCK = ["Lantern Literary Agency", "1234 Sunset Blvd., Suite 500", "Los Angeles, CA 90028", "(310) 555-0142"]


def final_draft_page(title: str, writers: list[str]) -> dict[str, list[str]]:
    """Final Draft's title page: title, ``Written by``, names; contact bottom left, draft bottom right."""
    return {
        "title": [title],
        "credit": ["Written by"],
        "author": [_writers_line(writers)],
        "draft date": ["Revised Draft", "March 3, 2021"],
        "contact": CONTACT_BLOCK,
    }


def teleplay_page(title: str, writers: list[str]) -> dict[str, list[str]]:
    """A teleplay's: the show, the episode title in quotes, ``Teleplay by``; the network draft and a WGA
    registration in the corners."""
    return {
        "title": [title, "“Pilot”"],
        "credit": ["Teleplay by"],
        "author": [_writers_line(writers)],
        "draft date": ["Network Draft", "9/12/21"],
        "contact": ["WGAw Registered No. 1234567"],
    }


def large_title_page(title: str, writers: list[str]) -> dict[str, list[str]]:
    """Fade In / Highland / screenplain: a large bold title, ``by``, the names; date and address bottom left."""
    return {
        "title": [title],
        "credit": ["by"],
        "author": [_writers_line(writers)],
        "draft date": ["7/8/1998"],
        "contact": ["PO Box 10031", "San Rafael CA 94912", "Registered WGAw No. 701428"],
    }


def _two_lines(title: str) -> list[str]:
    words = title.split()
    if len(words) < 2:
        return [title]
    cut = (len(words) + 1) // 2
    return [" ".join(words[:cut]), " ".join(words[cut:])]


def adaptation_page(title: str, writers: list[str]) -> dict[str, list[str]]:
    """An adaptation's: the title on two lines, the credit and the names on one line, the source on
    four; first draft, date and copyright bottom left."""
    return {
        "title": _two_lines(title),
        "credit": [f"Screenplay by {_writers_line(writers)}"],
        "source": ["Based on the novel", "THE DROWNED COAST", "by", "Ines Paz"],
        "draft date": ["FIRST DRAFT", "January 5, 2022"],
        "copyright": ["© 2022 Lantern Pictures"],
    }


def adaptation_page_read(title: str, writers: list[str]) -> dict[str, list[str]]:
    page = adaptation_page(title, writers)
    return {**page, "credit": ["Screenplay by"], "author": [_writers_line(writers)]}


def no_title_page(title: str, writers: list[str]) -> dict[str, list[str]]:
    return {}


def running_header_page(title: str, writers: list[str]) -> dict[str, list[str]]:
    """What the header ``TITLE  Blue Revision  3/2/21`` on every page says."""
    return {"title": [title.upper()], "draft date": ["Blue Revision", "3/2/21"]}


def with_title_page(trait: Trait, script: Script) -> Script:
    if trait.title_page is None:
        return script
    return script.model_copy(update={"title_page": trait.title_page(*title_and_writers(script))})


# --------------------------------------------------------------------------- traits


@dataclass(frozen=True)
class Trait:
    name: str
    description: str
    style: dict[str, object]  # fields of render_pdf.Style
    rewrite: Callable[[Script], Script] | None = None
    program: str = "render_pdf"  # or "screenplain": screenplain's own PDF export (reportlab)
    # Title page traits: the page drawn, from the script's own title and writers, and what the reader
    # should find (the page itself unless the trait says otherwise: no title page, a running header).
    title_page: Callable[[str, list[str]], dict[str, list[str]]] | None = None
    expected_title_page: Callable[[str, list[str]], dict[str, list[str]]] | None = None

    @property
    def marks_secondary_headings(self) -> bool:
        """Whether a forced heading without INT./EXT. (``.THE LANTERN ROOM``) looks different from a
        caps action line on this trait's page: bold sluglines or scene numbers in a margin. Without
        either no layout reader can tell them apart (the corpus's known limit, in BENCHMARKS.md); a number
        typed before it (``3. THE LANTERN ROOM``) reads like a numbered list in the action."""
        marked = self.style.get("heading_bold", True) or self.style.get("scene_numbers") in ("left", "right", "both")
        return self.program == "render_pdf" and bool(marked)


def indents(cue: float, dialogue: float, paren: float, dialogue_width: int, paren_width: int) -> dict[str, object]:
    """A program's speech indents, in inches from the page edge, and its column widths in characters."""
    return {
        "cue_x": cue,
        "dialogue_x": dialogue,
        "paren_x": paren,
        "dialogue_width": dialogue_width,
        "paren_width": paren_width,
    }


FINAL_DRAFT = indents(3.5, 2.5, 3.0, 35, 25)
MOVIE_MAGIC = indents(4.2, 2.9, 3.6, 33, 22)
CELTX = indents(4.0, 2.5, 3.3, 38, 24)
NARROW_GAP = indents(3.5, 2.9, 3.2, 30, 22)

TRAITS: tuple[Trait, ...] = (
    Trait("baseline", "this renderer's layout: Letter, Courier 12, bold sluglines", {}),
    Trait("plain-headings", "sluglines neither bold nor underlined", {"heading_bold": False}),
    Trait("a4", "A4 paper (595 x 842 pt), same indents", {"page": "a4"}),
    Trait("indents-final-draft", "cue 3.5in, dialogue 2.5in, paren 3.0in (Final Draft, WriterDuet)", FINAL_DRAFT),
    Trait("indents-movie-magic", "cue 4.2in, dialogue 2.9in, paren 3.6in (Movie Magic)", MOVIE_MAGIC),
    Trait("indents-celtx", "cue 4.0in, dialogue 2.5in 3.8in wide, paren 3.3in", CELTX),
    Trait("indents-narrow-gap", "cue 3.5in over dialogue 2.9in: cue only 6 characters in", NARROW_GAP),
    Trait(
        "a4-narrow-margins",
        "A4 with a 1.0in left margin: action 1.0in, dialogue 2.0in, paren 2.6in, cue 3.2in, right edge 7.3in",
        {"page": "a4", "action_x": 1.0, "right_x": 7.3, **indents(3.2, 2.0, 2.6, 35, 25)},
    ),
    Trait("bold-cues", "character cues in bold as well as the sluglines", {"cue_bold": True}),
    Trait("wrapped-headings", "sluglines wrap at 30 characters onto a second line", {"heading_width": 30}),
    Trait("bold-underlined-headings", "sluglines bold and underlined", {"heading_underline": True}),
    Trait(
        "underlined-headings",
        "sluglines underlined, not bold",
        {"heading_underline": True, "heading_bold": False},
    ),
    Trait("scene-numbers-left", "scene numbers in the left margin only", {"scene_numbers": "left"}),
    Trait("scene-numbers-right", "scene numbers in the right margin only", {"scene_numbers": "right"}),
    Trait(
        "scene-numbers-close-left",
        "left scene numbers at 1.05in, so `123` ends 1.5 characters before the slugline",
        {"scene_numbers": "left", "left_number_x": 1.05},
    ),
    Trait("scene-numbers-both", "scene numbers in both margins", {"scene_numbers": "both"}),
    Trait(
        "scene-numbers-inline",
        "scene number typed before the slugline at the margin: `12. INT. BARN - NIGHT`",
        {"scene_numbers": "inline", "heading_bold": False},
    ),
    Trait("page-numbers-bottom", "page numbers bottom centre", {"page_numbers": "bottom-center"}),
    Trait(
        "revision-header",
        "header `Pink Revision 3/2/2021` (colour changes page to page) beside the page number",
        {"header": "{colour} Revision 3/2/2021", "colours": ("Pink", "Blue", "Yellow", "Green", "Goldenrod")},
    ),
    Trait(
        "revision-header-bottom-numbers",
        "revision header alone at the top, page numbers at the bottom",
        {
            "header": "{colour} Revision 3/2/2021",
            "colours": ("Pink", "Blue", "Yellow", "Green", "Goldenrod"),
            "page_numbers": "bottom-center",
        },
    ),
    Trait(
        "curly-contd",
        "(MORE) / NAME (CONT’D) with a curly apostrophe, and (CONT’D) on a speaker's next speech",
        {"contd": "(CONT’D)", "contd_repeat_speaker": True},
    ),
    Trait("cue-extensions", "(V.O.) (O.S.) (O.C.) (ON PHONE) (PRE-LAP) on every third cue", {}, with_cue_extensions),
    Trait("mixed-case-names", "cues such as `McANNA`, `DeBEN`, `MacCLAIRE`", {}, with_mixed_case_names),
    Trait("wrapped-parentheticals", "parentheticals wrap at 14 characters", {"paren_width": 14}),
    Trait(
        "transitions-and-centred",
        "FADE IN: at the left, CUT TO: / SMASH CUT TO: / DISSOLVE TO: flush right, centred THE END",
        {},
        with_transitions,
    ),
    Trait("montage-intercut", "SERIES OF SHOTS / MONTAGE / INTERCUT lines after every fourth heading", {},
          with_montage_blocks),
    Trait("mixed-case-headings", "`Int. Kitchen - Night` sluglines", {"heading_bold": False}, with_mixed_case_headings),
    Trait(
        "prefixless-numbered-headings",
        "every fourth slugline without INT./EXT., plain, with scene numbers in both margins",
        {"heading_bold": False, "scene_numbers": "both"},
        with_prefixless_headings,
    ),
    Trait(
        "prefixless-bold-headings",
        "every fourth slugline without INT./EXT., bold, no scene numbers",
        {},
        with_prefixless_headings,
    ),
    Trait("leading-13.6", "Courier 12 on Word's single spacing (13.6 pt lines)", {"line": 13.6}),
    Trait("two-lines-before-headings", "two blank lines above every slugline", {"lines_before_heading": 2}),
    Trait(
        "more-contd-variants",
        "`(more)` in lower case and `NAME (CONT.)` across page breaks",
        {"more": "(more)", "contd": "(CONT.)"},
    ),
    Trait(
        "transitions-left-aligned",
        "transitions left-aligned at 6.0in (word-processor templates), not flush right",
        {"transition_x": 6.0},
        with_transitions,
    ),
    Trait("courier-prime", "Courier Prime (TTF, embedded), 12 pt", {"font": str(COURIER_PRIME)}),
    Trait("courier-11.5", "Courier at 11.5 pt on a 12 pt line", {"font_size": 11.5}),
    Trait(
        "dejavu-mono-11",
        "DejaVu Sans Mono 11 pt (a different monospace)",
        {"font": str(DEJAVU_MONO), "font_size": 11.0},
    ),
    Trait(
        "production-draft",
        "A4, Movie Magic indents, numbers both sides, revision header, curly CONT’D, extensions, "
        "transitions, wrapped plain sluglines",
        {
            **MOVIE_MAGIC,
            "page": "a4",
            "scene_numbers": "both",
            "header": "{colour} Revision 3/2/2021",
            "colours": ("Pink", "Blue"),
            "contd": "(CONT’D)",
            "contd_repeat_speaker": True,
            "heading_bold": False,
            "heading_width": 40,
        },
        lambda script: with_transitions(with_cue_extensions(script)),
    ),
    Trait("screenplain-export", "screenplain's own PDF export (reportlab, Courier Prime)", {}, program="screenplain"),
    Trait(
        "dual-dialogue",
        "every third speech answering another set beside it, Final Draft's columns (1.5in and 4.5in, 25 wide)",
        {"dual_right_x": 4.5},
        with_dual_dialogue,
    ),
    Trait("justified-action", "action paragraphs justified to the margin, as a word processor sets them",
          {"justify_action": True}),
    Trait(
        "continueds",
        "a scene over a page break: `(CONTINUED)` flush right below, `CONTINUED:` / `CONTINUED: (2)` above",
        {"continued_bottom": "(CONTINUED)", "continued_top": "CONTINUED:"},
    ),
    Trait(
        "continueds-numbered",
        "as continueds, the scene numbers in both margins on the `12  CONTINUED: (2)  12` lines, plain sluglines",
        {"continued_bottom": "(CONTINUED)", "continued_top": "CONTINUED:", "scene_numbers": "both",
         "heading_bold": False},
    ),
    Trait(
        "act-breaks",
        "teleplay acts: `COLD OPEN`, `END OF ACT ONE` / page break / `ACT TWO` centred, `END OF SHOW`",
        {},
        with_act_breaks,
    ),
    Trait(
        "title-page-final-draft",
        "title page: underlined title, `Written by`, contact block bottom left, draft and date bottom right",
        {"title_bold": False, "title_underline": True, "draft_right": True},
        title_page=final_draft_page,
    ),
    Trait(
        "title-page-teleplay",
        "title page: show and `“Pilot”` in quotes, `Teleplay by`, network draft bottom right, WGA number",
        {"title_bold": False, "title_case": "as-typed", "draft_right": True},
        title_page=teleplay_page,
    ),
    Trait(
        "title-page-large-title",
        "title page: title 24 pt bold, `by`, date and address with a WGA registration bottom left",
        {"title_size": 24.0},
        title_page=large_title_page,
    ),
    Trait(
        "title-page-adaptation",
        "title page: title on two lines, `Screenplay by NAME` on one line, a four-line source, copyright",
        {},
        title_page=adaptation_page,
        expected_title_page=adaptation_page_read,
    ),
    Trait(
        "no-title-page-header",
        "no title page; header `TITLE  Blue Revision  3/2/21` atop every page but the first",
        {"header": "{title}  Blue Revision  3/2/21"},
        title_page=no_title_page,
        expected_title_page=running_header_page,
    ),
)
TRAITS_BY_NAME = {trait.name: trait for trait in TRAITS}


def source_for(trait: Trait, fountain_text: str) -> str:
    """The Fountain text the trait's PDF is drawn from (the oracle's input)."""
    if trait.rewrite is None and trait.title_page is None:
        return fountain_text
    script = with_title_page(trait, parse_fountain(fountain_text))
    return write_fountain(trait.rewrite(script) if trait.rewrite else script)


def expected_title_page(trait: Trait, original_fountain: str) -> dict[str, list[str]]:
    """The title page the reader should find in the trait's PDF (empty for a trait that is not about it)."""
    if trait.title_page is None:
        return {}
    title, writers = title_and_writers(parse_fountain(original_fountain))
    return (trait.expected_title_page or trait.title_page)(title, writers)


TITLE_PAGE_FIELDS = ("title", "author", "draft date", "contact")


def _field_value(page: dict[str, list[str]], field: str) -> list[str]:
    lines = page.get(field, []) + (page.get("authors", []) if field == "author" else [])
    if field == "author":
        lines = [name for line in lines for name in split_names(line)]
    return [plain_text(line).strip().strip("\"'“”‘’").strip().casefold() for line in lines if line.strip()]


def title_page_matches(expected: dict[str, list[str]], read: dict[str, list[str]]) -> list[float]:
    """Per field of :data:`TITLE_PAGE_FIELDS`: 1.0 when the reader found it as drawn (case, quotes and
    emphasis aside), 0.0 when not, -1.0 when the page does not carry that field."""
    return [
        -1.0 if not expected.get(field) else float(_field_value(expected, field) == _field_value(read, field))
        for field in TITLE_PAGE_FIELDS
    ]


def render_trait(trait: Trait, fountain_text: str, title: str = "UNTITLED") -> bytes:
    """The PDF of ``fountain_text`` (already rewritten by :func:`source_for`) drawn with ``trait``;
    ``title`` is what a header with ``{title}`` prints (the source may have no title page left)."""
    if trait.program == "screenplain":
        return _screenplain_pdf(fountain_text)
    module = render_pdf_module()
    script = parse_fountain(fountain_text)
    options = dict(trait.style)
    options["header"] = str(options.get("header", "")).replace("{title}", title.upper())
    style = module.Style(**{"smart_quotes": True, **options})  # real software prints curly quotes
    return bytes(module.render(script, style=style))


def _screenplain_pdf(fountain_text: str) -> bytes:
    from screenplain.export.pdf import to_pdf
    from screenplain.parsers import fountain as screenplain_fountain

    screenplay = screenplain_fountain.parse_lines(fountain_text.splitlines())
    with tempfile.TemporaryDirectory(prefix="cineforge-traits-") as tmp:
        out = Path(tmp) / "script.pdf"
        to_pdf(screenplay, str(out))
        return out.read_bytes()


@dataclass(frozen=True)
class TraitScore:
    trait: str
    script: str
    report: FidelityReport
    stray_words: int  # words in the reader's text that the source never uses: page furniture that leaked
    title_page: list[float] | None = None  # title_page_matches, for a title page trait


_WORD_RE = re.compile(r"[^\W\d_]+")
_CONTINUATION_WORDS = {"cont", "d", "more"}  # a cue's (CONT'D) that a program adds is script text


def stray_words(source: str, read_back: str) -> int:
    """Words the reader produced that appear nowhere in the source (case-folded; quotes and numbers
    aside): a header, page label or revision colour taken for script text. Headings and speakers do
    not see these, yet they end up in the action a breakdown reads."""
    known = {word.casefold() for word in _WORD_RE.findall(source)} | _CONTINUATION_WORDS
    return sum(1 for word in _WORD_RE.findall(read_back) if word.casefold() not in known)


def score_trait(trait: Trait, script: str, fountain_text: str, workdir: Path) -> TraitScore:
    """Draw ``fountain_text`` with ``trait``, read the PDF back, score it against the source."""
    source = source_for(trait, fountain_text)
    path = workdir / f"{script}-{trait.name}.pdf"
    title = title_and_writers(parse_fountain(fountain_text))[0]
    path.write_bytes(render_trait(trait, source, title))
    text = read_source(path).text
    candidate, _parser = digest_fountain(text)
    expected = expected_title_page(trait, fountain_text)
    # A header read as a title page is not furniture leaking: its words and the keys that name them.
    known = "\n".join([source, *expected, *(line for lines in expected.values() for line in lines)])
    title_page = title_page_matches(expected, parse_fountain(text).title_page) if trait.title_page else None
    return TraitScore(
        trait.name, script, compare(digest_screenplain(source), candidate), stray_words(known, text), title_page
    )


def with_style(trait: Trait, **style: object) -> Trait:
    return replace(trait, style={**trait.style, **style})
