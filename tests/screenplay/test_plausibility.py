"""A scene split implausible for its source is named, on real scripts and on made-up broken reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.screenplay.fountain import parse_fountain
from cineforge_assets.screenplay.plausibility import assess_scene_split
from cineforge_assets.screenplay.scenes import SceneRecord, estimate_page_count, split_scenes


def _scene(n: int, pages: float, characters: list[str] | None = None) -> SceneRecord:
    return SceneRecord(
        scene_number=n,
        heading=f"INT. ROOM {n} - DAY",
        int_ext="INT",
        location=f"ROOM {n}",
        time_of_day="DAY",
        characters=["ANNA"] if characters is None else characters,
        line_start=1,
        line_end=1,
        word_count=1,
        page_estimate=pages,
        page_eighths=max(1, round(pages * 8)),
        est_screen_seconds=pages * 60,
        text="",
    )


def test_far_too_few_scenes_for_the_page_count() -> None:
    verdict = assess_scene_split([_scene(1, 60.0), _scene(2, 62.0)], source_pages=124, estimated_pages=120)
    assert not verdict.plausible
    assert verdict.symptoms[0] == "2 scenes from 124 pages: scene numbers or headings not recognised"
    assert verdict.pages_from_source


def test_no_speaking_characters_in_a_long_script() -> None:
    scenes = [_scene(n, 0.8, characters=[]) for n in range(1, 52)]
    verdict = assess_scene_split(scenes, source_pages=41, estimated_pages=40)
    assert verdict.symptoms == ["no speaking characters in 41 pages: character cues not recognised"]


def test_one_scene_holding_most_of_a_long_script() -> None:
    scenes = [_scene(1, 30.0)] + [_scene(n, 0.5) for n in range(2, 22)]
    verdict = assess_scene_split(scenes, source_pages=40, estimated_pages=40)
    assert verdict.symptoms == ["one scene holds 75% of 40 pages: the headings after it were not recognised"]


def test_without_a_source_page_count_the_estimate_is_used_and_said() -> None:
    verdict = assess_scene_split([_scene(1, 30.0)], source_pages=None, estimated_pages=30)
    assert (verdict.pages, verdict.pages_from_source) == (30, False)
    assert verdict.symptoms == ["1 scene from 30 pages: scene numbers or headings not recognised"]


@pytest.mark.parametrize(
    ("scenes", "pages"),
    [
        ([_scene(1, 9.0, characters=[])], 9),  # a one-location short with no dialogue
        ([_scene(1, 12.0), _scene(2, 6.0), _scene(3, 1.0), _scene(4, 1.0)], 19),  # short: one long scene is fine
        ([_scene(n, 4.5) for n in range(1, 28)], 122),  # long scenes, still one every 4.5 pages
    ],
)
def test_short_and_sparse_but_real_shapes_pass(scenes: list[SceneRecord], pages: int) -> None:
    assert assess_scene_split(scenes, source_pages=pages, estimated_pages=pages).plausible


def test_prose_restructured_by_a_model_is_not_judged() -> None:
    verdict = assess_scene_split([_scene(1, 40.0, characters=[])], source_pages=None, estimated_pages=40, judged=False)
    assert verdict.plausible and verdict.scene_count == 1


def _corpus_files(corpus_dir: Path) -> list[Path]:
    names = ("Big-Fish", "The-Last-Birthday-Card")
    files = [corpus_dir / f"{name}.{ext}" for name in names for ext in ("fountain", "fdx", "pdf")]
    files += sorted((corpus_dir / "real-world").glob("*.fountain"))
    return [f for f in files if f.exists()]


def test_every_real_script_in_the_corpus_passes(corpus_dir: Path) -> None:
    """The transcriptions and corpus sources are what real scripts look like; none may trip the check."""
    files = _corpus_files(corpus_dir)
    if len(files) < 5:
        pytest.skip("real-world corpus not found")
    for path in files:
        raw = read_source(path)
        script = parse_fountain(raw.text)
        verdict = assess_scene_split(
            split_scenes(script, raw.text),
            source_pages=raw.page_count,
            estimated_pages=estimate_page_count(script.elements),
        )
        assert verdict.plausible, (path.name, verdict)
