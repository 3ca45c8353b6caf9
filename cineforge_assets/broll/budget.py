"""B-roll under the spending caps: reserve each clip's price before submitting it, submit only what fits.

A clip is billed per generated second (``resources.providers.prices``, the ``veo`` rows). Each pending job
reserves one clip's price on the run's spend ledger (the same caps and store as the text stages, so text and
video share one run budget and one daily budget); a job the caps refuse is marked failed with
``over_budget: <the cap, the spend so far, the clip refused>`` and is never submitted. ``over_budget`` is not
a retriable kind, so the await gate's single auto-retry does not resubmit it. After the gate, a clip that
succeeded settles at its price and one that failed at zero (Veo does not bill a failed generation).

No Dagster imports: the asset passes the ledger in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from cineforge_assets.broll.jobs import BrollJob, utc_now
from resources.providers.prices import PriceTable, video_cost
from resources.resilience.budget import Refusal, Reservation, SpendLedger

BROLL_STAGE: Final = "veo3_broll"
VEO_PROVIDER: Final = "veo"
# Veo 3 generates 8-second clips unless the request's ``durationSeconds`` says otherwise; the asset sends none.
VEO_CLIP_SECONDS: Final = 8.0
OVER_BUDGET_KIND: Final = "over_budget"


def clip_price(model: str, *, billed: bool = True, table: PriceTable | None = None) -> float | None:
    """USD one clip of ``model`` costs (``None``: unpriced); 0 when nobody bills it (the offline simulator)."""
    if not billed:
        return 0.0
    return video_cost(VEO_PROVIDER, model, VEO_CLIP_SECONDS, table=table).usd


def reserve_clips(
    jobs: list[BrollJob], ledger: SpendLedger, price_usd: float | None, *, now: Callable[[], datetime] = utc_now
) -> dict[int, Reservation]:
    """Reserve ``price_usd`` for every pending job, in order; mark the ones the caps refuse as failed.

    Returns the reservations by scene, to be settled by ``settle_clips``.
    """
    reservations: dict[int, Reservation] = {}
    for job in jobs:
        if job.status != "pending":
            continue
        answer = ledger.reserve(price_usd, stage=BROLL_STAGE)
        if isinstance(answer, Refusal):
            job.status = "failed"
            job.error_message = f"{OVER_BUDGET_KIND}: " + answer.describe(f"B-roll clip for scene {job.scene}")
            job.updated_at = job.finished_at = now()
        else:
            reservations[job.scene] = answer
    return reservations


def settle_clips(
    jobs: list[BrollJob], reservations: dict[int, Reservation], ledger: SpendLedger, price_usd: float | None
) -> float:
    """Settle each reserved clip at its price if it succeeded, else at zero; returns what the clips cost."""
    spent = 0.0
    for job in jobs:
        reservation = reservations.get(job.scene)
        if reservation is None:
            continue
        # A succeeded clip of an unpriced model settles as unpriced (the reservation stands).
        cost = price_usd if job.status == "succeeded" else 0.0
        ledger.settle(reservation, cost)
        spent += cost or 0.0
    return spent
