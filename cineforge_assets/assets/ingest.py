"""The four ingest assets: ``raw_input`` -> ``canonical_script`` -> ``scenes`` -> ``project_config``.

Each asset is a thin shell: read upstream, call a pure domain function (and, where a model adds value,
the provider resource), report what happened as ``MaterializeResult`` metadata.
"""

from pathlib import PurePath
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import BaseModel, Field

from cineforge_assets.assets.ai_calls import (
    AI_RETRY_POLICY,
    ai_metadata,
    retry_only_what_can_heal,
    run_ai_task,
    tag_failure,
)
from cineforge_assets.assets.split_calls import (
    PartCaller,
    failure_for,
    parts_metadata,
    run_parts,
)
from cineforge_assets.checks import (
    CANONICAL_SCRIPT_PARSES,
    CANONICAL_SCRIPT_SERVED,
    PROJECT_CONFIG_SERVED,
    RAW_INPUT_HAS_TEXT,
    SCENES_NOT_EMPTY,
    SCENES_PLAUSIBLE,
    SCENES_SERVED,
    evaluate_canonical_script,
    evaluate_raw_input,
    evaluate_scenes,
    evaluate_scenes_plausible,
    evaluate_served_by_preferred,
)
from cineforge_assets.degraded import ServiceQuality, assess_results, is_heal_run, not_served, service_metadata
from cineforge_assets.partitions import screenplay_partitions
from cineforge_assets.screenplay.batching import (
    Budget,
    CallLimits,
    describe_scene_numbers,
    join_fountain,
    missing_enrichment,
    plan_batches,
    prose_paragraphs,
    split_prose,
    split_with_overlap,
)
from cineforge_assets.screenplay.elements import Element, ElementType, Script
from cineforge_assets.screenplay.formats.errors import SourceError
from cineforge_assets.screenplay.formats.isolated import read_source_isolated
from cineforge_assets.screenplay.formats.reader import RawSource
from cineforge_assets.screenplay.fountain import parse_fountain, write_fountain
from cineforge_assets.screenplay.payloads import (
    NORMALIZE_OUTPUT_RATIO,
    enrich_scenes_batch,
    enrich_scenes_costs,
    enrich_scenes_payload,
    normalize_fixed_cost,
    project_insights_payload,
)
from cineforge_assets.screenplay.plausibility import assess_scene_split
from cineforge_assets.screenplay.project import ProjectConfig, build_project_config
from cineforge_assets.screenplay.scenes import SceneRecord, estimate_page_count, scenes_dataframe, split_scenes
from cineforge_assets.sources import SourceMismatchError, tagged_source, verify_source_hash
from cineforge_assets.versioning import code_version, content_version
from resources.ai import AIProviderResource
from resources.providers.limits import estimate_tokens

GROUP = "ingest"


class CanonicalScript(BaseModel):
    """The screenplay as canonical Fountain plus its parsed elements."""

    title: str
    title_page: dict[str, list[str]]
    fountain: str
    elements: list[Element]
    element_counts: dict[str, int]
    source_format: str
    source_file: str = Field(default="", description="The source's file name ('' in older artifacts)")
    page_count: int | None = None
    normalized_by: str = Field(description="'deterministic' or the provider/model that rewrote the input")

    def script(self) -> Script:
        """The parsed script, as stored: the elements were parsed from ``fountain`` itself."""
        return Script(title_page=self.title_page, elements=self.elements)


class ProjectConfigArtifact(ProjectConfig):
    genre: str = ""
    tone: str = ""
    logline: str = ""
    insights_by: str = ""


def require_usable_upstream(context: AssetExecutionContext, upstream: str, usable: bool, why: str) -> None:
    """Stop at once, naming the asset to re-materialize, when an upstream artifact is unusable
    (e.g. written by an older version); ``cineforge resume`` reads ``remediate`` and steps back to it."""
    if usable:
        return
    tag_failure(context, "permanent", context.asset_key.to_user_string())
    raise Failure(
        description=(
            f"upstream {upstream} for partition {context.partition_key!r} is unusable ({why}): "
            f"re-materialize {upstream} (`cineforge resume RUN_ID` does this)"
        ),
        metadata={"error_class": "permanent", "remediate": upstream},
        allow_retries=False,
    )


