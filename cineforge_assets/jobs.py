"""Jobs over the asset graph.

The pipeline job runs in-process: its four steps are light, strictly sequential and I/O-bound
(waiting on providers), so a process per step (the multiprocess default) would add a Python start-up
and Dagster import of ~1-2 s per step for no parallelism. The Celery/Kubernetes profiles swap the
executor by configuration (``CINEFORGE_EXECUTOR``), not by editing this module.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from cineforge_assets.asset_names import INGEST_ASSET_NAMES, PIPELINE_ASSET_NAMES
from cineforge_assets.partitions import screenplay_partitions

INGEST_ASSETS = AssetSelection.assets(*INGEST_ASSET_NAMES)
PIPELINE_ASSETS = AssetSelection.assets(*PIPELINE_ASSET_NAMES)

screenplay_pipeline_job = define_asset_job(
    name="screenplay_pipeline",
    selection=PIPELINE_ASSETS,
    partitions_def=screenplay_partitions,
    description="raw_input -> canonical_script -> scenes -> project_config (+ veo3_broll) for one screenplay.",
)
