"""Schedules of the code location; ``schedules`` is what ``definitions.py`` registers.

* ``reliability_report_daily`` - materializes the ``reliability_report`` asset every day at 06:00 UTC.
  It is only defined once the asset exists (``cineforge_assets.assets.reliability``), so this module
  loads whether or not the report has landed; the asset must also be in ``Definitions``' assets.
* ``provider_health_probe`` - every 5 minutes, the ``provider_health`` job (see ``health.py``) logs each
  provider's breaker and probes the open ones whose cooldown has elapsed. It starts RUNNING when real or
  simulated providers are configured and STOPPED in offline mode, where there is nothing to probe.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
)

from cineforge_assets.health import provider_health_job
from cineforge_assets.resource_config import provider_mode_from_env

RELIABILITY_MODULE = "cineforge_assets.assets.reliability"
RELIABILITY_ASSET = AssetKey("reliability_report")
RELIABILITY_SCHEDULE_NAME = "reliability_report_daily"
RELIABILITY_JOB_NAME = "reliability_report_job"
RELIABILITY_CRON = "0 6 * * *"
HEALTH_SCHEDULE_NAME = "provider_health_probe"
HEALTH_CRON = "*/5 * * * *"
TIMEZONE = "UTC"


def find_asset(module_name: str, key: AssetKey) -> AssetsDefinition | None:
    """The asset ``key`` defined in ``module_name``, or None if the module or the asset is not there.

    A module that exists but fails to import raises: a broken report must not silently lose its schedule.
    """
    if importlib.util.find_spec(module_name) is None:
        return None
    module = importlib.import_module(module_name)
    for value in vars(module).values():
        if isinstance(value, AssetsDefinition) and key in value.keys:
            return value
    return None


def reliability_report_schedule(asset: AssetsDefinition | None) -> ScheduleDefinition | None:
    """A daily cron schedule for the (unpartitioned) report; None when the asset is not there yet.

    A partitioned report would need the schedule to pick partitions; say so instead of guessing.
    """
    if asset is None:
        return None
    if asset.partitions_def is not None:
        warnings.warn(
            f"reliability_report is partitioned ({type(asset.partitions_def).__name__}); "
            "schedules.py defines no daily schedule for it",
            stacklevel=2,
        )
        return None
    return ScheduleDefinition(
        name=RELIABILITY_SCHEDULE_NAME,
        job=define_asset_job(RELIABILITY_JOB_NAME, selection=AssetSelection.assets(RELIABILITY_ASSET)),
        cron_schedule=RELIABILITY_CRON,
        execution_timezone=TIMEZONE,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Daily reliability report over the provider telemetry.",
    )


def provider_health_schedule(mode: str) -> ScheduleDefinition:
    return ScheduleDefinition(
        name=HEALTH_SCHEDULE_NAME,
        job=provider_health_job,
        cron_schedule=HEALTH_CRON,
        execution_timezone=TIMEZONE,
        default_status=DefaultScheduleStatus.STOPPED if mode == "offline" else DefaultScheduleStatus.RUNNING,
        description="Logs provider breaker states; probes open breakers whose cooldown has elapsed.",
    )


def build_schedules() -> list[ScheduleDefinition]:
    report = reliability_report_schedule(find_asset(RELIABILITY_MODULE, RELIABILITY_ASSET))
    return [s for s in (report, provider_health_schedule(provider_mode_from_env())) if s is not None]


schedules: list[ScheduleDefinition] = build_schedules()