def _preview_markdown(df: pd.DataFrame, limit: int = 5) -> str:
    rows = ["| # | heading | characters | words |", "|---|---|---|---|"]
    for rec in df.head(limit).itertuples():
        chars = ", ".join(list(rec.characters)[:4])
        heading = str(rec.heading).replace("|", "/")
        rows.append(f"| {rec.scene_number} | {heading} | {chars} | {rec.word_count} |")
    return "\n".join(rows)


def missing_script_body(raw: RawSource) -> str | None:
    """Why ``raw`` cannot become a script (a title page and nothing after it), or None.

    Only text that parses as a Fountain title page counts: prose has no title page and goes to the
    model to be normalized."""
    script = parse_fountain(raw.text)
    if script.title_page and not script.elements:
        return (
            f"{raw.file_name}: no script body after the title page "
            f"(title page keys: {', '.join(sorted(script.title_page))}); add the screenplay and ingest it again"
        )
    return None


def _screenplay_shaped(raw: RawSource) -> bool:
    """Screenplay-shaped input is parsed deterministically; only prose goes to a model."""
    if raw.format in {"fountain", "fdx", "pdf", "docx"}:
        return True
    script = parse_fountain(raw.text)
    headings = sum(1 for e in script.elements if e.type == ElementType.SCENE_HEADING)
    return headings > 0


@asset(
    code_version=code_version("raw_input"),
    partitions_def=screenplay_partitions,
    group_name=GROUP,
    check_specs=[RAW_INPUT_HAS_TEXT],
    description="The source file as read: text, detected format and confidence, page count, SHA-256.",
)
def raw_input(context: AssetExecutionContext):
    partition = context.partition_key
    path = None
    try:
        # The exact version the run was requested for (run tags), else the partition's current one.
        source = tagged_source(partition, context.run.tags)
        path = source.path
        raw = read_source_isolated(path)
        verify_source_hash(source, raw.sha256)
    except (FileNotFoundError, SourceMismatchError) as exc:
        tag_failure(context, "permanent", "raw_input")
        raise Failure(
            description=str(exc),
            metadata={"error_class": "permanent", "file": str(path or partition)},
            allow_retries=False,
        ) from exc
    except SourceError as exc:
        # A bad file is a permanent error: retrying reads the same bytes.
        tag_failure(context, "permanent", "raw_input")
        raise Failure(
            description=str(exc),
            metadata={"error_class": "permanent", "error_type": type(exc).__name__, "file": str(path)},
            allow_retries=False,
        ) from exc
    check = evaluate_raw_input(raw)
    if not check.passed:
        tag_failure(context, "permanent", "raw_input")
        raise Failure(
            description=check.description or "raw_input is blank",
            metadata={"error_class": "permanent", "file": str(path)},
            allow_retries=False,
        )
    missing_body = missing_script_body(raw)
    if missing_body:
        # Raised before anything is written: the partition keeps its last good raw_input and
        # canonical_script instead of an artifact with no scenes that fails its check downstream.
        tag_failure(context, "permanent", "raw_input")
        raise Failure(
            description=missing_body,
            metadata={"error_class": "permanent", "file": raw.file_name},
            allow_retries=False,
        )
    return MaterializeResult(
        value=raw,
        metadata={
            "file": raw.file_name,
            "format": raw.format,
            "confidence": raw.confidence,
            "page_count": raw.page_count if raw.page_count is not None else -1,
            "sha256": raw.sha256,
            "characters": len(raw.text),
            "warnings": MetadataValue.json(raw.warnings),
        },
        check_results=[check],
        data_version=DataVersion(raw.sha256),
    )


# Paragraphs a normalize chunk repeats from the one before: at least this share of a chunk's budget, so
# the scene running across the cut is seen whole, with what leads into it, by the later chunk.
NORMALIZE_OVERLAP_SHARE = 0.1
# Paragraphs the two pieces of a chunk share when its answer was cut even at the model's output limit and
# the chunk is split again (down to one paragraph, the floor: a paragraph is never cut).
NORMALIZE_SPLIT_OVERLAP_PARAGRAPHS = 2


