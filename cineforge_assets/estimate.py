"""What ingesting a screenplay would cost, before any provider is called (issue 15 item 4).

The file is read and parsed exactly as the assets do, and each AI stage's request is built with the same
payload builders (``cineforge_assets.screenplay.payloads``) and ``build_request``; so the prompt tokens are
those of the real requests, counted at the limits table's estimate (``resources.providers.limits``).

Output tokens cannot be known before a model answers. They are estimated as the length of the deterministic
offline engine's answer to the same request: an answer of the right shape (one entry per scene, a logline,
...) built from the same input; the engine's answers also give the later stages their input (the scene
summaries the insights request carries). Real models tend to write more than the engine, so treat the output
part as a floor; prompt tokens dominate the bill for a whole screenplay.

Each stage is priced on every model of its chain; the estimate total is the chain's first model of each stage
(the one that serves when nothing fails) plus the B-roll clips at Veo's per-second price.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from cineforge_assets.screenplay.artifacts import canonicalize, is_screenplay_shaped
from cineforge_assets.screenplay.batching import Budget, CallLimits, join_fountain, plan_batches
from cineforge_assets.screenplay.formats.isolated import read_source_isolated
from cineforge_assets.screenplay.formats.reader import RawSource
from cineforge_assets.screenplay.payloads import (
    enrich_scenes_batch,
    enrich_scenes_costs,
    enrich_scenes_payload,
    normalize_chunks,
    project_insights_payload,
)
from cineforge_assets.screenplay.project import build_project_config
from cineforge_assets.screenplay.scenes import SceneRecord, split_scenes
from resources.adapters.veo import DEFAULT_MODEL as VEO_MODEL
from resources.ai import SPLIT_OUTPUT_TOKENS
from resources.providers import offline
from resources.providers.limits import estimate_prompt_tokens, estimate_tokens, limits_for
from resources.providers.prices import PriceTable, TokenUsage, price_table
from resources.providers.prompts import build_request
from resources.resilience.chain import fallback_chain_for

# Veo 3 generates 8-second clips unless a request says otherwise; the B-roll asset asks for none.
VEO_CLIP_SECONDS = 8.0
DEFAULT_BROLL_CLIPS = 3  # the B-roll asset's default: the 3 longest scenes


@dataclass(frozen=True)
class ModelCost:
    provider: str
    model: str
    usd: float | None  # None: the model has no price in the table (unpriced, not free)
    calls: int = 1  # one more per request whose answer overruns its ceiling (the executor resends it, raised)
    fits: bool = True  # False: even the raised ceiling cannot hold the answer (the stage would fail here)


@dataclass(frozen=True)
class StageEstimate:
    stage: str
    task: str
    requests: int
    input_tokens: int
    output_tokens: int
    on_chain: tuple[ModelCost, ...]
    ceiling: int = 0  # the output ceiling the request is sent with

    @property
    def first_choice(self) -> ModelCost:
        return self.on_chain[0]


@dataclass(frozen=True)
class Estimate:
    file: str
    scenes: int
    stages: tuple[StageEstimate, ...]
    broll_clips: int
    broll_usd: float | None
    unpriced: tuple[str, ...] = field(default=())

    @property
    def estimated_cost_usd(self) -> float:
        """The first-choice models' cost plus B-roll (unpriced parts left out and listed in ``unpriced``)."""
        total = sum(s.first_choice.usd or 0.0 for s in self.stages)
        return round(total + (self.broll_usd or 0.0), 6)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "scenes": self.scenes,
            "stages": {
                s.stage: {
                    "task": s.task,
                    "requests": s.requests,
                    "input_tokens": s.input_tokens,
                    "output_tokens": s.output_tokens,
                    "max_tokens": s.ceiling,
                    "cost_usd_by_model": {
                        f"{m.provider}/{m.model}": None if m.usd is None else round(m.usd, 6) for m in s.on_chain
                    },
                    "calls_by_model": {f"{m.provider}/{m.model}": m.calls for m in s.on_chain},
                }
                for s in self.stages
            },
            "broll": {
                "clips": self.broll_clips,
                "seconds": self.broll_clips * VEO_CLIP_SECONDS,
                "cost_usd": None if self.broll_usd is None else round(self.broll_usd, 6),
            },
            "unpriced": list(self.unpriced),
            "estimated_cost_usd": self.estimated_cost_usd,
        }


