"""The pipeline's asset names, without Dagster: the CLI needs them before (or without) loading the graph."""

from __future__ import annotations

INGEST_ASSET_NAMES = ("raw_input", "canonical_script", "scenes", "project_config")
BROLL_ASSET_NAME = "veo3_broll"
# B-roll is part of "the pipeline" a user runs; it never fails a run (the gate degrades to no clips).
PIPELINE_ASSET_NAMES = (*INGEST_ASSET_NAMES, BROLL_ASSET_NAME)
