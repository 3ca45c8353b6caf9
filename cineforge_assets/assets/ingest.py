"""The four ingest assets: ``raw_input`` -> ``canonical_script`` -> ``scenes`` -> ``project_config``.

Each asset is a thin shell: read upstream, call a pure domain function (``cineforge_assets.screenplay``;
the artifacts' models are ``screenplay.artifacts``) and, where a model adds value, the provider resource
(``cineforge_assets.provider_calls``); report what happened as ``MaterializeResult`` metadata. What a
failure does to the step is ``cineforge_assets.step_failures``.
"""

from pathlib import PurePath
from typing import Any

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

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
from cineforge_assets.degraded import ServiceQuality, assess_results, not_served, service_metadata
from cineforge_assets.partitions import screenplay_partitions
from cineforge_assets.provider_calls import (
    PartCaller,
    cached_parts,
    failure_for,
    parts_metadata,
    run_ai_task,
    run_parts,
)
from cineforge_assets.run_events import ai_metadata
from cineforge_assets.screenplay.artifacts import (
    CanonicalScript,
    ProjectConfigArtifact,
    canonicalize,
    is_screenplay_shaped,
    missing_script_body,
)
from cineforge_assets.screenplay.batching import (
    Budget,
    CallLimits,
    describe_scene_numbers,
    join_fountain,
    missing_enrichment,
    plan_batches,
    prose_paragraphs,
    split_with_overlap,
)
from cineforge_assets.screenplay.formats.errors import SourceError
from cineforge_assets.screenplay.formats.isolated import read_source_isolated
from cineforge_assets.screenplay.formats.reader import RawSource
from cineforge_assets.screenplay.payloads import (
    NORMALIZE_SPLIT_OVERLAP_PARAGRAPHS,
    enrich_scenes_batch,
    enrich_scenes_costs,
    enrich_scenes_payload,
    normalize_chunks,
    project_insights_payload,
)
from cineforge_assets.screenplay.plausibility import assess_scene_split
from cineforge_assets.screenplay.project import build_project_config
from cineforge_assets.screenplay.scenes import (
    SceneRecord,
    estimate_page_count,
    scene_records,
    scenes_dataframe,
    split_scenes,
    with_enrichment,
)
from cineforge_assets.sources import SourceMismatchError, tagged_source, verify_source_hash
from cineforge_assets.step_failures import (
    AI_RETRY_POLICY,
    permanent_failure,
    require_usable_upstream,
    retry_only_what_can_heal,
)
from cineforge_assets.versioning import code_version, content_version
from resources.ai import AIProviderResource
from resources.providers.limits import estimate_tokens

GROUP = "ingest"


def _preview_markdown(df: pd.DataFrame, limit: int = 5) -> str:
    rows = ["| # | heading | characters | words |", "|---|---|---|---|"]
    for rec in df.head(limit).itertuples():
        chars = ", ".join(list(rec.characters)[:4])
        heading = str(rec.heading).replace("|", "/")
        rows.append(f"| {rec.scene_number} | {heading} | {chars} | {rec.word_count} |")
    return "\n".join(rows)


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
        raise permanent_failure(context, "raw_input", str(exc), {"file": str(path or partition)}) from exc
    except SourceError as exc:
        # A bad file is a permanent error: retrying reads the same bytes.
        raise permanent_failure(
            context, "raw_input", str(exc), {"error_type": type(exc).__name__, "file": str(path)}
        ) from exc
    check = evaluate_raw_input(raw)
    if not check.passed:
        raise permanent_failure(context, "raw_input", check.description or "raw_input is blank", {"file": str(path)})
    missing_body = missing_script_body(raw)
    if missing_body:
        # Raised before anything is written: the partition keeps its last good raw_input and
        # canonical_script instead of an artifact with no scenes that fails its check downstream.
        raise permanent_failure(context, "raw_input", missing_body, {"file": raw.file_name})
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


def _normalize_prose(
    context: AssetExecutionContext, ai: AIProviderResource, text: str
) -> tuple[str, str, dict[str, Any], ServiceQuality]:
    """Prose -> Fountain by the ``normalize`` task: one call when the prose fits one, else overlapping
    chunks cut at paragraph (page) boundaries, run together, their Fountain joined with the overlap once.
    A chunk (the single one too) whose answer is cut even at the model's limit is split again at its own
    paragraph boundaries; a single paragraph that still does not fit fails the step naming it."""
    limits = ai.planning_limits("normalize", "normalize")
    chunks = normalize_chunks(text, CallLimits(limits.context_window, limits.max_output_tokens), estimate_tokens)
    paragraphs = prose_paragraphs(text)
    whole = len(chunks) <= 1

    parts = [range(c.start, c.stop) for c in chunks] if not whole else [range(len(paragraphs))]

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
        cache=cached_parts(context, parts),
        total_items=len(paragraphs),
    )
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
    if not is_screenplay_shaped(raw_input):
        text, normalized_by, ai_meta, quality = _normalize_prose(context, ai, text)
    artifact = canonicalize(text, raw_input, normalized_by)
    check = evaluate_canonical_script(artifact.fountain, artifact.elements)
    if not check.passed:
        # Fail before the IO manager writes: a failing artifact must not replace the last good one.
        raise permanent_failure(
            context,
            "canonical_script",
            f"{raw_input.file_name}: {check.description}",
            {"file": raw_input.file_name, "remediate": "raw_input"},
        )
    return MaterializeResult(
        value=artifact,
        metadata={
            "title": artifact.title,
            "elements": len(artifact.elements),
            "element_counts": MetadataValue.json(artifact.element_counts),
            "normalized_by": normalized_by,
            "fountain_lines": artifact.fountain.count("\n") + 1,
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
        cache=cached_parts(context, batches),
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
    missing = missing_enrichment([int(n) for n in df["scene_number"]], answers)
    if run.failed or missing:
        raise failure_for(context, "extract_scenes", run, describe_scene_numbers(missing), "scenes")
    df = with_enrichment(df, answers, served_by)
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
        raise permanent_failure(
            context,
            "scenes",
            f"{check.description}. The reader did not recover this script's structure; "
            "not retried (the same file reads the same way): check the file or report it with the file attached",
            {"file": file_name, **check.metadata},
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
    records = scene_records(scenes)  # the scenes as materialized, never a second split that could differ
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