def _stage(
    stage: str,
    task: str,
    payloads: Sequence[dict[str, Any]],
    table: PriceTable,
    chains: Mapping[str, Sequence[str]] | None,
    max_tokens: int | None = None,
) -> tuple[StageEstimate, list[dict[str, Any]]]:
    """One stage's requests (one per part the stage splits its work into), priced on every chain model;
    also the offline engine's answers, which stand in for the models' as the later stages' input."""
    usages: list[TokenUsage] = []
    answers: list[dict[str, Any]] = []
    ceiling = 0
    for payload in payloads:
        request = build_request(task, payload, stage=stage, max_tokens=max_tokens)
        answer = offline.answer(task, request.payload or payload)
        answers.append(answer)
        ceiling = request.max_tokens
        usages.append(
            TokenUsage(
                input_tokens=estimate_prompt_tokens(request.system, request.prompt),
                output_tokens=estimate_tokens(json.dumps(answer, ensure_ascii=False)),
            )
        )
    on_chain = tuple(
        _on_chain_model(ref.provider, ref.model, usages, ceiling, table) for ref in fallback_chain_for(stage, chains)
    )
    estimate = StageEstimate(
        stage,
        task,
        len(payloads),
        sum(u.input_tokens for u in usages),
        sum(u.output_tokens for u in usages),
        on_chain,
        ceiling,
    )
    return estimate, answers


def _on_chain_model(
    provider: str, model: str, usages: Sequence[TokenUsage], ceiling: int, table: PriceTable
) -> ModelCost:
    parts = [_on_model(provider, model, usage, ceiling, table) for usage in usages]
    usd = None if any(p.usd is None for p in parts) else sum(p.usd or 0.0 for p in parts)
    return ModelCost(provider, model, usd, calls=sum(p.calls for p in parts), fits=all(p.fits for p in parts))


def first_model_limits(stage: str, task: str, chains: Mapping[str, Sequence[str]] | None) -> tuple[int, int]:
    """``(context window, output ceiling)`` a split stage plans its parts for: the chain's first model's, as
    ``AIProviderResource.planning_limits`` gives them when every provider is configured (the paid case)."""
    ref = fallback_chain_for(stage, chains)[0]
    limits = limits_for(ref.provider, ref.model)
    if ref.provider == "offline":
        return limits.context_window, limits.context_window // 2
    return limits.context_window, limits.output_ceiling(SPLIT_OUTPUT_TOKENS.get(task, limits.max_output_tokens))


def _enrich_payloads(
    title: str, records: Sequence[SceneRecord], chains: Mapping[str, Sequence[str]] | None
) -> tuple[list[dict[str, Any]], int]:
    """The scenes stage's batches, planned as the ``scenes`` asset plans them, and their output ceiling."""
    payload = enrich_scenes_payload(title, records)
    window, ceiling = first_model_limits("extract_scenes", "enrich_scenes", chains)
    fixed, costs = enrich_scenes_costs(payload, estimate_tokens)
    batches = plan_batches(costs, Budget.of(CallLimits(window, ceiling), fixed))
    return [enrich_scenes_batch(payload, batch) for batch in batches], ceiling


def _normalize_payloads(
    text: str, chains: Mapping[str, Sequence[str]] | None
) -> tuple[list[dict[str, Any]], int | None]:
    """The normalize stage's requests as ``canonical_script`` makes them: the whole prose in one when it
    fits, else overlapping chunks (with the planned ceiling)."""
    window, ceiling = first_model_limits("normalize", "normalize", chains)
    chunks = normalize_chunks(text, CallLimits(window, ceiling), estimate_tokens)
    if len(chunks) <= 1:
        return [{"text": text}], None
    return [{"text": chunk.text} for chunk in chunks], ceiling


def _on_model(provider: str, model: str, usage: TokenUsage, ceiling: int, table: PriceTable) -> ModelCost:
    """The cost on one model as the executor would spend it: an answer longer than the request's output
    ceiling is cut and billed, then resent once with the ceiling raised to what the model allows
    (``ResilientCaller._raised_ceiling``), paying the prompt twice."""
    if usage.output_tokens <= ceiling or provider == "offline":  # the offline engine never cuts its answer
        return ModelCost(provider, model, table.cost_of(provider, model, usage).usd)
    room = limits_for(provider, model).room_for_output(usage.input_tokens)
    cut = TokenUsage(input_tokens=usage.input_tokens, output_tokens=ceiling)
    resent = TokenUsage(input_tokens=usage.input_tokens, output_tokens=min(room, usage.output_tokens))
    total = table.cost_of(provider, model, cut) + table.cost_of(provider, model, resent)
    return ModelCost(provider, model, total.usd, calls=2, fits=room >= usage.output_tokens)


