"""Final Draft reader: paragraph types, text runs, dual dialogue, title page, hostile XML."""

from __future__ import annotations

from pathlib import Path

import pytest

from cineforge_assets.screenplay.elements import ElementType
from cineforge_assets.screenplay.formats.errors import CorruptSourceError
from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.screenplay.fountain import parse_fountain
from cineforge_assets.screenplay.scenes import split_scenes

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
    # A Shot is a camera direction inside the scene, not a new scene.
    assert types[:2] == [
        (ElementType.SCENE_HEADING, "INT. BARN - DAY"),
        (ElementType.ACTION, "ON THE HAYLOFT"),
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


def _scenes(tmp_path: Path, content: str) -> list[tuple[str, str, str, list[str]]]:
    path = tmp_path / "styled.fdx"
    path.write_bytes(_fdx(content))
    text = read_source(path).text
    return [(s.scene_label, s.heading, s.location, s.characters) for s in split_scenes(parse_fountain(text), text)]


def test_styled_runs_do_not_reach_the_scenes_table(tmp_path: Path) -> None:
    """Issue 17: an FDX with styled runs put ``**ABOUT SAVE THE CAT!**`` into heading and location."""
    scenes = _scenes(
        tmp_path,
        _para("Scene Heading", '<Text Style="Bold+Underline">ABOUT SAVE THE CAT!</Text>')
        + _para("Action", '<Text Style="Italic">Read</Text><Text> this first.</Text>')
        + _para(
            "Scene Heading",
            '<Text Style="Bold">INT. </Text><Text>OFFICE - </Text><Text Style="Underline">DAY</Text>',
        )
        + _para("Character", '<Text Style="Bold">BLAKE</Text><Text> (V.O.)</Text>')
        + _para("Dialogue", "<Text>Save the </Text>", '<Text Style="Bold">cat</Text>'),
    )
    assert scenes == [
        ("", "ABOUT SAVE THE CAT!", "ABOUT SAVE THE CAT!", []),
        ("", "INT. OFFICE - DAY", "OFFICE", ["BLAKE"]),
    ]


def test_styled_heading_is_a_real_heading_and_emphasis_stays_in_the_words(tmp_path: Path) -> None:
    text = _read(
        tmp_path,
        _fdx(
            _para("Scene Heading", '<Text Style="Bold">INT. OFFICE - DAY</Text>')
            + _para("Action", '<Text Style="Italic">Read</Text><Text> this.</Text>')
        ),
    )
    assert "\nINT. OFFICE - DAY\n" in "\n" + text and "*Read* this." in text


def test_scene_numbers_from_final_draft_become_scene_labels(tmp_path: Path) -> None:
    scenes = _scenes(
        tmp_path,
        _para("Scene Heading", "<Text>INT. HALL - NIGHT</Text>", Number="12A")
        + _para("Action", "<Text>Dark.</Text>")
        + _para("Scene Heading", "<Text>THE ROOF</Text>", Number="2.3")
        + _para("Action", "<Text>Wind.</Text>")
        + _para("Scene Heading", "<Text>EXT. YARD - DAY</Text>", Number="A 1")
        + _para("Action", "<Text>Sun.</Text>"),
    )
    assert [(label, heading) for label, heading, _, _ in scenes] == [
        ("12A", "INT. HALL - NIGHT"),
        ("2.3", "THE ROOF"),
        ("", "EXT. YARD - DAY"),  # not a number Fountain can carry: dropped, the heading is kept
    ]


def test_dual_dialogue_gives_two_speakers_in_the_scene(tmp_path: Path) -> None:
    dual = (
        "<Paragraph><DualDialogue>"
        + _para("Character", '<Text Style="Bold">ANNA</Text>')
        + _para("Dialogue", "<Text>Left!</Text>")
        + _para("Character", "<Text>BEN (O.S.)</Text>")
        + _para("Dialogue", "<Text>Right!</Text>")
        + "</DualDialogue></Paragraph>"
    )
    scenes = _scenes(tmp_path, _para("Scene Heading", "<Text>EXT. ROAD - DAY</Text>") + dual)
    assert scenes == [("", "EXT. ROAD - DAY", "ROAD", ["ANNA", "BEN"])]


def _scene_with_properties(page: str, length: str) -> str:
    return (
        f'<Paragraph Type="Scene Heading"><SceneProperties Length="{length}" Page="{page}" Title=""/>'
        "<Text>INT. HALL - DAY</Text></Paragraph>" + _para("Action", "<Text>Words.</Text>")
    )


def test_page_count_comes_from_final_draft_scene_properties(tmp_path: Path) -> None:
    path = tmp_path / "paged.fdx"
    path.write_bytes(_fdx(_scene_with_properties("1", "4/8") + _scene_with_properties("96", "2 3/8")))
    assert read_source(path).page_count == 98
    path.write_bytes(_fdx(_scene_with_properties("x", "?")))
    assert read_source(path).page_count is None


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


def test_styled_title_page_with_director_and_revision_credits(tmp_path: Path) -> None:
    title = (
        "<TitlePage><Content>"
        + _para("Action", '<Text Style="Bold+Underline">THE ORCHARD</Text>', Alignment="Center")
        + _para("Action", '<Text Style="Italic">Written by</Text>', Alignment="Center")
        + _para("Action", '<Text Style="Bold">Ida Marsh</Text>', Alignment="Center")
        + _para("Action", "<Text>Directed by</Text>", Alignment="Center")
        + _para("Action", "<Text>Sol Brandt</Text>", Alignment="Center")
        + _para("Action", "<Text>Property of Vale Pictures</Text>", Alignment="Left")
        + "</Content></TitlePage>"
    )
    text = _read(tmp_path, _fdx(_para("Scene Heading", "<Text>INT. ORCHARD - DAY</Text>"), title))
    page = parse_fountain(text).title_page
    assert page["title"] == ["THE ORCHARD"] and page["credit"] == ["Written by"]
    assert page["author"] == ["Ida Marsh"]
    assert page["left out"] == ["Directed by", "Sol Brandt", "Property of Vale Pictures"]


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
