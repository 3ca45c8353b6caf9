"""What the code location defines, as plain data, and the checked-in snapshot of it.

The snapshot makes every change to the graph (an asset, a check, a job, a schedule, a sensor, a
resource added, renamed or rewired) a visible diff in review. It records only what the code decides,
not what the environment tunes (schedule/sensor default status and intervals, provider mode, keys),
so the same checkout gives the same snapshot on every machine.

When a change to the graph is intended, rewrite the snapshot with one command and commit it::

    .venv/bin/python -m tests.cineforge_assets.definitions_snapshot
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dagster import Definitions

SNAPSHOT_PATH = Path(__file__).with_name("definitions_snapshot.json")
UPDATE_COMMAND = ".venv/bin/python -m tests.cineforge_assets.definitions_snapshot"

# Dagster's implicit job over every asset: it exists in any code location and says nothing of ours.
IMPLICIT_ASSET_JOB_PREFIX = "__ASSET_JOB"


def describe_definitions(defs: Definitions) -> dict[str, Any]:
    """The graph ``defs`` builds, as sorted JSON-ready data (names and edges, no environment values)."""
    repository = defs.get_repository_def()
    asset_graph = repository.asset_graph
    assets = {}
    for key in asset_graph.get_all_asset_keys():
        node = asset_graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
        }
    checks = sorted(f"{check.asset_key.to_user_string()}:{check.name}" for check in asset_graph.asset_check_keys)
    jobs = {
        job.name: sorted(job.graph.node_names())
        for job in repository.get_all_jobs()
        if not job.name.startswith(IMPLICIT_ASSET_JOB_PREFIX)
    }
    schedules = {
        schedule.name: {"cron": schedule.cron_schedule, "job": schedule.job_name}
        for schedule in repository.schedule_defs
    }
    sensors = {}
    for sensor in repository.sensor_defs:
        sensors[sensor.name] = {
            "kind": type(sensor).__name__,
            "targets": sorted(target.job_name for target in sensor.targets) if sensor.has_jobs else [],
        }
    resources = {key: type(value).__name__ for key, value in (defs.resources or {}).items()}
    return {
        "assets": dict(sorted(assets.items())),
        "asset_checks": checks,
        "jobs": dict(sorted(jobs.items())),
        "schedules": dict(sorted(schedules.items())),
        "sensors": dict(sorted(sensors.items())),
        "resources": dict(sorted(resources.items())),
    }


def render(description: dict[str, Any]) -> str:
    """One value per line, so a diff names exactly what changed."""
    return json.dumps(description, indent=2, sort_keys=True) + "\n"


def main() -> None:
    from cineforge_assets.definitions import defs

    SNAPSHOT_PATH.write_text(render(describe_definitions(defs)), encoding="utf-8")
    print(f"wrote {SNAPSHOT_PATH}")


if __name__ == "__main__":
    main()
