"""Project configuration built from a parsed script and its scenes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cineforge_assets.screenplay.fountain import parse_fountain
from cineforge_assets.screenplay.project import (
    PRIMARY_CAST_LIMIT,
    UNSPECIFIED,
    ProjectConfig,
    build_project_config,
    title_from_file_name,
)
from cineforge_assets.screenplay.scenes import split_scenes
from tests.screenplay.reference import read_corpus_fountain

SCRIPT = """Title: **BRICK & STEEL**
Credit: Written by
Authors:
    Stu Maschwitz
    Someone Else
Draft date: 1/2/2003

INT. GARAGE - NIGHT

BRICK
One.

STEEL
Two.

BRICK (CONT'D)
Three.

EXT. GARAGE - DAY

BRICK
Four.

INT. GARAGE - NIGHT

STEEL
Five.

MECHANIC
Six.

.A FORCED SHOT

BRICK
Seven.
"""


def _config(text: str = SCRIPT, **kwargs: object) -> ProjectConfig:
    script = parse_fountain(text)
    scenes = split_scenes(script, text)
    options: dict[str, object] = {"source_format": "fountain", **kwargs}
    return build_project_config(script, scenes, **options)  # type: ignore[arg-type]


def test_title_page_fields() -> None:
    config = _config()
    assert config.title == "BRICK & STEEL"  # emphasis markup removed
    assert config.credit == "Written by"
    assert config.authors == ["Stu Maschwitz", "Someone Else"]
    assert config.draft_date == "1/2/2003"
    assert config.source_format == "fountain"


def test_single_author_key() -> None:
    config = _config("Title: X\nAuthor: Jane Doe\n\nINT. A - DAY\n\nBOB\nHi.\n")
    assert config.authors == ["Jane Doe"]


def test_characters_sorted_by_speeches_with_scene_counts() -> None:
    config = _config()
    assert [(c.name, c.dialogue_lines, c.scene_count) for c in config.characters] == [
        ("BRICK", 4, 3),
        ("STEEL", 2, 2),
        ("MECHANIC", 1, 1),
    ]


def test_primary_cast_rule() -> None:
    # Every character here has >= 5% of the speeches, so all are primary, in speech order.
    assert _config().primary_cast == ["BRICK", "STEEL", "MECHANIC"]
    # Forty one-line extras in one scene: each has 1/(40+20) < 5% of speeches and 1 of 2 scenes
    # (>= 10%), so the scene rule admits them but the cap keeps the list short.
    extras = "\n\n".join(f"EXTRA {i}\nHey." for i in range(40))
    lead = "\n\n".join("LEAD\nLine." for _ in range(20))
    text = f"INT. A - DAY\n\n{lead}\n\nINT. B - DAY\n\n{extras}\n"
    config = _config(text)
    assert config.primary_cast[0] == "LEAD"
    assert len(config.primary_cast) == PRIMARY_CAST_LIMIT


def test_primary_cast_excludes_rare_speakers_in_a_long_script() -> None:
    scenes = [f"INT. ROOM {i} - DAY\n\nLEAD\nLine.\n\nPARTNER\nLine." for i in range(30)]
    scenes.append("INT. ROOM X - DAY\n\nWAITER\nMore coffee?")
    config = _config("\n\n".join(scenes) + "\n")
    assert config.primary_cast == ["LEAD", "PARTNER"]


def test_locations_and_splits() -> None:
    config = _config()
    assert [(loc.name, loc.scene_count) for loc in config.locations] == [("GARAGE", 3), ("A FORCED SHOT", 1)]
    assert config.int_ext_split == {"INT": 2, "EXT": 1, UNSPECIFIED: 1}
    assert config.day_night_split == {"NIGHT": 2, "DAY": 1, UNSPECIFIED: 1}
    assert config.scene_count == 4


def test_page_count_given_or_estimated() -> None:
    given = _config(page_count=12)
    assert (given.page_count, given.page_count_estimated) == (12, False)
    estimated = _config()
    assert (estimated.page_count, estimated.page_count_estimated) == (1, True)
    assert 0 < estimated.estimated_runtime_minutes < 1


def test_script_without_scenes() -> None:
    config = _config("Bob sits.\n\nBOB\nHi.\n")
    assert config.scene_count == 0
    assert config.characters[0].name == "BOB"
    assert config.estimated_runtime_minutes > 0
    assert config.int_ext_split == {} and config.locations == []


def test_config_is_json_serializable() -> None:
    config = _config()
    assert ProjectConfig.model_validate_json(config.model_dump_json()) == config


@pytest.mark.parametrize(
    ("name", "title", "lead", "scenes"),
    [
        ("Big-Fish", "Big Fish", "EDWARD", 190),
        ("The-Last-Birthday-Card", "THE LAST BIRTHDAY CARD", "SCOTT", 48),
    ],
)
def test_corpus_project_config(corpus_dir: Path, name: str, title: str, lead: str, scenes: int) -> None:
    text = read_corpus_fountain(corpus_dir, name)
    script = parse_fountain(text)
    config = build_project_config(
        script, split_scenes(script, text), source_format="fountain", page_count=None
    )
    assert config.title == title
    assert config.scene_count == scenes
    assert config.characters[0].name == lead
    assert config.primary_cast[0] == lead
    assert sum(config.int_ext_split.values()) == scenes
    assert sum(config.day_night_split.values()) == scenes
    # One page a minute: a feature lands near its page count.
    assert abs(config.estimated_runtime_minutes - config.page_count) <= 0.1 * config.page_count + 1


def test_corpus_big_fish_cast_and_locations(corpus_dir: Path) -> None:
    text = read_corpus_fountain(corpus_dir, "Big-Fish")
    script = parse_fountain(text)
    config = build_project_config(
        script, split_scenes(script, text), source_format="fountain", page_count=122
    )
    assert config.authors == ["John August"]
    assert config.primary_cast[:3] == ["EDWARD", "WILL", "SANDRA"]
    assert config.locations[0].name == "HOSPITAL ROOM"
    assert config.int_ext_split["INT"] > config.int_ext_split["EXT"]
    assert config.day_night_split["DAY"] > config.day_night_split["NIGHT"]
    assert (config.page_count, config.page_count_estimated) == (122, False)


@pytest.mark.parametrize(
    ("stem", "title"),
    [
        ("Big-Fish", "Big Fish"),
        ("a-study-in-scarlet", "A Study In Scarlet"),
        ("the_last__birthday_card", "The Last Birthday Card"),
        ("The Ledger (v2)", "The Ledger (v2)"),
        ("BRIGHT", "BRIGHT"),
        ("---", "---"),
    ],
)
def test_title_from_file_name(stem: str, title: str) -> None:
    assert title_from_file_name(stem) == title


def test_a_script_without_a_title_page_is_titled_from_its_file_name_as_words() -> None:
    """Fail before: Final Draft exports without a title page (the corpus FDX files) were titled 'Big-Fish'."""
    text = "INT. KITCHEN - DAY\n\nBOB\nHi.\n"
    script = parse_fountain(text)
    config = build_project_config(script, split_scenes(script, text), source_format="fdx", fallback_title="Big-Fish")
    assert config.title == "Big Fish"


SPELLINGS = """INT. PARISH HALL - DAY

MRS. JONES
Tea?

O’BRIEN
Please.

MRS JONES
Milk?

JOSÉ
Two sugars.

MRS. JONES (CONT'D)
Sugar, then.

O'BRIEN
And a biscuit.

JOSE
For me too.

JOE
Who's there?

JOE'S VOICE (V.O.)
Only me.

COP 1
Nobody move.

COP 2
Nobody.

MRS JONES / JOE
Hello!

EXT. PARISH HALL - DAY

@McANNA
Out here.

@McANNA
Still here.

MCANNA
Coming.
"""


def test_two_spellings_of_one_name_are_one_cast_member() -> None:
    """Punctuation, spacing, accents, case and curly apostrophes do not make a second character; a word
    or a number more does (``JOE`` / ``JOE'S VOICE``, ``COP 1`` / ``COP 2``)."""
    script = parse_fountain(SPELLINGS)
    scenes = split_scenes(script, SPELLINGS)
    config = build_project_config(script, scenes, source_format="fountain")
    lines = {c.name: c.dialogue_lines for c in config.characters}
    assert lines == {
        "MRS. JONES": 4,  # the commoner spelling (2 of 3); the group cue counts too
        "O’BRIEN": 2,  # a tie: the first spelling seen
        "JOSÉ": 2,
        "JOE": 2,
        "JOE'S VOICE": 1,
        "COP 1": 1,
        "COP 2": 1,
        "McANNA": 3,
    }
    assert scenes[0].characters == ["MRS. JONES", "O’BRIEN", "JOSÉ", "JOE", "JOE'S VOICE", "COP 1", "COP 2"]
    assert scenes[1].characters == ["McANNA"]
