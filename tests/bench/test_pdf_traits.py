"""The trait harness itself: its rewrites keep the script's meaning, its stray-word count sees leaks."""

from __future__ import annotations

from bench.pdf_traits import (
    TRAITS,
    TRAITS_BY_NAME,
    expected_title_page,
    source_for,
    stray_words,
    title_page_matches,
    with_cue_extensions,
    with_mixed_case_names,
    with_prefixless_headings,
)
from cineforge_assets.screenplay.elements import ElementType
from cineforge_assets.screenplay.fidelity import digest_screenplain
from cineforge_assets.screenplay.fountain import parse_fountain, write_fountain

SCRIPT = "".join(
    f"INT. ROOM {n} - DAY\n\nA lamp flickers.\n\nANNA\nHello {n}.\n\nBEN\nGoodbye {n}.\n\n" for n in range(1, 9)
)


def test_stray_words_counts_what_the_source_never_says() -> None:
    read_back = "INT. ROOM 1 - DAY\n\nPink Revision 3/2/2021\n\nA lamp flickers.\n\nANNA (CONT'D)\nHello 1."
    assert stray_words(SCRIPT, read_back) == 2  # Pink, Revision; CONT'D is a cue's continuation


def test_the_rewrites_keep_every_speech_and_scene() -> None:
    reference = digest_screenplain(SCRIPT)
    for rewrite in (with_cue_extensions, with_mixed_case_names, with_prefixless_headings):
        rewritten = write_fountain(rewrite(parse_fountain(SCRIPT)))
        digest = digest_screenplain(rewritten)
        assert len(digest.headings) == len(reference.headings), rewrite.__name__
        assert [s.text for s in digest.speeches] == [s.text for s in reference.speeches], rewrite.__name__


def test_prefixless_headings_drop_int_ext_from_every_fourth() -> None:
    script = with_prefixless_headings(parse_fountain(SCRIPT))
    headings = [e.text for e in script.elements if e.type is ElementType.SCENE_HEADING]
    assert headings[3] == "ROOM 4 - DAY" and headings[7] == "ROOM 8 - DAY" and headings[0] == "INT. ROOM 1 - DAY"


def test_trait_names_are_unique() -> None:
    assert len({trait.name for trait in TRAITS}) == len(TRAITS)


TITLED = "Title: **The Orchard**\nCredit: Written by\nAuthor: Ada Quinn & Ben Ortiz\n\n" + SCRIPT


def test_a_title_page_trait_draws_the_scripts_own_title_and_writers() -> None:
    trait = TRAITS_BY_NAME["title-page-final-draft"]
    page = parse_fountain(source_for(trait, TITLED)).title_page
    assert page["title"] == ["The Orchard"] and page["author"] == ["Ada Quinn & Ben Ortiz"]
    assert page["draft date"] == ["Revised Draft", "March 3, 2021"] and len(page["contact"]) == 4
    assert digest_screenplain(source_for(trait, TITLED)).speeches == digest_screenplain(TITLED).speeches


def test_without_a_title_page_the_header_is_what_the_reader_should_find() -> None:
    trait = TRAITS_BY_NAME["no-title-page-header"]
    assert parse_fountain(source_for(trait, TITLED)).title_page == {}
    assert expected_title_page(trait, TITLED) == {"title": ["THE ORCHARD"], "draft date": ["Blue Revision", "3/2/21"]}


def test_title_page_fields_match_case_quotes_and_emphasis_aside() -> None:
    expected = {"title": ["SHOW", "“Pilot”"], "author": ["Ada Quinn & Ben Ortiz"], "draft date": ["9/12/21"]}
    read = {"title": ["Show", "Pilot"], "author": ["Ada Quinn", "Ben Ortiz"], "draft date": ["Network 9/12/21"]}
    assert title_page_matches(expected, read) == [1.0, 1.0, 0.0, -1.0]
