"""Degraded results heal themselves: the ``degraded_heal`` sensor re-runs what an outage served badly.

An AI-backed asset that the offline engine or a lower-quality fallback served says so in its
materialization (``degraded``, ``degraded_cause``, ``preferred_provider``: see ``degraded.py``) and its WARN
check ``served_by_preferred`` fails. Each tick the sensor

1. reads the materializations of ``canonical_script``, ``scenes`` and ``project_config`` recorded since its
   last tick and keeps, per asset and partition, the latest one if it is degraded by an outage (a later
   good materialization clears it);
2. asks the breaker store whether each such materialization's preferred provider is healthy again: its
   breaker closed with no failure streak (``provider_ready``), which after an outage means a probe
   succeeded. A provider still open past its cooldown gets one ``provider_health`` run per opening (run key
   ``heal-probe:<provider>:<opened_at>``), so recovery is found within a cooldown, not at the probe's next
   5-minute slot;
3. requests, per partition whose providers are ready, one ``screenplay_pipeline`` run of the degraded
   assets and everything downstream of them (run key ``heal:<partition>:<newest storage id>``, tag
   ``cineforge/heal=true``: its split stages skip the response cache, which holds the fallback's answers),
   at most ``max_runs_per_tick`` a tick, never while ``max_in_flight`` heal runs are queued or running, and
   only as many as today's budget holds (``DailyBudget``: the cost work's daily cap over its per-run cap).
   Each heal run is an ordinary run, so its calls reserve against the per-run and daily caps like any other.

A degraded materialization is requested once: the cursor remembers it, and Dagster drops a run key it
has launched before even if the cursor is lost. If the heal run is served badly again (the provider fell
over again), that is a new materialization, healed after the next recovery; a refusal or a missing key
(``degraded_cause`` other than ``outage``) is never retried, since the same run gives the same answer.

``plan_heals`` and the cursor are pure; the sensor is the thin Dagster shell around them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from cineforge_assets.degraded import HEALABLE_CAUSES, degraded_from_metadata
from cineforge_assets.health import HEALTH_JOB_NAME, provider_health_job
from cineforge_assets.jobs import PIPELINE_ASSET_NAMES, screenplay_pipeline_job
from cineforge_assets.partitions import screenplay_partitions
from cineforge_assets.run_tags import HEAL_TAG, HEALS_TAG, PROBE_FOR_TAG, TRIGGER_TAG
from resources.ai import AIProviderResource
from resources.resilience.breaker_state import BreakerSnapshot

HEAL_SENSOR_NAME = "degraded_heal"
HEAL_ASSETS: tuple[str, ...] = ("canonical_script", "scenes", "project_config")
DEFAULT_INTERVAL_SECONDS = 30
DEFAULT_MAX_RUNS_PER_TICK = 2
DEFAULT_MAX_IN_FLIGHT = 2
_SCAN_LIMIT = 500  # materializations read per asset per tick; the rest next tick
_ACTIVE = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a whole number") from exc
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value}")
    return value


@dataclass(frozen=True, slots=True)
class HealPolicy:
    """How much healing one tick may start."""

    max_runs_per_tick: int = DEFAULT_MAX_RUNS_PER_TICK
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT

    @classmethod
    def from_env(cls) -> HealPolicy:
        """``CINEFORGE_HEAL_MAX_RUNS_PER_TICK`` (default 2; 0 switches healing off) and
        ``CINEFORGE_HEAL_MAX_IN_FLIGHT`` (default 2)."""
        return cls(
            max_runs_per_tick=_env_int("CINEFORGE_HEAL_MAX_RUNS_PER_TICK", DEFAULT_MAX_RUNS_PER_TICK, 0),
            max_in_flight=_env_int("CINEFORGE_HEAL_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, 1),
        )


def heal_interval_from_env() -> int:
    """``CINEFORGE_HEAL_INTERVAL_SECONDS``: how often the daemon evaluates the sensor (default 30)."""
    return _env_int("CINEFORGE_HEAL_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS, 1)


@dataclass(frozen=True, slots=True)
class Degraded:
    """The latest materialization of ``asset`` for ``partition``, served below its preferred model(s)."""

    asset: str
    partition: str
    storage_id: int
    provider: str  # the stage's preferred provider

    @property
    def slot(self) -> str:
        return f"{self.asset}@{self.partition}"


@dataclass(frozen=True)
class HealCursor:
    """What the sensor has read and done, as JSON in the sensor's cursor.

    ``scanned``: asset -> newest storage id read; ``outstanding``: slot -> the degraded materialization still
    latest there; ``requested``: slot -> storage id a heal was requested for; ``probes``: provider ->
    ``opened_at`` of the breaker opening a probe was requested for. Bounded by the partitions currently
    degraded, not by history: a slot leaves when a good materialization replaces its degraded one.
    """

    scanned: dict[str, int] = field(default_factory=dict)
    outstanding: dict[str, Degraded] = field(default_factory=dict)
    requested: dict[str, int] = field(default_factory=dict)
    probes: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "scanned": self.scanned,
                "outstanding": {
                    slot: [d.asset, d.partition, d.storage_id, d.provider] for slot, d in self.outstanding.items()
                },
                "requested": self.requested,
                "probes": self.probes,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> HealCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            scanned={k: int(v) for k, v in data.get("scanned", {}).items()},
            outstanding={
                slot: Degraded(str(a), str(p), int(s), str(pr))
                for slot, (a, p, s, pr) in data.get("outstanding", {}).items()
            },
            requested={k: int(v) for k, v in data.get("requested", {}).items()},
            probes={k: float(v) for k, v in data.get("probes", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Materialization:
    """What the sensor reads of one materialization event."""

    asset: str
    partition: str
    storage_id: int
    degraded: bool
    cause: str
    provider: str
    mode: str = ""  # the provider mode it was served in ("" before the field existed)


def absorb(cursor: HealCursor, seen: Iterable[Materialization], *, mode: str | None = None) -> HealCursor:
    """The cursor after reading ``seen`` (any order): each slot keeps its newest materialization if it is
    degraded by an outage (in ``mode``, the sensor's own provider mode, when given), and forgets it (and its
    request) when a newer one is not. Another mode's degradation is not this sensor's to heal: a simulated
    drill is never re-run against live providers."""
    scanned = dict(cursor.scanned)
    outstanding = dict(cursor.outstanding)
    requested = dict(cursor.requested)
    for m in sorted(seen, key=lambda m: m.storage_id):
        scanned[m.asset] = max(scanned.get(m.asset, 0), m.storage_id)
        slot = f"{m.asset}@{m.partition}"
        current = outstanding.get(slot)
        if current is not None and current.storage_id >= m.storage_id:
            continue
        if m.degraded and m.cause in HEALABLE_CAUSES and (mode is None or m.mode == mode):
            outstanding[slot] = Degraded(m.asset, m.partition, m.storage_id, m.provider)
        else:
            outstanding.pop(slot, None)
            requested.pop(slot, None)
    return replace(cursor, scanned=scanned, outstanding=outstanding, requested=requested)


def provider_ready(snapshot: BreakerSnapshot | None) -> tuple[bool, str]:
    """Is a provider healthy enough to heal with? Its breaker closed without a failure streak or a parking
    (after an outage: a probe or a call succeeded). No record at all reads as a closed breaker, as the
    breaker itself treats it."""
    if snapshot is None:
        return True, "no breaker record: closed"
    if snapshot.parked_until is not None:
        return False, f"parked ({snapshot.parked_reason})"
    if snapshot.state == "open":
        return False, f"breaker open, {snapshot.reopens_in_seconds:.0f}s of cooldown left"
    if snapshot.state == "half_open":
        return False, "breaker half-open: a probe is deciding"
    if snapshot.consecutive_failures:
        return False, f"closed but failing ({snapshot.consecutive_failures} failure(s) in a row)"
    return True, "breaker closed"


def probe_due(snapshot: BreakerSnapshot | None) -> bool:
    """An open breaker whose cooldown has elapsed: one probe decides whether healing can start."""
    return snapshot is not None and snapshot.state == "open" and snapshot.reopens_in_seconds <= 0


def with_downstream(assets: Iterable[str], order: Sequence[str] = PIPELINE_ASSET_NAMES) -> list[str]:
    """``assets`` and everything after the earliest of them in ``order``.

    ``order`` is the pipeline's topological order; in this graph every asset after another depends on it,
    directly or through one between (``veo3_broll`` reads ``scenes`` and ``project_config``), so "after" is
    exactly "downstream"."""
    positions = [order.index(a) for a in assets if a in order]
    return list(order[min(positions) :]) if positions else []


@dataclass(frozen=True, slots=True)
class DailyBudget:
    """Today's fleet-wide spend against the cost work's caps (``resources.resilience.budget``)."""

    spent_usd: float
    daily_cap_usd: float | None
    run_cap_usd: float | None

    def heals_that_fit(self) -> int | None:
        """How many heal runs today's budget leaves room for (None: no daily cap).

        A heal run can spend at most the per-run cap, so ``headroom // run cap`` of them fit for certain.
        Without a per-run cap their cost is unknown: one at a time, so each one's spend is on the day's total
        before the next is decided. A heal the executor would refuse on the first call would use up its one
        request for nothing, so none is requested once the day is spent.
        """
        if self.daily_cap_usd is None:
            return None
        headroom = self.daily_cap_usd - self.spent_usd
        if headroom <= 0:
            return 0
        if self.run_cap_usd:
            return int(headroom // self.run_cap_usd)
        return 1

    def describe(self) -> str:
        cap = "no daily cap" if self.daily_cap_usd is None else f"${self.daily_cap_usd:.4f} daily cap"
        return f"${self.spent_usd:.4f} spent today of {cap}"


@dataclass(frozen=True, slots=True)
class PartitionHeal:
    partition: str
    degraded: tuple[Degraded, ...]
    selection: tuple[str, ...]

    @property
    def run_key(self) -> str:
        return f"heal:{self.partition}:{max(d.storage_id for d in self.degraded)}"


@dataclass(frozen=True)
class HealPlan:
    heals: list[PartitionHeal]
    probes: list[tuple[str, float]]  # (provider, opened_at)
    waiting: list[str]  # why the rest waits, for the tick's skip reason
    cursor: HealCursor


def plan_heals(
    cursor: HealCursor,
    snapshots: Mapping[str, BreakerSnapshot],
    *,
    policy: HealPolicy,
    in_flight: int,
    live_partitions: set[str] | None = None,
    budget: DailyBudget | None = None,
) -> HealPlan:
    """Which partitions to heal now, which breakers to probe, and the cursor that remembers both."""
    waiting: list[str] = []
    by_partition: dict[str, list[Degraded]] = {}
    outstanding = dict(cursor.outstanding)
    for slot, d in sorted(cursor.outstanding.items()):
        if live_partitions is not None and d.partition not in live_partitions:
            outstanding.pop(slot)  # the partition was deleted: nothing left to heal
            continue
        if cursor.requested.get(slot) == d.storage_id:
            continue
        by_partition.setdefault(d.partition, []).append(d)
    probes: list[tuple[str, float]] = []
    probed = dict(cursor.probes)
    ready_partitions: list[tuple[str, list[Degraded]]] = []
    blocked: dict[str, str] = {}
    for partition, items in sorted(by_partition.items()):
        ready = []
        for d in items:
            ok, why = provider_ready(snapshots.get(d.provider))
            if ok:
                ready.append(d)
                continue
            blocked[d.provider] = why
            snap = snapshots.get(d.provider)
            if snap is not None and snap.opened_at is not None and probe_due(snap):
                wanted = (d.provider, snap.opened_at)
                if probed.get(d.provider) != snap.opened_at and wanted not in probes:
                    probes.append(wanted)
        if ready:
            ready_partitions.append((partition, ready))
        if len(ready) < len(items):
            waiting.append(
                f"{partition}: waiting for {', '.join(sorted({d.provider for d in items if d not in ready}))}"
            )
    for provider, opened_at in probes:
        probed[provider] = opened_at
    room = max(0, min(policy.max_runs_per_tick, policy.max_in_flight - in_flight))
    fits = budget.heals_that_fit() if budget is not None else None
    if fits is not None and fits < room:
        room = fits
        if ready_partitions and budget is not None:
            waiting.append(f"daily budget: {budget.describe()}; room for {fits} heal run(s)")
    heals: list[PartitionHeal] = []
    requested = dict(cursor.requested)
    for partition, ready in ready_partitions:
        if len(heals) >= room:
            waiting.append(
                f"{partition}: over the heal budget ({in_flight} in flight, {policy.max_runs_per_tick} a tick)"
            )
            continue
        selection = tuple(with_downstream(d.asset for d in ready))
        heals.append(PartitionHeal(partition, tuple(ready), selection))
        for d in ready:
            requested[d.slot] = d.storage_id
    for provider, why in sorted(blocked.items()):
        waiting.append(f"{provider}: {why}")
    new_cursor = replace(cursor, outstanding=outstanding, requested=requested, probes=probed)
    return HealPlan(heals, probes, waiting, new_cursor)


# ------------------------------------------------------------------------------------ Dagster shell


def read_materializations(
    context: SensorEvaluationContext, cursor: HealCursor, assets: Sequence[str] = HEAL_ASSETS
) -> list[Materialization]:
    found: list[Materialization] = []
    for asset in assets:
        result = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(asset), after_storage_id=cursor.scanned.get(asset)),
            limit=_SCAN_LIMIT,
            ascending=True,
        )
        for record in result.records:
            event = record.asset_materialization
            if event is None or event.partition is None:
                continue
            degraded, cause, provider, mode = degraded_from_metadata(event.metadata)
            found.append(Materialization(asset, event.partition, record.storage_id, degraded, cause, provider, mode))
    return found


def daily_budget(ai: AIProviderResource) -> DailyBudget:
    """Today's spend in this mode's namespace of the shared ledger, with the caps the heal runs will obey."""
    ledger = ai.ledger()
    try:
        spent = ledger.spent()["day"]
    finally:
        ledger.store.close()
    return DailyBudget(spent, ledger.caps.daily_usd, ledger.caps.run_usd)


def _heal_request(heal: PartitionHeal) -> RunRequest:
    return RunRequest(
        run_key=heal.run_key,
        job_name=screenplay_pipeline_job.name,
        partition_key=heal.partition,
        asset_selection=[AssetKey(a) for a in heal.selection],
        tags={
            HEAL_TAG: "true",
            HEALS_TAG: ",".join(f"{d.asset}@{d.storage_id}" for d in heal.degraded),
            TRIGGER_TAG: HEAL_SENSOR_NAME,
        },
    )


def _probe_request(provider: str, opened_at: float) -> RunRequest:
    return RunRequest(
        run_key=f"heal-probe:{provider}:{opened_at:.3f}",
        job_name=HEALTH_JOB_NAME,
        tags={TRIGGER_TAG: HEAL_SENSOR_NAME, PROBE_FOR_TAG: provider},
    )


def evaluate_heal(context: SensorEvaluationContext, ai: AIProviderResource, *, policy: HealPolicy) -> SensorResult:
    """One tick: read new materializations, ask the breaker store, request heals and probes."""
    previous = HealCursor.from_json(context.cursor)
    cursor = absorb(previous, read_materializations(context, previous), mode=ai.mode)
    if not cursor.outstanding:
        return SensorResult(skip_reason=SkipReason("nothing degraded"), cursor=cursor.to_json())
    breaker = ai.breaker()
    try:
        snapshots = breaker.snapshot()
    finally:
        breaker.store.close()
    in_flight = context.instance.get_runs_count(RunsFilter(tags={HEAL_TAG: "true"}, statuses=_ACTIVE))
    live = set(context.instance.get_dynamic_partitions(screenplay_partitions.name or "screenplays"))
    plan = plan_heals(
        cursor, snapshots, policy=policy, in_flight=in_flight, live_partitions=live, budget=daily_budget(ai)
    )
    for heal in plan.heals:
        context.log.info(
            f"heal: {heal.partition}: {', '.join(d.asset for d in heal.degraded)} degraded, "
            f"{', '.join(sorted({d.provider for d in heal.degraded}))} healthy again -> "
            f"re-running {', '.join(heal.selection)}"
        )
    for provider, _ in plan.probes:
        context.log.info(f"heal: {provider} breaker past its cooldown: requesting a provider_health probe")
    requests = [_heal_request(h) for h in plan.heals] + [_probe_request(p, at) for p, at in plan.probes]
    if not requests:
        return SensorResult(
            skip_reason=SkipReason("; ".join(plan.waiting) or "nothing to heal"), cursor=plan.cursor.to_json()
        )
    return SensorResult(run_requests=requests, cursor=plan.cursor.to_json())


def build_heal_sensor(
    *,
    name: str = HEAL_SENSOR_NAME,
    policy: HealPolicy | None = None,
    minimum_interval_seconds: int | None = None,
    default_status: DefaultSensorStatus | None = None,
    mode: Callable[[], str] | None = None,
) -> SensorDefinition:
    """The heal sensor; ``policy`` is read from the environment at every tick unless given. RUNNING by default
    with real or simulated providers, STOPPED offline (nothing better than the offline engine to heal to)."""
    if default_status is None:
        from cineforge_assets.resource_config import provider_mode_from_env

        offline = (mode or provider_mode_from_env)() == "offline"
        default_status = DefaultSensorStatus.STOPPED if offline else DefaultSensorStatus.RUNNING

    @sensor(
        name=name,
        jobs=[screenplay_pipeline_job, provider_health_job],
        minimum_interval_seconds=minimum_interval_seconds or heal_interval_from_env(),
        default_status=default_status,
        description=(
            "Re-materializes partitions whose AI-backed assets were served by the offline engine or a "
            "lower-quality fallback, once the preferred provider's breaker is closed again."
        ),
    )
    def degraded_heal(context: SensorEvaluationContext, ai: AIProviderResource) -> SensorResult:
        return evaluate_heal(context, ai, policy=policy or HealPolicy.from_env())

    return degraded_heal


degraded_heal_sensor = build_heal_sensor()
