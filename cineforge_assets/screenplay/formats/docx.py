"""Word (.docx) -> Fountain text, and a screenplay-styled .docx writer.

Three kinds of Word screenplay turn up:
1. paragraphs carry screenplay style names ("Scene Heading", "Character", "Dialogue", ...),
   as written by screenwriting programs' Word export and by ``write_docx``;
2. everything is "Normal" but indented like a printed screenplay (cue ~2in, dialogue ~1in);
3. Fountain typed or pasted into Word, one line per paragraph.
We pick the reading by what the document actually uses: style names first, then a left-indent
layout, else the paragraphs are joined and read as Fountain.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cineforge_assets.screenplay.elements import ElementType, Script
from cineforge_assets.screenplay.formats.detect import HEADING_RE, TITLE_KEY_RE
from cineforge_assets.screenplay.formats.emit import Conversion, FountainBuilder
from cineforge_assets.screenplay.formats.errors import CorruptSourceError
from resources.providers.screenplay_grammar import CAPITALS_RE

# Style name (lower-cased, spaces/hyphens/underscores removed) -> element role.
_STYLE_ROLES = {
    "sceneheading": "heading",
    "slugline": "heading",
    "scene": "heading",
    "shot": "heading",
    "action": "action",
    "description": "action",
    "general": "action",
    "castlist": "action",
    "character": "cue",
    "charactername": "cue",
    "dialogue": "dialogue",
    "dialog": "dialogue",
    "parenthetical": "parenthetical",
    "parentheticals": "parenthetical",
    "transition": "transition",
    "centered": "centered",
    "lyrics": "action",
}
_TITLE_STYLES = {"title": "Title", "subtitle": "Credit", "author": "Author", "credit": "Credit"}
_TITLE_LINE_RE = re.compile(
    r"^(Title|Credit|Author|Authors|Source|Draft date|Contact|Copyright|Notes)\s*:\s*(.+)$", re.I
)
_EMU_PER_PT = 12700

# Industry layout (inches from the left margin) used by write_docx.
_INDENTS_IN = {"Character": 2.2, "Dialogue": 1.0, "Parenthetical": 1.6}
_RIGHT_INDENTS_IN = {"Dialogue": 1.5, "Parenthetical": 2.0}


@dataclass
class _Para:
    text: str
    style: str
    indent_pt: float
    alignment: str  # "left" | "center" | "right"


def docx_to_fountain(data: bytes, path: Path) -> Conversion:
    paragraphs = _read_paragraphs(data, path)
    warnings: list[str] = []
    styled = sum(1 for p in paragraphs if _style_role(p.style) is not None)
    non_blank = sum(1 for p in paragraphs if p.text.strip()) or 1
    if styled / non_blank >= 0.5:
        text = _from_styles(paragraphs)
    elif _has_indent_layout(paragraphs):
        text = _from_indents(paragraphs)
        warnings.append("no screenplay styles in the document; element types inferred from indentation")
    else:
        text = _as_fountain(paragraphs)
    return Conversion(text=text, page_count=None, warnings=warnings)


def _read_paragraphs(data: bytes, path: Path) -> list[_Para]:
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise CorruptSourceError(path, "docx", f"python-docx could not open the document ({exc}).") from exc
    # Resolve each paragraph style once: python-docx looks styles up by scanning the styles part,
    # which made a 120-page script take seconds when done per paragraph.
    styles = {s.style_id: s for s in document.styles if s.type == WD_STYLE_TYPE.PARAGRAPH}
    default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    resolved: dict[str | None, tuple[str, object, object]] = {}

    def style_format(style_id: str | None) -> tuple[str, object, object]:
        if style_id not in resolved:
            style = styles.get(style_id) if style_id else default
            style = style or default
            name = style.name if style is not None and style.name else "Normal"
            resolved[style_id] = (name, _chain(style, "left_indent"), _chain(style, "alignment"))
        return resolved[style_id]

    paragraphs: list[_Para] = []
    for paragraph in document.paragraphs:
        name, style_indent, style_alignment = style_format(paragraph._p.style)
        fmt = paragraph.paragraph_format
        indent = fmt.left_indent if fmt.left_indent is not None else style_indent
        alignment = fmt.alignment if fmt.alignment is not None else style_alignment
        paragraphs.append(
            _Para(
                text=paragraph.text.replace("\r", "\n").replace("\t", "    ").replace("\xa0", " "),
                style=name,
                indent_pt=int(indent) / _EMU_PER_PT if isinstance(indent, int) else 0.0,
                alignment=_alignment_name(alignment),
            )
        )
    return paragraphs


def _chain(style: object, attribute: str) -> object:
    """A paragraph-format attribute, falling back through base styles (Word's inheritance)."""
    while style is not None:
        value = getattr(style.paragraph_format, attribute)  # type: ignore[attr-defined]
        if value is not None:
            return value
        style = style.base_style  # type: ignore[attr-defined]
    return None


def _alignment_name(value: object) -> str:
    name = str(value).lower() if value is not None else "left"
    if "center" in name:
        return "center"
    if "right" in name:
        return "right"
    return "left"


def _style_role(style: str) -> str | None:
    return _STYLE_ROLES.get(re.sub(r"[\s_\-]", "", style.lower()))


# --------------------------------------------------------------------------- styled documents


def _from_styles(paragraphs: list[_Para]) -> str:
    builder = FountainBuilder()
    title: dict[str, list[str]] = {}
    body_started = False
    roles: list[tuple[str, str]] = []
    for para in paragraphs:
        style_key = re.sub(r"[\s_\-]", "", para.style.lower())
        if not body_started and style_key in _TITLE_STYLES:
            if para.text.strip():
                title.setdefault(_TITLE_STYLES[style_key], []).append(para.text.strip())
            continue
        key_value = _TITLE_LINE_RE.match(para.text.strip()) if not body_started else None
        if key_value and _style_role(para.style) is None:
            title.setdefault(key_value.group(1).strip(), []).append(key_value.group(2).strip())
            continue
        role = _style_role(para.style)
        if role is None:
            role = "centered" if para.alignment == "center" else "action"
        if para.alignment == "center" and role == "action":
            role = "centered"
        if para.text.strip():
            body_started = True
        roles.append((role, para.text))
    if title:
        builder.title_page(title)
    _emit_roles(roles, builder)
    return builder.text()


def _emit_roles(roles: list[tuple[str, str]], builder: FountainBuilder) -> None:
    cue: str | None = None
    parts: list[tuple[str, str]] = []

    def flush() -> None:
        nonlocal cue, parts
        if cue is not None:
            builder.speech(cue, parts)
        cue, parts = None, []

    for role, text in roles:
        if not text.strip():
            if role not in ("dialogue", "parenthetical"):
                flush()
            continue
        if role == "cue":
            flush()
            cue = text.strip()
        elif role in ("dialogue", "parenthetical") and cue is not None:
            parts.append((role, text))
        else:
            flush()
            if role == "heading":
                builder.heading(text)
            elif role == "transition":
                builder.transition(text)
            elif role == "centered":
                builder.centered(text)
            else:
                builder.action(text)
    flush()


# --------------------------------------------------------------------------- indented documents


def _has_indent_layout(paragraphs: list[_Para]) -> bool:
    """Screenplay-shaped indentation: caps cues indented further than the paragraphs that follow them."""
    cues = 0
    for para, nxt in zip(paragraphs, paragraphs[1:], strict=False):
        if (
            para.indent_pt > 72
            and CAPITALS_RE.match(para.text.strip() or "x")
            and nxt.text.strip()
            and 0 < nxt.indent_pt < para.indent_pt
        ):
            cues += 1
    return cues >= 2


def _from_indents(paragraphs: list[_Para]) -> str:
    cue_indents: Counter[float] = Counter()
    dialogue_indents: Counter[float] = Counter()
    paren_indents: Counter[float] = Counter()
    for para, nxt in zip(paragraphs, paragraphs[1:], strict=False):
        if (
            para.indent_pt > 72
            and CAPITALS_RE.match(para.text.strip() or "x")
            and 0 < nxt.indent_pt < para.indent_pt
        ):
            cue_indents[round(para.indent_pt)] += 1
            target = paren_indents if nxt.text.strip().startswith("(") else dialogue_indents
            target[round(nxt.indent_pt)] += 1
    cue = cue_indents.most_common(1)[0][0]
    dialogue = dialogue_indents.most_common(1)[0][0] if dialogue_indents else cue / 2
    paren = paren_indents.most_common(1)[0][0] if paren_indents else (cue + dialogue) / 2
    columns = {"cue": cue, "dialogue": dialogue, "parenthetical": paren, "action": 0.0}
    roles: list[tuple[str, str]] = []
    for para in paragraphs:
        text = para.text
        if para.alignment == "right":
            role = "transition"
        elif para.alignment == "center":
            role = "centered"
        else:
            role = min(columns, key=lambda r: abs(para.indent_pt - columns[r]))
            if role == "action" and HEADING_RE.match(text.strip()):
                role = "heading"
            elif role == "parenthetical" and not text.strip().startswith("("):
                role = "dialogue"
            elif role == "cue" and not CAPITALS_RE.match(text.strip() or "x"):
                role = "transition" if text.strip().endswith(":") else "action"
        roles.append((role, text))
    builder = FountainBuilder()
    _emit_roles(roles, builder)
    return builder.text()


# --------------------------------------------------------------------------- Fountain typed into Word


def _as_fountain(paragraphs: list[_Para]) -> str:
    """One line per paragraph. Without blank paragraphs, blank lines are put back between
    elements, except after a cue or parenthetical (which must stay glued to their dialogue)."""
    lines = [p.text.rstrip() for p in paragraphs]
    blanks = sum(1 for line in lines if not line.strip())
    if blanks >= max(1, len(lines) // 10):
        return "\n".join(lines).strip("\n") + "\n"
    out: list[str] = []
    in_title = bool(lines) and bool(TITLE_KEY_RE.match(lines[0]))
    for line in lines:
        if in_title and (TITLE_KEY_RE.match(line) or line.startswith((" ", "\t"))):
            out.append(line)
            continue
        if in_title:
            out.append("")
            in_title = False
        out.append(line)
        stripped = line.strip()
        cue_like = (
            CAPITALS_RE.match(stripped)
            and not HEADING_RE.match(stripped)
            and not stripped.endswith(":")
            and not stripped.startswith((".", "#", "=", ">", "!", "~", "["))
        )
        glued = cue_like or (stripped.startswith("(") and stripped.endswith(")"))
        if not glued:
            out.append("")
    return "\n".join(out).strip("\n") + "\n"


# --------------------------------------------------------------------------- writer


def write_docx(script: Script, *, styled: bool = True) -> bytes:
    """A Word screenplay: one paragraph per element, Courier 12pt, industry indents.

    ``styled=True`` uses named paragraph styles ("Scene Heading", "Character", ...);
    ``styled=False`` writes everything as "Normal" with direct indents, like a hand-made document.
    """
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Inches, Pt
    from docx.text.paragraph import Paragraph

    document = docx.Document()
    normal = document.styles["Normal"]
    normal.font.name = "Courier New"
    normal.font.size = Pt(12)
    normal.paragraph_format.space_after = Pt(0)
    names = {
        ElementType.SCENE_HEADING: "Scene Heading",
        ElementType.ACTION: "Action",
        ElementType.CHARACTER: "Character",
        ElementType.PARENTHETICAL: "Parenthetical",
        ElementType.DIALOGUE: "Dialogue",
        ElementType.TRANSITION: "Transition",
        ElementType.CENTERED: "Centered",
        ElementType.LYRICS: "Action",
    }
    style_ids: dict[str, str] = {"Title": document.styles["Title"].style_id}

    def add(text: str, style: str | None = None) -> Paragraph:
        # Set pStyle directly: python-docx resolves a style name by scanning the styles part,
        # which made writing a feature script take seconds.
        paragraph = document.add_paragraph(text)
        if style is not None:
            paragraph._p.style = style_ids[style]
        return paragraph

    if styled:
        for name in sorted(set(names.values()) | {"Credit", "Author"}):
            style = document.styles.add_style(name, 1)  # WD_STYLE_TYPE.PARAGRAPH
            style_ids[name] = style.style_id
            style.base_style = normal
            fmt = style.paragraph_format
            fmt.left_indent = Inches(_INDENTS_IN.get(name, 0.0))
            fmt.right_indent = Inches(_RIGHT_INDENTS_IN.get(name, 0.0))
            if name == "Transition":
                fmt.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            if name == "Centered":
                fmt.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for key, values in script.title_page.items():
        label = key.title() if key != "draft date" else "Draft date"
        for value in values:
            if styled and label in ("Title", "Author", "Credit"):
                add(value, label)
            else:
                add(f"{label}: {value}")
    if script.title_page:
        document.add_page_break()
    previous: ElementType | None = None
    for element in script.elements:
        style_name = names.get(element.type)
        if style_name is None:
            continue
        name = style_name
        glued = element.type in (ElementType.PARENTHETICAL, ElementType.DIALOGUE) and previous in (
            ElementType.CHARACTER,
            ElementType.PARENTHETICAL,
            ElementType.DIALOGUE,
        )
        if previous is not None and not glued:
            add("")
        text = element.text
        if element.type == ElementType.CHARACTER:
            text = " ".join(filter(None, [element.text, element.extension]))
        elif element.type == ElementType.PARENTHETICAL and not text.startswith("("):
            text = f"({text})"
        paragraph = add(text, name if styled else None)
        if not styled:
            paragraph.paragraph_format.left_indent = Inches(_INDENTS_IN.get(name, 0.0))
            if name == "Transition":
                paragraph.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            elif name == "Centered":
                paragraph.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
        previous = element.type
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