def estimate_source(
    raw: RawSource,
    *,
    table: PriceTable | None = None,
    chains: Mapping[str, Sequence[str]] | None = None,
    broll_clips: int = DEFAULT_BROLL_CLIPS,
    veo_model: str = VEO_MODEL,
) -> Estimate:
    """The estimate for an already read source: every stage's request built as the assets build it."""
    prices = table or price_table()
    stages: list[StageEstimate] = []
    text = raw.text
    if not is_screenplay_shaped(raw):
        payloads, ceiling = _normalize_payloads(text, chains)
        normalized, answers = _stage("normalize", "normalize", payloads, prices, chains, ceiling)
        stages.append(normalized)
        parts = [str(answer["fountain"]) for answer in answers]
        text = parts[0] if len(parts) == 1 else join_fountain(parts)
    canonical = canonicalize(text, raw, normalized_by="estimate")  # as canonical_script makes it
    script = canonical.script()
    records = split_scenes(script, canonical.fountain)
    summaries: list[str] = []
    if records:
        title = canonical.title
        batches, ceiling = _enrich_payloads(title, records, chains)
        scenes_stage, answers = _stage("extract_scenes", "enrich_scenes", batches, prices, chains, ceiling)
        stages.append(scenes_stage)
        by_number = {int(s["scene_number"]): str(s["summary"]) for a in answers for s in a["scenes"]}
        summaries = [by_number.get(int(r.scene_number), "") for r in records]
    base = build_project_config(
        script,
        records,
        source_format=raw.format,
        page_count=raw.page_count,
        fallback_title=PurePath(raw.file_name).stem,
    )
    insights, _ = _stage(
        "project_config", "project_insights", [project_insights_payload(base, records, summaries)], prices, chains
    )
    stages.append(insights)
    clips = min(broll_clips, len(records))
    broll = prices.video_cost("veo", veo_model, clips * VEO_CLIP_SECONDS)
    unpriced = [f"{m.provider}/{m.model}" for s in stages for m in s.on_chain if m.usd is None]
    if broll.usd is None:
        unpriced.append(f"veo/{veo_model}")
    return Estimate(
        file=raw.file_name,
        scenes=len(records),
        stages=tuple(stages),
        broll_clips=clips,
        broll_usd=broll.usd,
        unpriced=tuple(dict.fromkeys(unpriced)),
    )


def estimate_file(path: Path, **kwargs: Any) -> Estimate:
    """Read ``path`` (any supported format) as ``raw_input`` does, in the bounded child process, and estimate
    it; reading errors propagate as the reader raises them (``SourceError``, ``OSError``)."""
    return estimate_source(read_source_isolated(Path(path)), **kwargs)


def estimate_lines(estimate: Estimate) -> list[str]:
    """The human-readable table: per stage its tokens and the cost on each model of the chain."""
    lines = [f"{estimate.file}: {estimate.scenes} scenes"]
    for s in estimate.stages:
        lines.append(
            f"  {s.stage} ({s.task}): {s.requests} request(s), {s.input_tokens} input + {s.output_tokens} output tokens"
        )
        for index, m in enumerate(s.on_chain):
            price = "unpriced" if m.usd is None else f"${m.usd:.4f}"
            marker = "*" if index == 0 else " "
            resent = m.calls - s.requests
            note = f" ({resent} resent: an answer overruns the {s.ceiling}-token ceiling)" if resent > 0 else ""
            note += "" if m.fits else "; does not fit this model's output limit"
            lines.append(f"    {marker} {m.provider}/{m.model}: {price}{note}")
    broll = "unpriced" if estimate.broll_usd is None else f"${estimate.broll_usd:.4f}"
    lines.append(f"  veo3_broll: {estimate.broll_clips} clips x {VEO_CLIP_SECONDS:g} s: {broll}")
    lines.append(f"estimated cost (* first choice of each chain, plus B-roll): ${estimate.estimated_cost_usd:.4f}")
    return lines
