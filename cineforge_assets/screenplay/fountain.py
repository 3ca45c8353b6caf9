"""Fountain 1.1 reader and writer (https://fountain.io/syntax).

``parse_fountain`` turns Fountain text into a :class:`Script`; ``write_fountain`` turns a
:class:`Script` back into canonical Fountain, forcing element types (``.``, ``@``, ``!``, ``>``)
wherever the plain form would be read as something else, so that
``parse_fountain(write_fountain(s))`` reproduces the element types and texts of ``s``.

Parsing works on *blocks*: runs of non-blank lines separated by blank lines. Which element a
block holds depends on the block as a whole (a character cue is an upper-case line followed by a
non-blank line and preceded by a blank one; a scene heading or transition is a block of exactly
one line), so the parser makes one pass over the lines, closing a block at each blank line and
classifying it with compiled regexes. The classification order and the edge cases follow the
reference implementation ``screenplain`` so that both agree on scene and dialogue boundaries.

Conventions of the resulting elements:

* ``text`` never contains Fountain forcing characters; emphasis markup (``*``, ``_``) is kept.
* PARENTHETICAL text keeps its parentheses: ``(closer)``.
* Multi-line DIALOGUE, ACTION, CENTERED and LYRICS elements join their lines with ``\\n``;
  an intentionally empty line inside dialogue (written as two spaces) is an empty line.
* Inline notes ``[[...]]`` are removed from the text they sit in; a block that holds nothing
  but notes becomes NOTE elements. Boneyard ``/* ... */`` is removed before anything else.
* ``line`` is the 1-based line of the input where the element starts.

What Fountain cannot express, and the writer therefore cannot round-trip: two DIALOGUE (or
LYRICS) elements in a row (they read back as one, lines joined), a dialogue line starting with
``(`` or ``~`` (read as parenthetical / lyrics), a CHARACTER with no speech after it, a
transition ending in ``<`` (read as centered), and text containing ``[[``, ``]]``, ``/*`` or
``*/``. Tabs become four spaces and trailing blanks are dropped, as in the reader.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from cineforge_assets.screenplay.elements import Element, ElementType, Script
from resources.providers.screenplay_grammar import (
    CUE_NAME_END_RE,
    FORCED_CUE_MARK,
    SCENE_HEADING_RE,
    is_cue,
    is_transition,
)

__all__ = [
    "parse_fountain",
    "write_fountain",
    "render_fountain",
    "strip_emphasis",
    "plain_text",
    "character_name",
]

_BONEYARD_RE = re.compile(r"/\*.*?\*/", re.DOTALL)
_NOTE_RE = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
_LINEBREAK_RE = re.compile(r"\r\n|\r")

# Title page keys are words ("Title", "Draft date", "Contact"), so "**FADE IN:**" is not one.
_TITLE_KEY_RE = re.compile(r"([A-Za-z][\w .'-]*?)\s*:\s*(.*)$")
_TITLE_VALUE_RE = re.compile(r"(?:\s{3,}|\t)(\S.*)$")

# A forced heading starts with a single "." (``...`` opens an ordinary line of action).
_FORCED_HEADING_RE = re.compile(r"\.(?!\.)\s*(\S.*?)\s*$")
_SCENE_NUMBER_RE = re.compile(r"(.*?)\s*#([\w\-.]+)#\s*$")
_SECTION_RE = re.compile(r"(#{1,6})\s*([^#].*?)\s*$")
_CENTERED_RE = re.compile(r"\s*>\s*(.*?)\s*<\s*$")
_PAGE_BREAK_RE = re.compile(r"={3,}\s*$")
_DUAL_RE = re.compile(r"(.*?)\s*\^\s*$")
_WHITESPACE_RE = re.compile(r"\s+")
_EMPHASIS_RE = re.compile(r"(?<!\\)(\*{1,3}|_)(?=\S)(.+?)(?<=\S)(?<!\\)\1")
_ESCAPE_RE = re.compile(r"\\([*_\\])")
# Revision marks: a ``*`` (Final Draft) or dagger standing alone as a word, printed in the margin of a
# changed line; extraction leaves them at either end of the line (``SHERLOCK *``, ``† INT. HALL``).
_REVISION_MARK_RE = re.compile(r"(?:^|\s+)[*\u2020\u2021]+(?=\s|$)")

_TWO_SPACES = "  "


def strip_emphasis(text: str) -> str:
    """Remove Fountain emphasis markup (``*italic*``, ``**bold**``, ``_underline_``) and escapes."""
    previous = None
    while previous != text:
        previous = text
        text = _EMPHASIS_RE.sub(r"\2", text)
    return _ESCAPE_RE.sub(r"\1", text)


def plain_text(text: str) -> str:
    """A heading or name as a reader sees it: no emphasis markup, escapes or revision marks.

    ``**ABOUT SAVE THE CAT!**`` -> ``ABOUT SAVE THE CAT!``; ``INT. HALL - DAY *`` -> ``INT. HALL - DAY``.
    Inner spacing is kept (it is part of how the writer typed the heading).
    """
    return _REVISION_MARK_RE.sub("", strip_emphasis(text)).strip()


def character_name(cue: str) -> str:
    """The bare speaking name of a cue: ``SHERLOCK (V.O.) (CONT'D) *`` -> ``SHERLOCK``.

    Drops Fountain markers (``@``, ``^``), emphasis, revision marks and every extension, so one
    person has one name whatever the cue adds (``(O.S.)``, ``(cont'd)``, ``(ON PHONE)``).
    """
    name = plain_text(cue.strip().removeprefix(FORCED_CUE_MARK))
    dual = _DUAL_RE.match(name)
    if dual:
        name = dual.group(1)
    name = CUE_NAME_END_RE.sub("", name)
    return _WHITESPACE_RE.sub(" ", plain_text(name)).strip()


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _is_blank(line: str) -> bool:
    # A line of two spaces is *not* blank: Fountain uses it for an intentional empty line
    # inside dialogue or action.
    return line == "" or line == " "


def _strip_boneyard(lines: list[str]) -> tuple[list[str], list[int]]:
    text = "\n".join(lines)
    numbers = list(range(1, len(lines) + 1))
    if "/*" not in text:
        return lines, numbers
    return _remove_spans(text, numbers, _BONEYARD_RE)[:2]


def _remove_spans(
    text: str, numbers: Sequence[int], pattern: re.Pattern[str]
) -> tuple[list[str], list[int], list[bool]]:
    """Delete every match of ``pattern`` from ``text`` while keeping track of line numbers.

    ``numbers[i]`` is the source line number of line ``i`` of ``text``. Returns the resulting
    lines, the source line number each of them starts on, and whether a deletion touched the
    line. A match spanning line breaks joins the text around it into one line, which keeps the
    number of the line it starts on.
    """
    out_lines: list[str] = []
    out_numbers: list[int] = []
    out_touched: list[bool] = []
    parts: list[str] = []
    start_index = 0  # source line index where the output line being built starts
    source_index = 0  # source line index of the current position
    touched = False

    def keep(segment: str) -> None:
        nonlocal parts, start_index, source_index, touched
        pieces = segment.split("\n")
        parts.append(pieces[0])
        for piece in pieces[1:]:
            out_lines.append("".join(parts))
            out_numbers.append(numbers[start_index])
            out_touched.append(touched)
            source_index += 1
            start_index = source_index
            parts = [piece]
            touched = False

    position = 0
    for match in pattern.finditer(text):
        keep(text[position : match.start()])
        source_index += match.group().count("\n")
        touched = True
        position = match.end()
    keep(text[position:])
    out_lines.append("".join(parts))
    out_numbers.append(numbers[start_index])
    out_touched.append(touched)
    return out_lines, out_numbers, out_touched


def _parse_title_page(lines: Sequence[str]) -> dict[str, list[str]] | None:
    """Read the leading block as a title page, or return None when it is not one.

    Every line must be ``Key: value`` or an indented continuation value, and at least one key
    must carry a value, so a script that opens with ``FADE IN:`` is not mistaken for one.
    """
    result: dict[str, list[str]] = {}
    key: str | None = None
    has_value = False
    for line in lines:
        continuation = _TITLE_VALUE_RE.match(line)
        if continuation and key is not None:
            result[key].append(continuation.group(1).strip())
            has_value = True
            continue
        key_match = _TITLE_KEY_RE.match(line)
        if not key_match:
            return None
        key = key_match.group(1).strip().lower()
        values = result.setdefault(key, [])
        value = key_match.group(2).strip()
        if value:
            values.append(value)
            has_value = True
    return result if has_value else None


def _element(kind: ElementType, text: str, line: int, **extra: object) -> Element:
    return Element(type=kind, text=text, line=line, **extra)  # type: ignore[arg-type]


def _split_cue(cue: str) -> tuple[str, str, bool]:
    """``EDWARD (V.O.)(CONT'D) ^`` -> (``EDWARD``, ``(V.O.)(CONT'D)``, dual)."""
    cue = cue.strip()
    dual = False
    dual_match = _DUAL_RE.match(cue)
    if dual_match:
        cue = dual_match.group(1)
        dual = True
    name, paren, rest = cue.partition("(")
    extension = (paren + rest).strip() if paren else ""
    return _WHITESPACE_RE.sub(" ", name).strip(), extension, dual


def _dialogue_elements(lines: Sequence[str], numbers: Sequence[int]) -> list[Element]:
    """The speech that follows a character cue: parentheticals, dialogue and lyrics lines."""
    elements: list[Element] = []
    buffer: list[str] = []
    buffer_kind: ElementType | None = None
    buffer_line = 0
    in_parenthetical = False

    def flush() -> None:
        if buffer_kind is not None:
            elements.append(_element(buffer_kind, "\n".join(buffer), buffer_line))

    for raw, number in zip(lines, numbers, strict=True):
        line = raw.strip()
        if line.startswith("(") and not in_parenthetical:
            kind = ElementType.PARENTHETICAL
            in_parenthetical = True
            starts_new = True
        elif in_parenthetical:
            kind = ElementType.PARENTHETICAL
            starts_new = False
        elif line.startswith("~"):
            kind = ElementType.LYRICS
            line = line[1:].strip()
            starts_new = buffer_kind is not ElementType.LYRICS
        else:
            kind = ElementType.DIALOGUE
            starts_new = buffer_kind is not ElementType.DIALOGUE
        if in_parenthetical and line.endswith(")"):
            in_parenthetical = False
        if starts_new:
            flush()
            buffer = [line]
            buffer_kind = kind
            buffer_line = number
        else:
            buffer.append(line)
    flush()
    return elements


def _parse_block(lines: list[str], numbers: list[int]) -> list[Element]:
    """Classify one block of non-blank lines: notes first, then the first reader that claims the rest.

    ``_BLOCK_READERS`` lists the readers in screenplain's order; a block nobody claims is action.
    """
    notes = _notes_only(lines, numbers)
    if notes is not None:
        return notes
    lines, numbers = _without_inline_notes(lines, numbers)
    if not lines:
        return []
    for read in _BLOCK_READERS:
        elements = read(lines, numbers)
        if elements is not None:
            return elements
    return [_action(lines, numbers[0])]


def _notes_only(lines: list[str], numbers: list[int]) -> list[Element] | None:
    """A block holding nothing but ``[[notes]]`` becomes NOTE elements, else None."""
    if not any("[[" in line for line in lines):
        return None
    joined = "\n".join(lines)
    if _NOTE_RE.sub("", joined).strip():
        return None
    return [
        _element(ElementType.NOTE, match.group(1).strip(), numbers[joined.count("\n", 0, match.start())])
        for match in _NOTE_RE.finditer(joined)
    ]


def _without_inline_notes(lines: list[str], numbers: list[int]) -> tuple[list[str], list[int]]:
    """The block with its inline notes removed, and the lines that held only a note dropped."""
    if not any("[[" in line for line in lines):
        return lines, numbers
    stripped, new_numbers, touched = _remove_spans("\n".join(lines), numbers, _NOTE_RE)
    kept = [i for i, line in enumerate(stripped) if line.strip() or not touched[i]]
    return [stripped[i].rstrip() if touched[i] else stripped[i] for i in kept], [new_numbers[i] for i in kept]


def _forced_action(lines: list[str], numbers: list[int]) -> list[Element] | None:
    return [_action(lines, numbers[0])] if lines[0].startswith("!") else None


def _page_break(lines: list[str], numbers: list[int]) -> list[Element] | None:
    if len(lines) == 1 and _PAGE_BREAK_RE.match(lines[0]):
        return [_element(ElementType.PAGE_BREAK, "", numbers[0])]
    return None


def _single_line_heading(lines: list[str], numbers: list[int]) -> list[Element] | None:
    heading = _heading(lines[0], numbers[0]) if len(lines) == 1 else None
    return [heading] if heading is not None else None


def _centered(lines: list[str], numbers: list[int]) -> list[Element] | None:
    matches = [_CENTERED_RE.match(line) for line in lines]
    if not all(matches):
        return None
    text = "\n".join(match.group(1) for match in matches if match)
    return [_element(ElementType.CENTERED, text, numbers[0])]


def _lyrics(lines: list[str], numbers: list[int]) -> list[Element] | None:
    if not lines[0].lstrip().startswith("~"):
        return None
    text = "\n".join(line.strip()[1:].strip() if line.strip().startswith("~") else line.strip() for line in lines)
    return [_element(ElementType.LYRICS, text, numbers[0])]


def _speech(lines: list[str], numbers: list[int]) -> list[Element] | None:
    """A cue (forced with ``@``, or upper case before any extension) followed by dialogue."""
    first = lines[0]
    if len(lines) < 2 or first.endswith(_TWO_SPACES):
        return None
    if not is_cue(first):
        return None
    name, extension, dual = _split_cue(first.removeprefix(FORCED_CUE_MARK))
    character = _element(ElementType.CHARACTER, name, numbers[0], extension=extension, dual=dual)
    return [character, *_dialogue_elements(lines[1:], numbers[1:])]


def _transition(lines: list[str], numbers: list[int]) -> list[Element] | None:
    """One line, forced with ``>`` or upper case ending in ``TO:``."""
    text = lines[0].strip()
    if len(lines) != 1:
        return None
    if text.startswith(">"):
        return [_element(ElementType.TRANSITION, text[1:].strip(), numbers[0])]
    if is_transition(text):
        return [_element(ElementType.TRANSITION, text, numbers[0])]
    return None


def _action(lines: Sequence[str], start: int) -> Element:
    text = "\n".join((line[1:] if line.startswith("!") else line).rstrip() for line in lines)
    return _element(ElementType.ACTION, text, start)


def _heading(line: str, number: int) -> Element | None:
    forced = _FORCED_HEADING_RE.match(line)
    if forced:
        text = forced.group(1)
    elif SCENE_HEADING_RE.match(line):
        text = line.strip()
    else:
        return None
    scene_number: str | None = None
    numbered = _SCENE_NUMBER_RE.match(text)
    if numbered:
        text, scene_number = numbered.group(1), numbered.group(2)
    return _element(ElementType.SCENE_HEADING, text, number, scene_number=scene_number)


def _structural_elements(lines: Sequence[str], numbers: Sequence[int]) -> list[Element] | None:
    """A block made only of section (``#``) and synopsis (``=``) lines, else None."""
    if lines[0][:1] not in ("#", "="):
        return None
    elements: list[Element] = []
    for line, number in zip(lines, numbers, strict=True):
        section = _SECTION_RE.match(line)
        if section:
            hashes, text = section.groups()
            elements.append(_element(ElementType.SECTION, text.strip(), number, level=len(hashes)))
        elif line.startswith("=") and not _PAGE_BREAK_RE.match(line):
            elements.append(_element(ElementType.SYNOPSIS, line[1:].strip(), number))
        else:
            return None
    return elements


_BLOCK_READERS: tuple[Callable[[list[str], list[int]], list[Element] | None], ...] = (
    _forced_action,
    _page_break,
    _structural_elements,
    _single_line_heading,
    _centered,
    _lyrics,
    _speech,
    _transition,
)


def parse_fountain(text: str) -> Script:
    """Parse Fountain source into a :class:`Script` (title page + typed, line-numbered elements)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = _LINEBREAK_RE.sub("\n", text).expandtabs(4)
    lines, numbers = _strip_boneyard(text.split("\n"))

    index = 0
    title_page: dict[str, list[str]] = {}
    first_block_end = 0
    while first_block_end < len(lines) and not _is_blank(lines[first_block_end]):
        first_block_end += 1
    if first_block_end:
        parsed_title = _parse_title_page(lines[:first_block_end])
        if parsed_title is not None:
            title_page = parsed_title
            index = first_block_end

    elements: list[Element] = []
    block: list[str] = []
    block_numbers: list[int] = []
    for line, number in zip(lines[index:], numbers[index:], strict=True):
        if _is_blank(line):
            if block:
                elements.extend(_parse_block(block, block_numbers))
                block, block_numbers = [], []
        else:
            block.append(line)
            block_numbers.append(number)
    if block:
        elements.extend(_parse_block(block, block_numbers))
    return Script(title_page=title_page, elements=elements)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

_SPEECH_TYPES = frozenset({ElementType.PARENTHETICAL, ElementType.DIALOGUE, ElementType.LYRICS})


def _action_lines(text: str) -> list[str]:
    # Trailing blanks are not part of Fountain action (the reader drops them), and an empty line
    # inside the element is written as two spaces so that it does not end the block.
    return [line.rstrip() or _TWO_SPACES for line in text.split("\n")]


def _plain_lines(element: Element) -> list[str]:
    kind = element.type
    if kind is ElementType.SCENE_HEADING:
        number = f" #{element.scene_number}#" if element.scene_number else ""
        return [element.text.strip() + number]
    if kind is ElementType.ACTION:
        # The reader drops one leading "!" from every action line, so a literal one is doubled.
        return [("!" + line) if line.startswith("!") else line for line in _action_lines(element.text)]
    if kind is ElementType.CHARACTER:
        cue = element.text.strip()
        if element.extension:
            cue += " " + element.extension.strip()
        if element.dual:
            cue += " ^"
        return [cue]
    if kind is ElementType.PARENTHETICAL:
        text = element.text.strip()
        if not text.startswith("("):
            text = f"({text})"
        return [line.strip() for line in text.split("\n")]
    if kind is ElementType.DIALOGUE:
        return [line.strip() or _TWO_SPACES for line in element.text.split("\n")]
    if kind is ElementType.LYRICS:
        return ["~" + line.strip() for line in element.text.split("\n")]
    if kind is ElementType.TRANSITION:
        return [element.text.strip()]
    if kind is ElementType.CENTERED:
        return [f"> {line.strip()} <" for line in element.text.split("\n")]
    if kind is ElementType.SECTION:
        return ["#" * min(max(element.level, 1), 6) + " " + element.text.strip()]
    if kind is ElementType.SYNOPSIS:
        return ["= " + element.text.strip()]
    if kind is ElementType.NOTE:
        return [f"[[{element.text.strip()}]]"]
    return ["==="]  # PAGE_BREAK


def _forced_lines(element: Element, plain: list[str]) -> list[str]:
    kind = element.type
    if kind is ElementType.SCENE_HEADING:
        text = plain[0]
        return [(". " if text.startswith(".") else ".") + text]
    if kind is ElementType.ACTION:
        return ["!" + plain[0], *plain[1:]] if not plain[0].startswith("!!") else plain
    if kind is ElementType.CHARACTER:
        return ["@" + plain[0]]
    if kind is ElementType.TRANSITION:
        return ["> " + plain[0]]
    return plain


def _signature(elements: Iterable[Element]) -> list[tuple[str, str, str, bool, str | None, int]]:
    return [(e.type.value, e.text, e.extension, e.dual, e.scene_number, e.level) for e in elements]


def _group_blocks(elements: Sequence[Element]) -> list[list[Element]]:
    """Elements that share one Fountain block: a character cue with its speech; else one each."""
    blocks: list[list[Element]] = []
    for element in elements:
        if element.type in _SPEECH_TYPES and blocks and blocks[-1][0].type is ElementType.CHARACTER:
            blocks[-1].append(element)
        else:
            blocks.append([element])
    return blocks


def _block_lines(block: list[Element]) -> tuple[list[str], list[int]]:
    """Fountain lines for one block and each element's offset inside it, forcing if needed."""
    head = block[0]
    variants = [_plain_lines(head)]
    forced = _forced_lines(head, variants[0])
    if forced != variants[0]:
        variants.append(forced)
    tail: list[list[str]] = [_plain_lines(element) for element in block[1:]]
    expected = _signature(_normalized(block))
    chosen: tuple[list[str], list[int]] | None = None
    for head_lines in variants:
        lines = list(head_lines)
        offsets = [0]
        for element_lines in tail:
            offsets.append(len(lines))
            lines.extend(element_lines)
        candidate = (lines, offsets)
        if chosen is None:
            chosen = candidate
        reparsed = _parse_block(lines, list(range(len(lines))))
        if _signature(reparsed) == expected:
            return candidate
        chosen = candidate  # keep the most forced variant when nothing reproduces exactly
    assert chosen is not None
    return chosen


def _normalized(block: Sequence[Element]) -> list[Element]:
    """What a block is expected to read back as (parentheses are always written)."""
    result = []
    for element in block:
        if element.type is ElementType.PARENTHETICAL and not element.text.strip().startswith("("):
            element = element.model_copy(update={"text": f"({element.text.strip()})"})
        result.append(element)
    return result


def render_fountain(script: Script) -> tuple[str, list[int]]:
    """Canonical Fountain text for ``script`` plus the 1-based line each element starts on."""
    out: list[str] = []
    for key, values in script.title_page.items():
        values = [value.strip() for value in values if value.strip()]
        if not values:
            continue
        label = key[:1].upper() + key[1:]
        if len(values) == 1:
            out.append(f"{label}: {values[0]}")
        else:
            out.append(f"{label}:")
            out.extend(f"    {value}" for value in values)
    if out:
        out.append("")

    element_lines: list[int] = []
    for block in _group_blocks(script.elements):
        lines, offsets = _block_lines(block)
        if not out and _parse_title_page(lines) is not None:
            out.append("")  # keep a first block such as "Note: ..." out of the title page
        first_line = len(out) + 1
        element_lines.extend(first_line + offset for offset in offsets)
        out.extend(lines)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n", element_lines


def write_fountain(script: Script) -> str:
    """Canonical Fountain text for ``script`` (see :func:`render_fountain`)."""
    return render_fountain(script)[0]
