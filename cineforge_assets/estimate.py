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

from cineforge_assets.screenplay.elements import ElementType
from cineforge_assets.screenplay.formats.reader import RawSource, read_source
from cineforge_assets.screenplay.fountain import parse_fountain, write_fountain
from cineforge_assets.screenplay.payloads import enrich_scenes_payload, project_insights_payload
from cineforge_assets.screenplay.project import build_project_config
from cineforge_assets.screenplay.scenes import split_scenes
from resources.providers import offline
from resources.providers.limits import estimate_tokens, limits_for
from resources.providers.prices import PriceTable, TokenUsage, price_table
from resources.providers.prompts import build_request
from resources.providers.veo import DEFAULT_MODEL as VEO_MODEL
from resources.resilience.chain import fallback_chain_for

# Veo 3 generates 8-second clips unless a request says otherwise; the B-roll asset asks for none.
VEO_CLIP_SECONDS = 8.0
DEFAULT_BROLL_CLIPS = 3  # the B-roll asset's default: the 3 longest scenes


@dataclass(frozen=True)
class ModelCost:
    provider: str
    model: str
    usd: float | None  # None: the model has no price in the table (unpriced, not free)
    calls: int = 1  # 2: the answer overruns the request's ceiling; the executor resends it once, raised
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


def _screenplay_shaped(raw: RawSource) -> bool:
    """As ``canonical_script`` decides: only prose goes to a model."""
    if raw.format in {"fountain", "fdx", "pdf", "docx"}:
        return True
    return any(e.type == ElementType.SCENE_HEADING for e in parse_fountain(raw.text).elements)


def _stage(
    stage: str,
    task: str,
    payload: dict[str, Any],
    table: PriceTable,
    chains: Mapping[str, Sequence[str]] | None,
) -> tuple[StageEstimate, dict[str, Any]]:
    request = build_request(task, payload, stage=stage)
    answer = offline.answer(task, request.payload or payload)
    usage = TokenUsage(
        input_tokens=estimate_tokens(request.system + request.prompt),
        output_tokens=estimate_tokens(json.dumps(answer, ensure_ascii=False)),
    )
    on_chain = tuple(
        _on_model(ref.provider, ref.model, usage, request.max_tokens, table)
        for ref in fallback_chain_for(stage, chains)
    )
    estimate = StageEstimate(stage, task, 1, usage.input_tokens, usage.output_tokens, on_chain, request.max_tokens)
    return estimate, answer


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
    if not _screenplay_shaped(raw):
        normalized, answer = _stage("normalize", "normalize", {"text": text}, prices, chains)
        stages.append(normalized)
        text = str(answer["fountain"])
    fountain = write_fountain(parse_fountain(text))
    script = parse_fountain(fountain)  # as canonical_script: elements refer to the canonical text
    records = split_scenes(script, fountain)
    summaries: list[str] = []
    if records:
        title = script.title or raw.file_name
        scenes_stage, answer = _stage(
            "extract_scenes", "enrich_scenes", enrich_scenes_payload(title, records), prices, chains
        )
        stages.append(scenes_stage)
        by_number = {int(s["scene_number"]): str(s["summary"]) for s in answer["scenes"]}
        summaries = [by_number.get(int(r.scene_number), "") for r in records]
    base = build_project_config(
        script,
        records,
        source_format=raw.format,
        page_count=raw.page_count,
        fallback_title=PurePath(raw.file_name).stem,
    )
    insights, _ = _stage(
        "project_config", "project_insights", project_insights_payload(base, records, summaries), prices, chains
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
    """Read ``path`` (any supported format) and estimate it; reading errors propagate as the reader raises them."""
    return estimate_source(read_source(path), **kwargs)


def estimate_lines(estimate: Estimate) -> list[str]:
    """The human-readable table: per stage its tokens and the cost on each model of the chain."""
    lines = [f"{estimate.file}: {estimate.scenes} scenes"]
    for s in estimate.stages:
        lines.append(f"  {s.stage} ({s.task}): {s.input_tokens} input + {s.output_tokens} output tokens")
        for index, m in enumerate(s.on_chain):
            price = "unpriced" if m.usd is None else f"${m.usd:.4f}"
            marker = "*" if index == 0 else " "
            note = "" if m.calls == 1 else f" ({m.calls} calls: the answer overruns the {s.ceiling}-token ceiling)"
            note += "" if m.fits else "; does not fit this model's output limit"
            lines.append(f"    {marker} {m.provider}/{m.model}: {price}{note}")
    broll = "unpriced" if estimate.broll_usd is None else f"${estimate.broll_usd:.4f}"
    lines.append(f"  veo3_broll: {estimate.broll_clips} clips x {VEO_CLIP_SECONDS:g} s: {broll}")
    lines.append(f"estimated cost (* first choice of each chain, plus B-roll): ${estimate.estimated_cost_usd:.4f}")
    return lines
