"""The one ``Definitions`` of the CineForge code location."""

from __future__ import annotations

from dagster import Definitions, load_assets_from_package_module

from cineforge_assets import assets
from cineforge_assets.executors import executor_from_env
from cineforge_assets.jobs import screenplay_pipeline_job
from cineforge_assets.resource_config import build_resources
from cineforge_assets.schedules import schedules
from cineforge_assets.sensors import sensors

defs = Definitions(
    assets=load_assets_from_package_module(assets),
    jobs=[screenplay_pipeline_job],
    schedules=schedules,
    sensors=sensors,
    resources=build_resources(),
    executor=executor_from_env(),
)


def screenplay_pipeline_job_def():  # noqa: ANN201 - reconstructable target for re-execution
    """Module-level target for ``dagster.reconstructable`` (``cineforge resume`` re-executes through it)."""
    return defs.resolve_job_def("screenplay_pipeline")