def _normalize_prose(
    context: AssetExecutionContext, ai: AIProviderResource, text: str
) -> tuple[str, str, dict[str, Any], ServiceQuality]:
    """Prose -> Fountain by the ``normalize`` task: one call when the prose fits one, else overlapping
    chunks cut at paragraph (page) boundaries, run together, their Fountain joined with the overlap once.
    A chunk (the single one too) whose answer is cut even at the model's limit is split again at its own
    paragraph boundaries; a single paragraph that still does not fit fails the step naming it."""
    limits = ai.planning_limits("normalize", "normalize")
    budget = Budget.of(
        CallLimits(limits.context_window, limits.max_output_tokens), normalize_fixed_cost(estimate_tokens)
    )
    input_budget = max(1, min(budget.input_tokens, int(budget.output_tokens / NORMALIZE_OUTPUT_RATIO)))
    chunks = split_prose(
        text,
        input_budget=input_budget,
        overlap_tokens=int(input_budget * NORMALIZE_OVERLAP_SHARE),
        estimate_tokens=estimate_tokens,
    )
    paragraphs = prose_paragraphs(text)
    whole = len(chunks) <= 1

    def payload_for(part: range) -> dict[str, Any]:
        if whole and part == range(len(paragraphs)):
            return {"text": text}  # one part: the prose as it came (the single call's payload, as ever)
        return {"text": "\n\n".join(paragraphs[part.start : part.stop])}

    call = PartCaller(
        context,
        ai,
        stage="normalize",
        task="normalize",
        payload_for=payload_for,
        max_tokens=limits.max_output_tokens if not whole else None,
        # One call has nothing to keep for a partial retry: only split work goes through the cache. A heal
        # run reads none of it (the cache holds the fallback's answers under an unchanged key).
        cache=(
            False
            if is_heal_run(context.run.tags)
            else True
            if not whole
            else (lambda part: part != range(len(paragraphs)))
        ),
        total_items=len(paragraphs),
    )
    parts = [range(c.start, c.stop) for c in chunks] if not whole else [range(len(paragraphs))]
    run = run_parts(
        parts,
        call,
        concurrency=ai.batch_concurrency,
        split=lambda part: split_with_overlap(part, NORMALIZE_SPLIT_OVERLAP_PARAGRAPHS),
    )
    if run.failed:
        numbers = sorted({n + 1 for o in run.failed for n in o.part})  # pieces may share paragraphs
        raise failure_for(context, "normalize", run, describe_scene_numbers(numbers), "prose paragraphs")
    fountain = join_fountain([o.result.value.fountain for o in run.served if o.result is not None])
    meta = parts_metadata(run, unit="normalize")
    quality = assess_results("normalize", ai.chain_models("normalize"), [o.result for o in run.served])
    if whole and len(run.outcomes) == 1 and run.outcomes[0].result is not None:
        result = run.outcomes[0].result  # one call: the single call's metadata, as before splitting existed
        return result.value.fountain, f"{result.provider}/{result.model}", ai_metadata(result), quality
    return (
        fountain,
        f"{meta['provider']}/{meta['model']}",
        {**meta, "chunk_overlap_paragraphs": [c.overlap for c in chunks]},
        quality,
    )


