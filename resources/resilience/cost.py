"""Money out of attempt records: what a stage paid, who served it, and what its fallbacks cost extra.

Pure functions over ``AttemptRecord`` lists (the records carry ``cost_usd`` and ``first_model_cost_usd``, see
``resources.resilience.executor``); the assets, the telemetry sink and the CLI summary all use these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from resources.providers.prices import Cost, sum_costs
from resources.resilience.telemetry import AttemptRecord


def attempt_cost(record: AttemptRecord) -> Cost:
    """One step's cost: priced, or unpriced naming its model."""
    if record.cost_usd is None:
        return Cost.unpriced_model(record.provider, record.model)
    return Cost.priced(record.cost_usd)


def attempts_cost(attempts: Iterable[AttemptRecord]) -> Cost:
    """What every call of ``attempts`` cost together (unpriced if one of them is)."""
    return sum_costs(attempt_cost(a) for a in attempts)


def fallback_premium(attempts: Sequence[AttemptRecord]) -> float:
    """USD paid above what the chain's first model would have cost for the same tokens (negative: saved).

    Only calls on another model than the chain's first count; unpriced ones are left out.
    """
    total = 0.0
    for a in attempts:
        if a.first_model_cost_usd is None or a.cost_usd is None:
            continue
        total += a.cost_usd - a.first_model_cost_usd
    return total


def stage_cost_summary(
    stage: str, attempts: Sequence[AttemptRecord], *, provider: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """The stage's money in one JSON-ready dict: who served it (if anyone), what it cost, the premium."""
    cost = attempts_cost(attempts)
    return {
        "stage": stage,
        "provider": provider,
        "model": model,
        "cost_usd": None if cost.usd is None else round(cost.usd, 6),
        "unpriced": list(cost.unpriced),
        "fallback_premium_usd": round(fallback_premium(attempts), 6),
        "calls": sum(1 for a in attempts if a.outcome != "skipped"),
    }
