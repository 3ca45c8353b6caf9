"""``python -m tests.deploy.reexecute RUN_ID``: re-execute a failed run from failure, on the same executor.

The orchestrator must be a fresh process: ``cineforge_assets.definitions`` picks its executor from
``CINEFORGE_EXECUTOR`` at import time, so a process that imported it earlier with another executor
would run the steps in-process instead of on the Celery workers. The re-executed run keeps the parent's
run config (executor + resources) and its partition. Prints one JSON line: ``{"run_id", "success"}``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

PARTITION_TAG = "dagster/partition"


def main(argv: Sequence[str]) -> int:
    from dagster import DagsterInstance, ReexecutionOptions, execute_job, reconstructable

    from cineforge_assets.definitions import screenplay_pipeline_job_def

    (run_id,) = argv
    with DagsterInstance.get() as instance:
        parent = instance.get_run_by_id(run_id)
        if parent is None:
            print(json.dumps({"run_id": None, "success": False, "error": f"no run {run_id}"}))
            return 2
        # execute_job does not carry the parent's tags over: without the partition tag the re-executed
        # steps would run unpartitioned.
        tags = {PARTITION_TAG: parent.tags[PARTITION_TAG]} if PARTITION_TAG in parent.tags else {}
        with execute_job(
            reconstructable(screenplay_pipeline_job_def),
            instance=instance,
            run_config=dict(parent.run_config),
            tags={**tags, "cineforge/resumed_from": run_id},
            reexecution_options=ReexecutionOptions.from_failure(run_id, instance),
            raise_on_error=False,
        ) as result:
            print(json.dumps({"run_id": result.run_id, "success": result.success}))
            return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
