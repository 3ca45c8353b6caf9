"""Every run tag key the code location writes or reads, in one place.

Run tags are the only state a run carries from the step that sets it to whoever reads it later (the
run-retry sensor, the heal sensor, ``cineforge status`` / ``resume``, the reliability report), so a key
spelled in two places can drift apart without a test noticing. Here each key is written once.

Dagster's own keys are listed too: Dagster writes and reads them, but exports no public name for them
(its constants live in the private ``dagster._core.storage.tags``).
"""

from __future__ import annotations

from typing import Final

# ---- Dagster's own
PARTITION_TAG: Final = "dagster/partition"
PARENT_RUN_ID_TAG: Final = "dagster/parent_run_id"
# Dagster's run-retry daemon must not launch a second copy of a run that `cineforge resume` resumes.
MAX_RETRIES_TAG: Final = "dagster/max_retries"

# ---- what the run was asked to do, and by whom
SOURCE_TAG: Final = "cineforge/source"  # the file's name as dropped or given to `cineforge ingest`
SOURCE_PATH_TAG: Final = "cineforge/source_path"  # the stored version raw_input reads (data-root relative)
SOURCE_SHA256_TAG: Final = "cineforge/sha256"  # ... and the hash raw_input checks it against
SOURCE_FORMAT_TAG: Final = "cineforge/format"
PROVIDER_TAG: Final = "cineforge/provider"  # `cineforge ingest --provider`
TRIGGER_TAG: Final = "cineforge/trigger"  # "inbox" or the sensor that requested the run
CLI_INVOCATION_TAG: Final = "cineforge/cli_invocation"  # the `cineforge` process that follows the run
JOB_KIND_TAG: Final = "cineforge/kind"
HEAL_TAG: Final = "cineforge/heal"  # "true" on a heal run
HEALS_TAG: Final = "cineforge/heals"  # the degraded materializations (asset@storage id) a heal run replaces
PROBE_FOR_TAG: Final = "cineforge/probe_for"  # the provider a heal sensor's health probe is for

# ---- how a run failed (written by the step, read by the run-retry sensor and `cineforge status`)
FAILURE_CLASS_TAG: Final = "cineforge/failure_class"  # "transient" | "permanent"
FAILED_STAGE_TAG: Final = "cineforge/failed_stage"

# ---- re-execution lineage
RESUMED_FROM_TAG: Final = "cineforge/resumed_from"  # `cineforge resume`
STEPPED_BACK_TO_TAG: Final = "cineforge/stepped_back_to"  # resume re-materialized from this asset on
AUTO_RETRY_NUMBER_TAG: Final = "cineforge/auto_retry_number"  # the run-retry sensor
RETRY_OF_TAG: Final = "cineforge/retry_of"
RETRY_ROOT_TAG: Final = "cineforge/retry_root"
# A run that re-executes another, by whichever way it was started.
RESUME_TAGS: Final = (RESUMED_FROM_TAG, RETRY_OF_TAG, PARENT_RUN_ID_TAG)

# ---- spend so far (the ledger's figures; see ``run_events.tag_spend``)
SPEND_TAG: Final = "cineforge/cost_usd"
PREMIUM_TAG: Final = "cineforge/fallback_premium_usd"
STAGE_COST_TAG: Final = "cineforge/cost_usd.{stage}"
STAGE_SERVED_TAG: Final = "cineforge/served.{stage}"

# ---- the process running the run (how a crashed run is told from a live one)
RUN_HOST_TAG: Final = "cineforge/host"
RUN_PID_TAG: Final = "cineforge/pid"
RUN_PID_START_TAG: Final = "cineforge/pid_start"
