from __future__ import annotations

from cineforge_assets.screenplay.fountain import parse_fountain
from cineforge_assets.screenplay.payloads import (
    EXCERPT_LIMIT,
    INSIGHT_SUMMARIES,
    SCENE_TEXT_LIMIT,
    enrich_scenes_payload,
    project_insights_payload,
)
from cineforge_assets.screenplay.project import build_project_config
from cineforge_assets.screenplay.scenes import split_scenes

LONG_ACTION = "The storm goes on. " * 200
SOURCE = f"""INT. KITCHEN - NIGHT

{LONG_ACTION}

MARIA
We leave tomorrow.

EXT. PIER - DAWN

Tomas waits.
"""


def test_enrich_scenes_payload_carries_each_scene_with_its_text_cut_to_the_limit() -> None:
    script = parse_fountain(SOURCE)
    records = split_scenes(script, SOURCE)
    payload = enrich_scenes_payload("Harbor", records)
    assert payload["title"] == "Harbor"
    assert [s["scene_number"] for s in payload["scenes"]] == [1, 2]
    assert payload["scenes"][0]["heading"] == "INT. KITCHEN - NIGHT"
    assert payload["scenes"][0]["characters"] == ["MARIA"]
    assert len(payload["scenes"][0]["text"]) == SCENE_TEXT_LIMIT
    assert payload["scenes"][1]["text"] == records[1].text


def test_project_insights_payload_bounds_the_excerpt_and_the_summaries() -> None:
    script = parse_fountain(SOURCE)
    records = split_scenes(script, SOURCE)
    config = build_project_config(script, records, source_format="fountain", page_count=None)
    summaries = (f"summary {i}" for i in range(50))
    payload = project_insights_payload(config, records, summaries)
    assert payload["characters"] == ["MARIA"]
    assert payload["scene_count"] == 2
    assert len(payload["excerpt"]) == EXCERPT_LIMIT
    assert payload["scene_summaries"] == [f"summary {i}" for i in range(INSIGHT_SUMMARIES)]
