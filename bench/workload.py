"""The chaos benchmark's fixed workload: normalize-sized requests, every 20th one a refusal candidate.

Request ``n`` is a ``normalize`` request whose text is a page of screenplay-like prose (about 1.5 KB,
the size of one page the normalize stage sends), tagged ``BENCHREQ-n`` so the simulator's trace can
attribute calls to it. Every 20th request (5 %, ``n % 20 == 7``) asks for ``project_insights`` instead:
the safety scenario refuses exactly those, on every provider and on every try, because a refusal is a
property of the request (retrying it elsewhere or later gets the same answer), not a coin flip per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.contenders import BenchRequest
from bench.simserver import request_tag
from resources.providers.prompts import build_request

REFUSED_TASK = "project_insights"

_PAGE = (
    "The lighthouse stands at the end of the breakwater in the grey hour before dawn. MARA, sixties, "
    "oilskin coat, climbs the iron stair with a ledger under her arm. Inside the lamp room the lens turns "
    "slowly, throwing its beam across the water. She sets the ledger on the desk, opens it to a page of "
    "cramped handwriting and writes the date. Outside, a fishing boat rounds the point, its engine "
    'coughing. Mara watches it through the salt-streaked glass. "You\'re late again, Tomas," she says to '
    "nobody. The radio crackles. TOMAS (V.O.) answers that the nets came up empty and the fog is rolling "
    "in from the south. Mara writes that down too. She pours coffee from a dented thermos, wraps her hands "
    "around the cup and waits for the boat to clear the rocks. When it does she closes the ledger, winds "
    "the clockwork that turns the lens and goes back down the stair. On the breakwater the wind picks up. "
    "Gulls lift off the railing all at once. Mara stops, turns and looks back at the light, as if she had "
    "heard someone call her name. Nobody is there. She pulls her collar up and walks on toward the "
    "village, where the first windows are lighting up one by one."
)


def is_refusal_candidate(number: int) -> bool:
    return number % 20 == 7


def chaos_item(number: int) -> BenchRequest:
    tag = request_tag(number)
    if is_refusal_candidate(number):
        payload: dict[str, Any] = {
            "title": f"The Keeper ({tag})",
            "characters": ["MARA", "TOMAS"],
            "excerpt": _PAGE[:600],
            "scene_count": 12,
            "scene_summaries": ["Mara keeps the light.", "Tomas comes home late."],
        }
        return BenchRequest(number, REFUSED_TASK, build_request(REFUSED_TASK, payload, stage="normalize"))
    payload = {"text": f"{_PAGE} (ref {tag})", "title": "The Keeper", "source_format": "prose"}
    return BenchRequest(number, "normalize", build_request("normalize", payload, stage="normalize"))


def build_items(workload: str, numbers: Sequence[int], options: dict[str, Any]) -> list[BenchRequest]:
    if workload == "chaos":
        return [chaos_item(n) for n in numbers]
    raise ValueError(f"unknown workload {workload!r}")
