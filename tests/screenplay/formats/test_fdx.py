"""Final Draft reader: paragraph types, text runs, dual dialogue, title page, hostile XML."""

from __future__ import annotations

from pathlib import Path

import pytest

from cineforge_assets.screenplay.elements import ElementType
from cineforge_assets.screenplay.formats.errors import CorruptSourceError
from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.screenplay.fountain import parse_fountain

from .conftest import SCRIPTS, assert_floor, fidelity


def _fdx(content: str, title_page: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n'
        f'<FinalDraft DocumentType="Script" Template="No" Version="5"><Content>{content}</Content>'
        f"{title_page}</FinalDraft>"
    ).encode()


def _para(kind: str, *runs: str, **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f'<Paragraph Type="{kind}"{extra}>' + "".join(runs) + "</Paragraph>"


def _read(tmp_path: Path, data: bytes, name: str = "s.fdx") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return read_source(path).text


@pytest.mark.parametrize("name", SCRIPTS)
def test_corpus_fdx_meets_the_fidelity_floor(corpus: Path, name: str) -> None:
    raw = read_source(corpus / f"{name}.fdx")
    assert raw.format == "fdx"
    assert_floor(fidelity(corpus / f"{name}.fountain", raw.text))


def test_paragraph_types_map_to_fountain(tmp_path: Path) -> None:
    text = _read(
        tmp_path,
        _fdx(
            _para("Scene Heading", "<Text>INT. BARN - DAY</Text>")
            + _para("Shot", "<Text>ON THE HAYLOFT</Text>")
            + _para("Action", "<Text>Dust </Text>", '<Text Style="Bold">swirls</Text>', "<Text>.</Text>")
            + _para("General", "<Text>A general note.</Text>")
            + _para("Character", "<Text>McGEE</Text>")
            + _para("Parenthetical", "<Text>(whispering)</Text>")
            + _para("Dialogue", "<Text>Did you hear that?</Text>")
            + _para("Transition", "<Text>SMASH CUT TO:</Text>")
            + _para("Transition", "<Text>FADE OUT.</Text>")
            + _para("Cast List", "<Text>McGEE, a farmer</Text>")
        ),
    )
    types = [(e.type, e.text) for e in parse_fountain(text).elements]
    assert types[:2] == [
        (ElementType.SCENE_HEADING, "INT. BARN - DAY"),
        (ElementType.SCENE_HEADING, "ON THE HAYLOFT"),
    ]
    assert "Dust **swirls**." in text
    assert (ElementType.CHARACTER, "McGEE") in types  # mixed case forced with @
    assert (ElementType.PARENTHETICAL, "(whispering)") in types
    assert (ElementType.DIALOGUE, "Did you hear that?") in types
    transitions = [t for kind, t in types if kind == ElementType.TRANSITION]
    assert transitions == ["SMASH CUT TO:", "FADE OUT."]
    assert (ElementType.ACTION, "McGEE, a farmer") in types


def test_dual_dialogue_marks_the_second_speaker(tmp_path: Path) -> None:
    dual = (
        "<Paragraph><DualDialogue>"
        + _para("Character", "<Text>ANNA</Text>")
        + _para("Dialogue", "<Text>Left!</Text>")
        + _para("Character", "<Text>BEN</Text>")
        + _para("Dialogue", "<Text>Right!</Text>")
        + "</DualDialogue></Paragraph>"
    )
    text = _read(tmp_path, _fdx(_para("Scene Heading", "<Text>EXT. ROAD - DAY</Text>") + dual))
    assert "ANNA\nLeft!" in text and "BEN ^\nRight!" in text
    cues = [e for e in parse_fountain(text).elements if e.type == ElementType.CHARACTER]
    assert [(c.text, c.dual) for c in cues] == [("ANNA", False), ("BEN", True)]


def test_title_page_becomes_fountain_title_page(tmp_path: Path) -> None:
    title = (
        "<TitlePage><Content>"
        + _para("Action", "<Text>THE ORCHARD</Text>", Alignment="Center")
        + _para("Action", "<Text>Written by</Text>", Alignment="Center")
        + _para("Action", "<Text>Ida Marsh</Text>", Alignment="Center")
        + _para("Action", "<Text>Based on the story by R. Vale</Text>", Alignment="Center")
        + _para("Action", "<Text>Second draft, 3 March 2025</Text>", Alignment="Left")
        + _para("Action", "<Text>ida@example.com</Text>", Alignment="Left")
        + "</Content></TitlePage>"
    )
    text = _read(tmp_path, _fdx(_para("Scene Heading", "<Text>INT. ORCHARD - DAY</Text>"), title))
    page = parse_fountain(text).title_page
    assert page["title"] == ["THE ORCHARD"]
    assert page["credit"] == ["Written by"] and page["author"] == ["Ida Marsh"]
    assert page["source"] == ["Based on the story by R. Vale"]
    assert page["draft date"] == ["Second draft, 3 March 2025"]
    assert page["contact"] == ["ida@example.com"]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE FinalDraft [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<FinalDraft DocumentType="Script"><Content>
<Paragraph Type="Action"><Text>&lol9;</Text></Paragraph></Content></FinalDraft>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE FinalDraft [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<FinalDraft DocumentType="Script"><Content>
<Paragraph Type="Action"><Text>&secret;</Text></Paragraph></Content></FinalDraft>
"""


@pytest.mark.parametrize(
    "payload", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"]
)
def test_entity_declarations_are_refused_with_a_clear_error(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "bomb.fdx"
    path.write_bytes(payload)
    with pytest.raises(CorruptSourceError) as caught:
        read_source(path)
    message = str(caught.value)
    assert "bomb.fdx" in message and "(fdx)" in message
    assert "entities" in message and "Re-export" in message


def test_malformed_xml_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "cut.fdx"
    path.write_bytes(_fdx(_para("Action", "<Text>half"))[:-40])
    with pytest.raises(CorruptSourceError, match="not well-formed"):
        read_source(path)
