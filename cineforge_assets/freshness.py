"""What an ingest of one screenplay must materialize, read from the Dagster instance (the thin shell over
``cineforge_assets.versioning.plan_ingest``)."""

from __future__ import annotations

from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from cineforge_assets.sources import file_sha256, source_for
from cineforge_assets.versioning import IngestPlan, RecordedMaterialization, plan_ingest

_CODE_VERSION_TAG = "dagster/code_version"
_DATA_VERSION_TAG = "dagster/data_version"
_INPUT_EVENT_POINTER_PREFIX = "dagster/input_event_pointer/"


def recorded_materialization(instance: DagsterInstance, asset: str, partition: str) -> RecordedMaterialization | None:
    """The version tags of ``asset``'s latest materialization for ``partition`` (None: never materialized)."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    event = records[0].event_log_entry.dagster_event
    materialization = event.event_specific_data.materialization if event is not None else None  # type: ignore[union-attr]
    tags: dict[str, str] = dict(getattr(materialization, "tags", None) or {})
    return RecordedMaterialization(
        code_version=tags.get(_CODE_VERSION_TAG),
        data_version=tags.get(_DATA_VERSION_TAG),
        storage_id=records[0].storage_id,
        inputs_read={
            key.removeprefix(_INPUT_EVENT_POINTER_PREFIX): int(value)
            for key, value in tags.items()
            if key.startswith(_INPUT_EVENT_POINTER_PREFIX) and value.isdigit()
        },
    )


def ingest_plan(instance: DagsterInstance, job: Any, partition: str, assets: tuple[str, ...]) -> IngestPlan:
    """Which of ``assets`` (the job's, in graph order) are missing or stale for ``partition``'s file."""
    graph = job.asset_layer.asset_graph
    upstreams: dict[str, list[str]] = {}
    code_versions: dict[str, str] = {}
    for name in assets:
        node = graph.get(AssetKey(name))
        upstreams[name] = [key.to_user_string() for key in node.parent_keys]
        code_versions[name] = str(node.code_version)
    return plan_ingest(
        assets,
        upstreams,
        code_versions,
        {name: recorded_materialization(instance, name, partition) for name in assets},
        source_data_version=file_sha256(source_for(partition)),
    )