@asset(
    code_version=code_version("canonical_script"),
    partitions_def=screenplay_partitions,
    group_name=GROUP,
    check_specs=[CANONICAL_SCRIPT_PARSES, CANONICAL_SCRIPT_SERVED],
    retry_policy=AI_RETRY_POLICY,
    pool="provider_calls",
    description="Canonical Fountain text (title page kept) and its parsed elements.",
)
@retry_only_what_can_heal("normalize")
def canonical_script(context: AssetExecutionContext, ai: AIProviderResource, raw_input: RawSource):
    require_usable_upstream(context, "raw_input", bool(raw_input.text.strip()), "its text is blank")
    ai_meta: dict[str, Any] = {}
    normalized_by = "deterministic"
    quality = not_served("normalize")
    text = raw_input.text
    if not _screenplay_shaped(raw_input):
        text, normalized_by, ai_meta, quality = _normalize_prose(context, ai, text)
    script = parse_fountain(text)
    fountain = write_fountain(script)
    script = parse_fountain(fountain)  # element lines now refer to the canonical text
    counts: dict[str, int] = {}
    for element in script.elements:
        counts[element.type.value] = counts.get(element.type.value, 0) + 1
    artifact = CanonicalScript(
        title=script.title or raw_input.file_name,
        title_page=script.title_page,
        fountain=fountain,
        elements=script.elements,
        element_counts=counts,
        source_format=raw_input.format,
        source_file=raw_input.file_name,
        page_count=raw_input.page_count,
        normalized_by=normalized_by,
    )
    check = evaluate_canonical_script(artifact.fountain, artifact.elements)
    if not check.passed:
        # Fail before the IO manager writes: a failing artifact must not replace the last good one.
        tag_failure(context, "permanent", "canonical_script")
        raise Failure(
            description=f"{raw_input.file_name}: {check.description}",
            metadata={"error_class": "permanent", "file": raw_input.file_name, "remediate": "raw_input"},
            allow_retries=False,
        )
    return MaterializeResult(
        value=artifact,
        metadata={
            "title": artifact.title,
            "elements": len(artifact.elements),
            "element_counts": MetadataValue.json(counts),
            "normalized_by": normalized_by,
            "fountain_lines": fountain.count("\n") + 1,
            **ai_meta,
            **service_metadata(quality, ai.mode),
        },
        check_results=[check, evaluate_served_by_preferred(CANONICAL_SCRIPT_SERVED, quality)],
        # From the content, so a parser change that leaves this script's text as it was keeps scenes fresh.
        data_version=DataVersion(content_version(artifact.model_dump_json())),
    )


def _enrich_scenes(
    context: AssetExecutionContext,
    ai: AIProviderResource,
    title: str,
    records: list[SceneRecord],
    df: pd.DataFrame,
) -> tuple[pd.DataFrame, dict[str, Any], ServiceQuality]:
    """Every scene's summary, mood and visual description from ``enrich_scenes``, in batches sized for the
    model the chain calls first; the step fails, naming them, if any scene is left without all three."""
    payload = enrich_scenes_payload(title, records)
    limits = ai.planning_limits("extract_scenes", "enrich_scenes")
    fixed, costs = enrich_scenes_costs(payload, estimate_tokens)
    batches = plan_batches(costs, Budget.of(CallLimits(limits.context_window, limits.max_output_tokens), fixed))
    call = PartCaller(
        context,
        ai,
        stage="extract_scenes",
        task="enrich_scenes",
        payload_for=lambda batch: enrich_scenes_batch(payload, batch),
        max_tokens=limits.max_output_tokens,
        # One call has nothing to keep for a partial retry: only split work goes through the cache (the
        # halves of a single batch that had to be split too); a heal run reads none of it.
        cache=(
            False
            if is_heal_run(context.run.tags)
            else True
            if len(batches) > 1
            else (lambda batch: batch != batches[0])
        ),
        total_items=sum(len(batch) for batch in batches),
    )
    run = run_parts(batches, call, concurrency=ai.batch_concurrency)
    answers: dict[int, dict[str, Any]] = {}
    served_by: dict[int, str] = {}
    for outcome in run.served:
        assert outcome.result is not None
        for scene in outcome.result.value.scenes:
            answers[scene.scene_number] = scene.model_dump()
            served_by[scene.scene_number] = f"{outcome.result.provider}/{outcome.result.model}"
    numbers = [int(n) for n in df["scene_number"]]
    missing = missing_enrichment(numbers, answers)
    if run.failed or missing:
        raise failure_for(context, "extract_scenes", run, describe_scene_numbers(missing), "scenes")
    for name in ("summary", "mood", "visual_description"):
        df[name] = [str(answers[n][name]).strip() for n in numbers]
    df["enriched_by"] = [served_by[n] for n in numbers]
    quality = assess_results("extract_scenes", ai.chain_models("extract_scenes"), [o.result for o in run.served])
    return df, {**parts_metadata(run, unit="enrich"), **service_metadata(quality, ai.mode)}, quality


