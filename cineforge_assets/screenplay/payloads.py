"""What the AI tasks are given about a screenplay: the ``enrich_scenes`` and ``project_insights`` payloads.

Built in one place so the assets, and the benchmarks that stand in for them, send the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from cineforge_assets.screenplay.project import ProjectConfig
from cineforge_assets.screenplay.scenes import SceneRecord

# Keeps one request per script inside every chain model's context window, however long a scene runs.
SCENE_TEXT_LIMIT = 1500
EXCERPT_LIMIT = 2000
INSIGHT_CHARACTERS = 8
INSIGHT_SUMMARIES = 12


def enrich_scenes_payload(title: str, records: Sequence[SceneRecord]) -> dict[str, Any]:
    return {
        "title": title,
        "scenes": [
            {
                "scene_number": int(r.scene_number),
                "heading": r.heading,
                "text": r.text[:SCENE_TEXT_LIMIT],
                "characters": list(r.characters),
            }
            for r in records
        ],
    }


def project_insights_payload(
    config: ProjectConfig, records: Sequence[SceneRecord], scene_summaries: Iterable[object]
) -> dict[str, Any]:
    return {
        "title": config.title,
        "characters": [c.name for c in config.characters][:INSIGHT_CHARACTERS],
        "excerpt": records[0].text[:EXCERPT_LIMIT] if records else "",
        "scene_count": config.scene_count,
        "scene_summaries": [str(s) for s in islice(scene_summaries, INSIGHT_SUMMARIES)],
    }
