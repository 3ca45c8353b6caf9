"""Fountain 1.1 reading and writing: one test per rule of the spec, then corpus-level checks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cineforge_assets.screenplay.elements import Element, ElementType, Script
from cineforge_assets.screenplay.fountain import (
    character_name,
    parse_fountain,
    plain_text,
    render_fountain,
    strip_emphasis,
    write_fountain,
)
from tests.screenplay.reference import CORPUS_SCRIPTS, read_corpus_fountain, screenplain_scenes

T = ElementType


def kinds(text: str) -> list[tuple[ElementType, str]]:
    return [(e.type, e.text) for e in parse_fountain(text).elements]


def signature(script: Script) -> list[tuple[str, str, str, bool, str | None, int]]:
    return [(e.type.value, e.text, e.extension, e.dual, e.scene_number, e.level) for e in script.elements]


def assert_round_trips(script: Script) -> None:
    rewritten = parse_fountain(write_fountain(script))
    assert signature(rewritten) == signature(script)
    assert rewritten.title_page == {k: v for k, v in script.title_page.items() if v}


def only(text: str) -> Element:
    elements = parse_fountain(text).elements
    assert len(elements) == 1, elements
    return elements[0]


# --- title page -------------------------------------------------------------------------------


def test_title_page_keys_are_lower_cased_and_indented_values_are_collected() -> None:
    script = parse_fountain(
        "Title: Big Fish\n"
        "Credit: written by\n"
        "Author: John August\n"
        "Notes:\t\n"
        "\tFINAL PRODUCTION DRAFT\n"
        "\tincludes post-production dialogue \n"
        "Contact:\n"
        "    PO Box 10031\n"
        "    San Rafael CA 94912\n"
        "Draft date: 7/8/1998\n"
        "\n"
        "INT. HOUSE - DAY\n"
    )
    assert script.title_page == {
        "title": ["Big Fish"],
        "credit": ["written by"],
        "author": ["John August"],
        "notes": ["FINAL PRODUCTION DRAFT", "includes post-production dialogue"],
        "contact": ["PO Box 10031", "San Rafael CA 94912"],
        "draft date": ["7/8/1998"],
    }
    assert script.title == "Big Fish"
    assert [(e.type, e.line) for e in script.elements] == [(T.SCENE_HEADING, 12)]


def test_a_script_without_title_page_starts_with_its_body() -> None:
    script = parse_fountain("FADE IN:\n\nINT. HOUSE - DAY\n")
    assert script.title_page == {}
    assert kinds("FADE IN:\n\nINT. HOUSE - DAY\n") == [
        (T.ACTION, "FADE IN:"),
        (T.SCENE_HEADING, "INT. HOUSE - DAY"),
    ]


def test_first_block_that_is_not_key_value_is_body() -> None:
    script = parse_fountain("Bob walks in: he is late.\nHe sits.\n")
    # "Bob walks in: he is late." looks like a key but "He sits." is neither key nor indented value.
    assert script.title_page == {}
    assert script.elements[0].type is T.ACTION


# --- scene headings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heading",
    [
        "INT. HOUSE - DAY",
        "EXT. HOUSE - NIGHT",
        "EST. CITY - DAWN",
        "INT./EXT. CAR - MOVING",
        "INT/EXT CAR - MOVING",
        "I/E CAR - DAY",
        "INT HOUSE - DAY",
        "int. house - day",
        "INT.  WILL'S BEDROOM - NIGHT (1973)",
    ],
)
def test_scene_heading_prefixes(heading: str) -> None:
    elements = parse_fountain(f"Some action.\n\n{heading}\n\nMore action.\n").elements
    assert [(e.type, e.text, e.line) for e in elements] == [
        (T.ACTION, "Some action.", 1),
        (T.SCENE_HEADING, heading, 3),
        (T.ACTION, "More action.", 5),
    ]


@pytest.mark.parametrize("line", ["INTERIOR SHOTS ARE GREAT", "EXTRA EXTRA", "ESTABLISHING"])
def test_prefix_must_be_followed_by_dot_or_space(line: str) -> None:
    assert only(line + "\n").type is T.ACTION


def test_heading_needs_a_blank_line_after_it() -> None:
    # Without the blank line this is a character cue (all caps, followed by a line).
    assert kinds("INT. HOUSE - DAY\nBob enters.\n")[0] == (T.CHARACTER, "INT. HOUSE - DAY")


def test_forced_scene_heading_with_dot_but_not_ellipsis() -> None:
    assert (only(".BINOCULARS A/K/A THE VIEW\n").type, only(".BINOCULARS\n").text) == (
        T.SCENE_HEADING,
        "BINOCULARS",
    )
    ellipsis = only("...and then he left.\n")
    assert (ellipsis.type, ellipsis.text) == (T.ACTION, "...and then he left.")


@pytest.mark.parametrize(("line", "number"), [("INT. HOUSE - DAY #12#", "12"), ("EXT. PARK #1-A#", "1-A")])
def test_scene_numbers(line: str, number: str) -> None:
    heading = only(line + "\n")
    assert heading.scene_number == number
    assert "#" not in heading.text


# --- action -----------------------------------------------------------------------------------


def test_forced_action_with_exclamation_mark() -> None:
    assert kinds("!SCANNING THE AISLES...\nWhere is that pit boss?\n") == [
        (T.ACTION, "SCANNING THE AISLES...\nWhere is that pit boss?")
    ]
    assert only("!INT. HOUSE - DAY\n").type is T.ACTION


def test_action_keeps_indentation_and_line_breaks() -> None:
    action = only("          Scott --\n          Palace Hotel, RM 412\n")
    assert action.text == "          Scott --\n          Palace Hotel, RM 412"


def test_all_caps_line_alone_is_action() -> None:
    assert kinds("A RIVER.\n\nWe're underwater.\n") == [
        (T.ACTION, "A RIVER."),
        (T.ACTION, "We're underwater."),
    ]


# --- characters, dialogue, parentheticals ----------------------------------------------------------


def test_character_dialogue_and_parenthetical() -> None:
    script = parse_fountain(
        "Edward sits.\n\nEDWARD\nI didn't put any stock into it.\n(closer)\nAnd on the day you were born...\n"
    )
    assert [(e.type, e.text, e.line) for e in script.elements] == [
        (T.ACTION, "Edward sits.", 1),
        (T.CHARACTER, "EDWARD", 3),
        (T.DIALOGUE, "I didn't put any stock into it.", 4),
        (T.PARENTHETICAL, "(closer)", 5),
        (T.DIALOGUE, "And on the day you were born...", 6),
    ]


def test_character_needs_blank_line_before() -> None:
    # The cue-like line sits inside an action block, so the whole block is action.
    assert kinds("Bob looks up.\nSTEEL\nThe door opens.\n") == [
        (T.ACTION, "Bob looks up.\nSTEEL\nThe door opens.")
    ]


def test_character_needs_a_non_blank_line_after() -> None:
    assert kinds("STEEL\n\nThe door opens.\n") == [(T.ACTION, "STEEL"), (T.ACTION, "The door opens.")]


@pytest.mark.parametrize(
    ("cue", "name", "extension"),
    [
        ("EDWARD (V.O.)", "EDWARD", "(V.O.)"),
        ("EDWARD (CONT'D)", "EDWARD", "(CONT'D)"),
        ("EDWARD (V.O.)(CONT'D)", "EDWARD", "(V.O.)(CONT'D)"),
        ("MOM (O. S.)", "MOM", "(O. S.)"),
        ("HANS (on the radio)", "HANS", "(on the radio)"),
        ("R2D2", "R2D2", ""),
        ("DR.  BENNETT", "DR. BENNETT", ""),
    ],
)
def test_character_extensions(cue: str, name: str, extension: str) -> None:
    character = parse_fountain(f"{cue}\nHello.\n").elements[0]
    assert (character.type, character.text, character.extension) == (T.CHARACTER, name, extension)


def test_forced_character_with_at_sign() -> None:
    character = parse_fountain("@McCLANE\nYippie ki-yay!\n").elements[0]
    assert (character.type, character.text) == (T.CHARACTER, "McCLANE")


def test_dual_dialogue_caret_marks_second_speaker() -> None:
    script = parse_fountain("BRICK\nScrew retirement.\n\nSTEEL ^\nScrew retirement.\n")
    characters = [e for e in script.elements if e.type is T.CHARACTER]
    assert [(c.text, c.dual) for c in characters] == [("BRICK", False), ("STEEL", True)]


def test_multi_line_dialogue_and_intentional_empty_line() -> None:
    script = parse_fountain("DEALER\nTen.\nFour.\n  \nDealer gets ten.\n")
    assert [(e.type, e.text) for e in script.elements] == [
        (T.CHARACTER, "DEALER"),
        (T.DIALOGUE, "Ten.\nFour.\n\nDealer gets ten."),
    ]


def test_multi_line_parenthetical() -> None:
    script = parse_fountain("BOB\n(quietly, to\nhimself)\nNo.\n")
    assert [(e.type, e.text) for e in script.elements][1:] == [
        (T.PARENTHETICAL, "(quietly, to\nhimself)"),
        (T.DIALOGUE, "No."),
    ]


def test_cue_ending_in_two_spaces_is_not_a_character() -> None:
    assert parse_fountain("BOB  \nHello.\n").elements[0].type is T.ACTION


# --- transitions, centered, lyrics -------------------------------------------------------------------


def test_transition_uppercase_ending_in_to() -> None:
    assert only("CUT TO:\n").type is T.TRANSITION
    assert only("SMASH CUT TO:\n").text == "SMASH CUT TO:"
    assert only("Cut to:\n").type is T.ACTION
    assert only("FADE OUT.\n").type is T.ACTION


def test_forced_transition() -> None:
    element = only("> FADE TO BLACK.\n")
    assert (element.type, element.text) == (T.TRANSITION, "FADE TO BLACK.")


def test_centered_text() -> None:
    element = only("> _**THE END**_ <\n")
    assert (element.type, element.text) == (T.CENTERED, "_**THE END**_")
    assert only(">BRICK & STEEL<\n>FULL RETIRED<\n").text == "BRICK & STEEL\nFULL RETIRED"


def test_lyrics() -> None:
    assert kinds("~Willy Wonka! Willy Wonka!\n~The amazing chocolatier!\n") == [
        (T.LYRICS, "Willy Wonka! Willy Wonka!\nThe amazing chocolatier!")
    ]
    sung = kinds("WONKA\n~Come with me\n~and you'll be\n")
    assert sung == [(T.CHARACTER, "WONKA"), (T.LYRICS, "Come with me\nand you'll be")]


# --- structure: sections, synopses, notes, boneyard, page breaks ----------------------------------------


def test_sections_and_synopses() -> None:
    script = parse_fountain("# ACT I\n\n= Set up the world.\n\n## Meet Scott\n### Scott's Apartment\n")
    assert [(e.type, e.text, e.level) for e in script.elements] == [
        (T.SECTION, "ACT I", 1),
        (T.SYNOPSIS, "Set up the world.", 0),
        (T.SECTION, "Meet Scott", 2),
        (T.SECTION, "Scott's Apartment", 3),
    ]


def test_inline_notes_are_stripped_and_standalone_notes_kept() -> None:
    script = parse_fountain(
        "He opens the door. [[Is it locked?]] It creaks.\n\n[[Check the continuity\nof the door]]\n"
    )
    assert [(e.type, e.text, e.line) for e in script.elements] == [
        (T.ACTION, "He opens the door.  It creaks.", 1),
        (T.NOTE, "Check the continuity\nof the door", 3),
    ]


def test_note_alone_on_a_line_inside_a_speech_is_dropped() -> None:
    script = parse_fountain("BOB\nHello.\n[[louder?]]\nAnyone?\n")
    assert [(e.type, e.text) for e in script.elements] == [
        (T.CHARACTER, "BOB"),
        (T.DIALOGUE, "Hello.\nAnyone?"),
    ]


def test_boneyard_is_removed_and_line_numbers_still_point_at_the_source() -> None:
    text = "/* An old\n\nopening\n*/\n\nINT. HOUSE - DAY\n\nBob /* really */ sits.\n"
    script = parse_fountain(text)
    assert [(e.type, e.text, e.line) for e in script.elements] == [
        (T.SCENE_HEADING, "INT. HOUSE - DAY", 6),
        (T.ACTION, "Bob  sits.", 8),
    ]


def test_page_break() -> None:
    assert kinds("Bob sits.\n\n===\n\nBob stands.\n")[1] == (T.PAGE_BREAK, "")
    assert only("====\n").type is T.PAGE_BREAK


def test_emphasis_markup_is_kept() -> None:
    assert only("**FADE IN:**\n").text == "**FADE IN:**"
    assert strip_emphasis("_**THE END**_ and *so* \\*on\\*") == "THE END and so *on*"


def test_line_endings_and_line_numbers() -> None:
    script = parse_fountain("Title: X\r\n\r\nINT. A - DAY\r\n\r\nBOB\r\nHi.\r\n")
    assert [(e.type, e.line) for e in script.elements] == [
        (T.SCENE_HEADING, 3),
        (T.CHARACTER, 5),
        (T.DIALOGUE, 6),
    ]


# --- writing ----------------------------------------------------------------------------------


def test_writer_forces_elements_that_would_be_misread() -> None:
    script = Script(
        elements=[
            Element(type=T.SCENE_HEADING, text="THE ROOFTOP"),
            Element(type=T.ACTION, text="A RIVER.\nWe're underwater."),
            Element(type=T.ACTION, text="INT. HOUSE - DAY"),
            Element(type=T.CHARACTER, text="McClane"),
            Element(type=T.DIALOGUE, text="Yippie."),
            Element(type=T.TRANSITION, text="FADE TO BLACK."),
            Element(type=T.ACTION, text="!Bang!"),
        ]
    )
    written = write_fountain(script)
    blocks = written.strip().split("\n\n")
    assert blocks == [
        ".THE ROOFTOP",
        "!A RIVER.\nWe're underwater.",
        "!INT. HOUSE - DAY",
        "@McClane\nYippie.",
        "> FADE TO BLACK.",
        "!!Bang!",
    ]
    assert_round_trips(script)


def test_writer_keeps_plain_form_when_unambiguous() -> None:
    text = (
        "Title: Brick & Steel\n\nINT. HOUSE - DAY #3#\n\nBob sits.\n\nBOB (V.O.)\n(softly)\nHi.\n\n"
        "STEEL ^\nHey.\n\nCUT TO:\n\n> THE END <\n"
    )
    assert write_fountain(parse_fountain(text)) == text


def test_writer_reports_where_each_element_starts() -> None:
    script = parse_fountain("Title: T\n\n# ACT\n\nINT. A - DAY\n\nBOB\n(beat)\nHi.\n\n[[note]]\n")
    text, lines = render_fountain(script)
    assert lines == [e.line for e in parse_fountain(text).elements]


def test_empty_lines_inside_elements_survive_writing() -> None:
    script = Script(
        elements=[
            Element(type=T.ACTION, text="First.\n\nSecond."),
            Element(type=T.CHARACTER, text="BOB"),
            Element(type=T.DIALOGUE, text="One.\n\nTwo."),
        ]
    )
    assert_round_trips(script)


def test_body_that_looks_like_a_title_page_is_kept_out_of_it() -> None:
    script = Script(elements=[Element(type=T.ACTION, text="Note: the dog is blue.")])
    assert_round_trips(script)
    assert parse_fountain(write_fountain(script)).title_page == {}


def _random_script(rng: random.Random) -> Script:
    """Element sequences drawn from texts chosen to be ambiguous in Fountain.

    Only sequences Fountain can express are drawn: no two DIALOGUE (or LYRICS) elements in a
    row (they are one element in Fountain), no dialogue line opening with "(" or "~", and no
    text containing markup that has no escape (notes, boneyard, a transition ending in "<").
    """
    words = ["INT.", "EXT", "CUT", "TO:", "bob", "BOB", "...", "=", "#", "!", "@", ">", "~", "x", "===", "^"]
    words += ["Title:", ".", "**", "_"]

    def text(upper: bool = False) -> str:
        phrase = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
        return phrase.upper() if upper else phrase

    elements: list[Element] = []
    for _ in range(rng.randint(1, 12)):
        choice = rng.randrange(11)
        if choice == 0:
            heading = rng.choice(["INT. A - DAY", "THE ROOF", text(True)])
            elements.append(
                Element(type=T.SCENE_HEADING, text=heading, scene_number=rng.choice([None, "4A"]))
            )
        elif choice in (1, 2):
            lines = [text(rng.random() < 0.5) for _ in range(rng.randint(1, 3))]
            elements.append(Element(type=T.ACTION, text="\n".join(lines)))
        elif choice == 3:
            # A name cannot end in "^" (that is the dual-dialogue mark).
            name = rng.choice(["BOB", "McClane", "MRS. X", "R2D2", text(True).rstrip("^ ") or "X"])
            extension = rng.choice(["", "(V.O.)", "(V.O.)(CONT'D)"])
            elements.append(
                Element(type=T.CHARACTER, text=name, extension=extension, dual=rng.random() < 0.2)
            )
            if rng.random() < 0.4:
                elements.append(Element(type=T.PARENTHETICAL, text="(beat)"))
            elements.append(Element(type=T.DIALOGUE, text=text().lstrip("(~ ") or "x"))
            if rng.random() < 0.2:
                elements.append(Element(type=T.LYRICS, text=text()))
        elif choice == 4:
            elements.append(Element(type=T.TRANSITION, text=rng.choice(["CUT TO:", "FADE OUT.", text(True)])))
        elif choice == 5:
            elements.append(Element(type=T.CENTERED, text=text()))
        elif choice == 6:
            elements.append(Element(type=T.SECTION, text=text(), level=rng.randint(1, 3)))
        elif choice == 7:
            elements.append(Element(type=T.SYNOPSIS, text=text()))
        elif choice == 8:
            elements.append(Element(type=T.NOTE, text=text()))
        elif choice == 9:
            elements.append(Element(type=T.PAGE_BREAK, text=""))
        elif not elements or elements[-1].type is not T.LYRICS:
            elements.append(Element(type=T.LYRICS, text=text()))
    return Script(elements=elements)


def test_round_trip_property_on_generated_scripts() -> None:
    rng = random.Random(20240601)
    for _ in range(500):
        script = _random_script(rng)
        rewritten = parse_fountain(write_fountain(script))
        assert signature(rewritten) == signature(script), write_fountain(script)


# --- corpus -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CORPUS_SCRIPTS)
def test_corpus_round_trip(corpus_dir: Path, name: str) -> None:
    script = parse_fountain(read_corpus_fountain(corpus_dir, name))
    canonical = write_fountain(script)
    reparsed = parse_fountain(canonical)
    assert signature(reparsed) == signature(script)
    assert reparsed.title_page == script.title_page
    # The canonical text is a fixed point of the writer.
    assert write_fountain(reparsed) == canonical


@pytest.mark.parametrize(("name", "expected"), [("Big-Fish", 190), ("The-Last-Birthday-Card", 48)])
def test_corpus_heading_count_matches_screenplain(corpus_dir: Path, name: str, expected: int) -> None:
    text = read_corpus_fountain(corpus_dir, name)
    headings = [e for e in parse_fountain(text).elements if e.type is T.SCENE_HEADING]
    reference = screenplain_scenes(text)
    assert len(headings) == len(reference) == expected
    assert [h.text.upper() for h in headings] == [heading for heading, _ in reference]


def test_corpus_title_pages(corpus_dir: Path) -> None:
    big_fish = parse_fountain(read_corpus_fountain(corpus_dir, "Big-Fish"))
    assert big_fish.title == "Big Fish"
    assert big_fish.title_page["author"] == ["John August"]
    assert big_fish.title_page["notes"][0] == "FINAL PRODUCTION DRAFT"
    card = parse_fountain(read_corpus_fountain(corpus_dir, "The-Last-Birthday-Card"))
    assert card.title_page["contact"] == ["PO Box 10031", "San Rafael CA 94912", "Registered WGAw No. 701428"]
    assert card.title_page["draft date"] == ["7/8/1998"]


@pytest.mark.parametrize(
    ("cue", "name"),
    [
        ("SHERLOCK *", "SHERLOCK"),
        ("SHERLOCK (V.O.) (CONT'D) *", "SHERLOCK"),
        ("EDWARD (V.O.)(CONT'D)", "EDWARD"),
        ("HANK (cont'd)", "HANK"),
        ("HANK (ON PHONE)", "HANK"),
        ("ANNA (O.S.) ^", "ANNA"),
        ("@McCLANE", "McCLANE"),
        ("**BOB**", "BOB"),
        ("MIKE CONT’D", "MIKE"),
        ("† DR.  WATSON", "DR. WATSON"),
    ],
)
def test_character_name_is_the_bare_name(cue: str, name: str) -> None:
    assert character_name(cue) == name


def test_plain_text_drops_emphasis_and_revision_marks_only() -> None:
    assert plain_text("**ABOUT SAVE THE CAT!**") == "ABOUT SAVE THE CAT!"
    assert plain_text("INT.  HALL - DAY   *") == "INT.  HALL - DAY"
    assert plain_text("EXT. A * B") == "EXT. A B"
    assert plain_text("INT. 2*3 ROOM") == "INT. 2*3 ROOM"