@asset(
    code_version=code_version("scenes"),
    partitions_def=screenplay_partitions,
    group_name=GROUP,
    check_specs=[SCENES_NOT_EMPTY, SCENES_PLAUSIBLE, SCENES_SERVED],
    retry_policy=AI_RETRY_POLICY,
    pool="provider_calls",
    description="One row per scene: heading, INT/EXT, location, time of day, speakers, size, screen time, "
    "and a model's summary, mood and visual description.",
)
@retry_only_what_can_heal("extract_scenes")
def scenes(context: AssetExecutionContext, ai: AIProviderResource, canonical_script: CanonicalScript):
    require_usable_upstream(
        context,
        "canonical_script",
        bool(canonical_script.fountain.strip()) and bool(canonical_script.elements),
        "it has no Fountain elements",
    )
    script = canonical_script.script()
    records = split_scenes(script, canonical_script.fountain)
    plausible = _require_plausible_split(context, canonical_script, records)
    df = scenes_dataframe(records)
    check = evaluate_scenes(df)
    ai_meta: dict[str, Any] = {}
    quality = not_served("extract_scenes")
    if len(df):
        df, ai_meta, quality = _enrich_scenes(context, ai, canonical_script.title, records, df)
    return MaterializeResult(
        value=df,
        metadata={
            "scene_count": len(df),
            "speaking_characters": len({c for chars in df["characters"] for c in chars}) if len(df) else 0,
            "estimated_minutes": round(float(df["est_screen_seconds"].sum()) / 60.0, 1) if len(df) else 0.0,
            "preview": MetadataValue.md(_preview_markdown(df))
            if len(df)
            else MetadataValue.md("_no scenes_"),
            **ai_meta,
        },
        check_results=[check, plausible, evaluate_served_by_preferred(SCENES_SERVED, quality)],
    )


def _require_plausible_split(
    context: AssetExecutionContext, canonical_script: CanonicalScript, records: list[SceneRecord]
) -> AssetCheckResult:
    """Stop before anything is written when the split cannot be right for the source (2 scenes from
    124 pages): a permanent failure, since reading the same file again gives the same split, and the
    previous materialization of ``scenes`` stays as it was."""
    file_name = canonical_script.source_file or context.partition_key
    assessment = assess_scene_split(
        records,
        source_pages=canonical_script.page_count,
        estimated_pages=estimate_page_count(canonical_script.elements),
        judged=canonical_script.normalized_by == "deterministic",
    )
    check = evaluate_scenes_plausible(assessment, file_name)
    if not check.passed:
        tag_failure(context, "permanent", "scenes")
        raise Failure(
            description=f"{check.description}. The reader did not recover this script's structure; "
            "not retried (the same file reads the same way): check the file or report it with the file attached",
            metadata={"error_class": "permanent", "file": file_name, **check.metadata},
            allow_retries=False,
        )
    return check


@asset(
    code_version=code_version("project_config"),
    partitions_def=screenplay_partitions,
    group_name=GROUP,
    check_specs=[PROJECT_CONFIG_SERVED],
    retry_policy=AI_RETRY_POLICY,
    pool="provider_calls",
    description="Project settings for production: credits, runtime, cast, locations, splits, genre/tone/logline.",
)
@retry_only_what_can_heal("project_config")
def project_config(
    context: AssetExecutionContext,
    ai: AIProviderResource,
    raw_input: RawSource,
    canonical_script: CanonicalScript,
    scenes: pd.DataFrame,
):
    script = canonical_script.script()
    records = split_scenes(script, canonical_script.fountain)
    base = build_project_config(
        script,
        records,
        source_format=raw_input.format,
        page_count=raw_input.page_count,
        fallback_title=PurePath(raw_input.file_name).stem,
    )
    payload = project_insights_payload(base, records, scenes.get("summary", pd.Series(dtype=str)))
    result = run_ai_task(context, ai, stage="project_config", task="project_insights", payload=payload)
    artifact = ProjectConfigArtifact(
        **base.model_dump(),
        genre=result.value.genre,
        tone=result.value.tone,
        logline=result.value.logline,
        insights_by=f"{result.provider}/{result.model}",
    )
    quality = assess_results("project_config", ai.chain_models("project_config"), [result])
    return MaterializeResult(
        value=artifact,
        metadata={
            "title": artifact.title,
            "authors": MetadataValue.json(artifact.authors),
            "title_page_left_out": MetadataValue.json(artifact.title_page_left_out),
            "scene_count": artifact.scene_count,
            "estimated_runtime_minutes": artifact.estimated_runtime_minutes,
            "genre": artifact.genre,
            "logline": artifact.logline,
            **ai_metadata(result),
            **service_metadata(quality, ai.mode),
        },
        check_results=[evaluate_served_by_preferred(PROJECT_CONFIG_SERVED, quality)],
    )
