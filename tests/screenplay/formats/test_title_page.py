"""Title pages read into their fields (issue 17 item 8): real pages and hostile layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from cineforge_assets.screenplay.formats.emit import (
    LEFT_OUT_KEY,
    classify_title_lines,
    read_running_header,
    split_names,
)
from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.screenplay.fountain import parse_fountain
from cineforge_assets.screenplay.project import build_project_config
from cineforge_assets.screenplay.scenes import split_scenes
from tests.conftest import corpus_path

REAL_WORLD = corpus_path() / "real-world"


def test_a_revised_draft_with_an_epigraph() -> None:
    page = classify_title_lines(
        ["NIGHTFALL", "Written by", "Ada Quinn", "03/14/19", "Current Revisions by", "Ben Ortiz", "05/02/20",
         "the dark comes down", "and stays a while"],
        ["For my mother, who read to me every night."],
    )
    assert page["Title"] == ["NIGHTFALL"] and page["Credit"] == ["Written by"]
    assert page["Author"] == ["Ada Quinn"]
    assert page["Draft date"] == ["03/14/19", "05/02/20"]
    assert page[LEFT_OUT_KEY] == [
        "Current Revisions by",
        "Ben Ortiz",
        "the dark comes down",
        "and stays a while",
        "For my mother, who read to me every night.",
    ]


def test_a_tv_episode_with_director_and_legal_notice() -> None:
    page = classify_title_lines(
        ["“The Long Night”", "Episode #204", "Written by", "Mara Lind & Theo Park", "Directed by", "Jon Vey"],
        [
            "Network Draft 9/12/21",
            "ACME TELEVISION INC. © 2021. All Rights Reserved. No portion of",
            "this script may be reproduced without consent of ACME",
            "TELEVISION INC. 1200 West Main Street, Burbank, CA 91505",
        ],
    )
    assert page["Title"] == ["The Long Night"]
    assert page["Author"] == ["Mara Lind & Theo Park"]
    assert page["Draft date"] == ["Network Draft 9/12/21"]
    assert len(page["Copyright"]) == 3
    assert page[LEFT_OUT_KEY] == ["Episode #204", "Directed by", "Jon Vey"]


def test_an_adaptation_set_large_with_a_production_block() -> None:
    page = classify_title_lines(
        ["Property of Harbor Network"],
        ["Lantern Productions", "310/555-0142", "WGAW Reg. 1234567", "Second Rev.", "24 June ’05"],
        title=["HARBOR", "by", "Lee Marsh, Jr.", "Based On The Novel", "The Drowned Coast", "by", "Ines Paz"],
    )
    assert page["Title"] == ["HARBOR"] and page["Credit"] == ["by"]
    assert page["Author"] == ["Lee Marsh, Jr."]
    assert " ".join(page["Source"]) == "Based On The Novel The Drowned Coast by Ines Paz"
    assert page["Contact"] == ["Lantern Productions", "310/555-0142", "WGAW Reg. 1234567"]
    assert page["Draft date"] == ["Second Rev.", "24 June ’05"]
    assert page[LEFT_OUT_KEY] == ["Property of Harbor Network"]


def test_a_template_placeholder_and_code_words() -> None:
    page = classify_title_lines(
        ["TITLE", "Written by", "Rosa Diaz", "BLUE HARVEST", "KESTREL", "OPAL"],
        ["Rosa Diaz", "rosa@example.com", "123 Elm Street", "Springfield, IL 62701"],
    )
    assert "Title" not in page
    assert page["Author"] == ["Rosa Diaz"]
    assert page[LEFT_OUT_KEY] == ["TITLE", "BLUE HARVEST", "KESTREL", "OPAL"]
    assert page["Contact"] == ["Rosa Diaz", "rosa@example.com", "123 Elm Street", "Springfield, IL 62701"]


def test_title_and_name_on_the_credit_line() -> None:
    page = classify_title_lines(["THE NETWORK", "Screenplay by Kim Oh and Lou Reyes", "Story by Pat Moss"], [])
    assert page["Title"] == ["THE NETWORK"]
    assert page["Credit"] == ["Screenplay by", "Story by"]
    assert page["Author"] == ["Kim Oh and Lou Reyes", "Pat Moss"]


def test_a_team_on_three_lines_and_an_epigraph_in_capitals() -> None:
    page = classify_title_lines(
        ["SHEPHERD", "Written by", "Dan Holt", "&", "Chris Reyes", "The Lord Is My Shepherd"], []
    )
    assert page["Author"] == ["Dan Holt", "&", "Chris Reyes"]
    assert page[LEFT_OUT_KEY] == ["The Lord Is My Shepherd"]


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ("Dan Harmon, Chris McKenna", ["Dan Harmon", "Chris McKenna"]),
        ("James Manos, Jr.", ["James Manos, Jr."]),
        ("Kim Oh & Lou Reyes and Pat Moss", ["Kim Oh", "Lou Reyes", "Pat Moss"]),
    ],
)
def test_split_names(line: str, names: list[str]) -> None:
    assert split_names(line) == names


def test_project_config_keeps_placeholders_and_left_out_lines_out_of_authors() -> None:
    text = (
        "Title: TITLE\nCredit: Written by\nAuthor: Dan Harmon & Chris McKenna\n"
        f"{LEFT_OUT_KEY}: Directed by\n    Jeff Melman\n\nINT. A - DAY\n\nBOB\nHi.\n"
    )
    script = parse_fountain(text)
    config = build_project_config(
        script, split_scenes(script, text), source_format="fountain", fallback_title="remedial-chaos"
    )
    assert config.title == "Remedial Chaos"  # the file name, read as words
    assert config.authors == ["Dan Harmon", "Chris McKenna"]
    assert config.title_page_left_out == ["Directed by", "Jeff Melman", "TITLE"]


# Title page of each real-world PDF against its transcription's title page. Where the PDF's page says
# something else than the transcription, the expectation follows the page and the reason is given.
REAL_WORLD_EXPECTED: dict[str, tuple[str | None, list[str] | None, str]] = {
    "a-study-in-scarlet": (
        "A STUDY IN PINK",
        [],
        "no title page: the running header names the episode (A Study in Pink) and no writer",
    ),
    "bright": ("BRIGHT", None, ""),
    "community-3x03-remedial-chaos-theory": (
        "Remedial Chaos Theory",
        ["Chris McKenna"],
        "the page credits the episode's writer only; the transcription adds the show's creator",
    ),
    "dexter-101-pilot": ("DEXTER", None, "the transcription titles it 'Dexter Pilot'"),
    "suits-pilot": ("A Legal Mind", None, "the page carries the pilot's episode title, not 'Suits Pilot'"),
}


def _transcription_title_page(name: str) -> dict[str, list[str]]:
    return parse_fountain((REAL_WORLD / f"{name}.fountain").read_text(encoding="utf-8")).title_page


@pytest.mark.parametrize("name", sorted(REAL_WORLD_EXPECTED))
def test_real_world_pdf_title_pages(name: str) -> None:
    pdf = REAL_WORLD / f"{name}.pdf"
    if not pdf.exists():
        pytest.skip(f"real-world corpus not found at {REAL_WORLD}")
    title, authors, _reason = REAL_WORLD_EXPECTED[name]
    reference = _transcription_title_page(name)
    from_reference = [n for line in reference["author"] for n in split_names(line)]
    expected_authors = authors if authors is not None else from_reference
    script = parse_fountain(read_source(pdf).text)
    config = build_project_config(script, split_scenes(script), source_format="pdf", fallback_title=name)
    assert (config.title, config.authors) == (title or reference["title"][0], expected_authors)
    # Nothing that is not a writer's name is among the writers.
    assert all(len(a.split()) <= 5 and not any(c.isdigit() for c in a) for a in config.authors)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (  # Final Draft: title, draft and date in one header line, parted by wide gaps
            ["A STUDY IN PINK  SHOOTING SCRIPT - GREEN AMENDED  18/04/10"],
            {"Title": ["A STUDY IN PINK"], "Draft date": ["SHOOTING SCRIPT - GREEN AMENDED", "18/04/10"]},
        ),
        (  # a teleplay: show, episode number, episode title, each its own run
            ["\u201cCommunity\u201d", "-", "#303", "-", "\u201cRemedial Chaos Theory\u201d"],
            {"Title": ["Community - Remedial Chaos Theory"], LEFT_OUT_KEY: ["#303"]},
        ),
        (  # a revised page's header: title and revision label parted by a dash
            ["THE ORCHARD - Pink Rev. 3/2/21"],
            {"Title": ["THE ORCHARD"], "Draft date": ["Pink Rev. 3/2/21"]},
        ),
        (["BLUE HARVEST - Ep. 104 - Blue Revised 4/5/22"],
         {"Title": ["BLUE HARVEST"], LEFT_OUT_KEY: ["Ep. 104"], "Draft date": ["Blue Revised 4/5/22"]}),
        (["FACE - OFF"], {"Title": ["FACE - OFF"]}),  # a dash inside a title keeps it whole
        (["Pink Revision 3/2/2021"], {"Draft date": ["Pink Revision 3/2/2021"]}),  # a label alone: no title
    ],
)
def test_running_header_reads_title_draft_and_episode(parts: list[str], expected: dict[str, list[str]]) -> None:
    assert read_running_header(parts) == expected


def test_pdf_without_a_title_page_takes_its_title_from_the_running_header(tmp_path: Path) -> None:
    """Final Draft prints the title, the draft and its date atop every page; a script handed over
    without its title page is named only there."""
    from bench.pdf_traits import render_pdf_module

    module = render_pdf_module()
    scenes = "\n\n".join(
        f"INT. ROOM {n} - DAY\n\nAnna paces the room for the {n}th time.\n\nANNA\nAgain, then. From the top."
        for n in range(1, 40)
    )
    style = module.Style(header="THE ORCHARD  SHOOTING SCRIPT - BLUE REVISED  3/2/21")
    path = tmp_path / "no-title-page.pdf"
    path.write_bytes(bytes(module.render(parse_fountain(scenes), style=style)))
    script = parse_fountain(read_source(path).text)
    assert script.title_page.get("title") == ["THE ORCHARD"]
    assert script.title_page.get("draft date") == ["SHOOTING SCRIPT - BLUE REVISED", "3/2/21"]
    assert "ORCHARD" not in " ".join(e.text for e in script.elements)  # still no script text
