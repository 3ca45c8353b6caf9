"""Asset checks. Blocking ones: a bad artifact stops the run at the asset that made it (the WARN check
``served_by_preferred`` at the end of this module is the exception: it never blocks).

The checks run inside the asset's own step (``check_specs``), so a failure blocks every downstream
step of the same run and the message names the asset to re-materialize.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
    PreviewWarning,
)

from cineforge_assets.degraded import ServiceQuality, degraded_from_metadata
from cineforge_assets.partitions import screenplay_partitions
from cineforge_assets.screenplay.elements import Element
from cineforge_assets.screenplay.formats.reader import RawSource
from cineforge_assets.screenplay.plausibility import SplitAssessment

RAW_INPUT_HAS_TEXT = AssetCheckSpec(
    name="has_text",
    asset=AssetKey("raw_input"),
    blocking=True,
    description="The source yielded non-blank text.",
)
CANONICAL_SCRIPT_PARSES = AssetCheckSpec(
    name="parses",
    asset=AssetKey("canonical_script"),
    blocking=True,
    description="Canonical Fountain is non-empty and parses into screenplay elements.",
)
SCENES_NOT_EMPTY = AssetCheckSpec(
    name="has_scenes", asset=AssetKey("scenes"), blocking=True, description="At least one scene was found."
)
SCENES_PLAUSIBLE = AssetCheckSpec(
    name="plausible_for_source",
    asset=AssetKey("scenes"),
    blocking=True,
    description="Scene count, speaking characters and the biggest scene are plausible for the source's "
    "page count (see cineforge_assets.screenplay.plausibility for the thresholds).",
)


def _result(spec: AssetCheckSpec, passed: bool, description: str, **metadata: Any) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata=dict(metadata),
    )


def evaluate_raw_input(raw: RawSource) -> AssetCheckResult:
    blank = not raw.text.strip()
    return _result(
        RAW_INPUT_HAS_TEXT,
        not blank,
        (
            f"{raw.file_name} ({raw.format}) produced no text: fix the file and re-materialize raw_input"
            if blank
            else f"{len(raw.text)} characters read from {raw.file_name}"
        ),
        characters=len(raw.text),
        remediate="raw_input" if blank else "",
    )


def evaluate_canonical_script(fountain: str, elements: Sequence[Element]) -> AssetCheckResult:
    ok = bool(fountain.strip()) and len(elements) > 0
    return _result(
        CANONICAL_SCRIPT_PARSES,
        ok,
        f"{len(elements)} elements parsed"
        if ok
        else "canonical Fountain is empty or has no elements: re-materialize raw_input, then canonical_script",
        elements=len(elements),
        remediate="" if ok else "raw_input",
    )


def evaluate_scenes(df: pd.DataFrame) -> AssetCheckResult:
    ok = len(df) > 0
    return _result(
        SCENES_NOT_EMPTY,
        ok,
        f"{len(df)} scenes"
        if ok
        else "no scene headings found (INT./EXT. lines): check the source, re-materialize canonical_script",
        scene_count=len(df),
        remediate="" if ok else "canonical_script",
    )


def evaluate_scenes_plausible(assessment: SplitAssessment, file_name: str) -> AssetCheckResult:
    """The plausibility verdict as a check result; a failure names the file and every symptom."""
    ok = assessment.plausible
    pages = f"{assessment.pages} pages" + ("" if assessment.pages_from_source else " (estimated)")
    return _result(
        SCENES_PLAUSIBLE,
        ok,
        f"{assessment.scene_count} scenes, {assessment.speaking_characters} speaking characters from {pages}"
        if ok
        else f"{file_name}: " + "; ".join(assessment.symptoms),
        file=file_name,
        pages=assessment.pages,
        pages_from_source=assessment.pages_from_source,
        scene_count=assessment.scene_count,
        speaking_characters=assessment.speaking_characters,
        biggest_scene_share=assessment.biggest_scene_share,
        symptoms=MetadataValue.json(list(assessment.symptoms)),
    )


# ------------------------------------------------------------------------ non-blocking: degraded service
# Who served an AI-backed asset is news, not a defect of the artifact: the check warns (severity WARN,
# never blocking) while the latest materialization of a partition was served below the stage's preferred
# model(s), and passes once a run (the heal sensor's, see ``heal.py``) is served by them again. Partitioned,
# so each screenplay shows its own state.

SERVED_BY_PREFERRED = "served_by_preferred"


def served_by_preferred_spec(asset: str, description: str = "") -> AssetCheckSpec:
    # A partitioned check spec is a Dagster "preview": without it the UI would show one state per asset,
    # whichever screenplay ran last. The warning is silenced here, where the choice is made, not globally.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            name=SERVED_BY_PREFERRED,
            asset=AssetKey(asset),
            blocking=False,
            partitions_def=screenplay_partitions,
            description=description
            or "Warns while the latest materialization was served by the offline engine or a fallback "
            "below the stage's preferred model(s) (cineforge_assets/degraded.py); the heal sensor re-runs it.",
        )


CANONICAL_SCRIPT_SERVED = served_by_preferred_spec("canonical_script")
SCENES_SERVED = served_by_preferred_spec("scenes")
PROJECT_CONFIG_SERVED = served_by_preferred_spec("project_config")


def evaluate_served_by_preferred(spec: AssetCheckSpec, quality: ServiceQuality) -> AssetCheckResult:
    """Passes unless ``quality`` is degraded; then a WARN naming who served and whether a heal will follow."""
    return AssetCheckResult(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=not quality.degraded,
        severity=AssetCheckSeverity.WARN,
        description=quality.describe(),
        metadata={
            "degraded": quality.degraded,
            "cause": quality.cause,
            "healable": quality.healable,
            "preferred_models": ", ".join(quality.preferred),
            "served_by": MetadataValue.json(dict(sorted(quality.served.items()))),
            "offline_parts": quality.offline_parts,
        },
    )


VEO3_BROLL_SERVED = served_by_preferred_spec(
    "veo3_broll",
    "Warns while the clips were drawn from scenes or a project_config served below their preferred models "
    "(placeholder visual descriptions); the heal sensor re-runs it as their downstream.",
)


def degraded_upstream(instance: DagsterInstance, partition: str, assets: Sequence[str]) -> dict[str, str]:
    """asset -> its ``service`` line, for each of ``assets`` whose latest materialization of ``partition``
    (the one a step of the same run just read) was degraded."""
    found: dict[str, str] = {}
    for asset in assets:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
        ).records
        event = records[0].asset_materialization if records else None
        if event is None:
            continue
        degraded = degraded_from_metadata(event.metadata)[0]
        if degraded:
            service = event.metadata.get("service")
            found[asset] = str(getattr(service, "value", service) or "degraded")
    return found


def evaluate_broll_inputs(degraded_inputs: Mapping[str, str], clips_requested: bool) -> AssetCheckResult:
    """B-roll has no fallback chain of its own; its clips are as good as the descriptions they were drawn from."""
    warn = clips_requested and bool(degraded_inputs)
    if not clips_requested:
        description = "no clip was requested (Veo not configured or no scene selected)"
    elif warn:
        description = "clips drawn from degraded inputs: " + "; ".join(degraded_inputs.values())
    else:
        description = "clips drawn from inputs served by their preferred models"
    return AssetCheckResult(
        asset_key=VEO3_BROLL_SERVED.asset_key,
        check_name=VEO3_BROLL_SERVED.name,
        passed=not warn,
        severity=AssetCheckSeverity.WARN,
        description=description,
        metadata={"degraded_inputs": MetadataValue.json(sorted(degraded_inputs)), "clips_requested": clips_requested},
    )
