"""Blocking asset checks: a bad artifact stops the run at the asset that made it.

The checks run inside the asset's own step (``check_specs``), so a failure blocks every downstream
step of the same run and the message names the asset to re-materialize.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey

from cineforge_assets.screenplay.elements import Element
from cineforge_assets.screenplay.formats.reader import RawSource

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
