"""Schedules of the code location; ``schedules`` is what ``definitions.py`` registers.

* ``reliability_report_daily`` - materializes the ``reliability_report`` asset
  (``cineforge_assets.assets.reliability``) every day at 06:00 UTC.
* ``provider_health_probe`` - every 5 minutes, the ``provider_health`` job (see ``health.py``) logs each
  provider's breaker and probes the open ones whose cooldown has elapsed. It starts RUNNING when real or
  simulated providers are configured and STOPPED in offline mode, where there is nothing to probe.
"""

from __future__ import annotations

import warnings

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
)

from cineforge_assets.assets.reliability import reliability_report
from cineforge_assets.health import provider_health_job
from cineforge_assets.resource_config import provider_mode_from_env

RELIABILITY_ASSET = AssetKey("reliability_report")
RELIABILITY_SCHEDULE_NAME = "reliability_report_daily"
RELIABILITY_JOB_NAME = "reliability_report_job"
RELIABILITY_CRON = "0 6 * * *"
HEALTH_SCHEDULE_NAME = "provider_health_probe"
HEALTH_CRON = "*/5 * * * *"
TIMEZONE = "UTC"


def reliability_report_schedule(asset: AssetsDefinition) -> ScheduleDefinition | None:
    """A daily cron schedule for the (unpartitioned) report.

    A partitioned report would need the schedule to pick partitions; say so instead of guessing.
    """
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
    report = reliability_report_schedule(reliability_report)
    return [s for s in (report, provider_health_schedule(provider_mode_from_env())) if s is not None]


schedules: list[ScheduleDefinition] = build_schedules()
