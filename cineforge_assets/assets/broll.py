"""``veo3_broll``: a few seconds of Veo B-roll per chosen scene, never at the pipeline's expense.

The asset picks scenes (config: ``all`` | ``longest`` N (default 3) | ``list`` of scene numbers), writes
one job per scene to ``$CINEFORGE_DATA/artifacts/veo3_broll/<partition>/jobs.json``, submits them through
``Veo3Resource`` and hands them to the await gate (``cineforge_assets.broll.gate``), which polls them,
writes ``scene-<n>.mp4`` next to ``jobs.json`` and retries only what can succeed, once. Whatever the
gate's outcome, the asset materializes: ``broll_available`` says whether any clip exists and
``reasons`` why not all did. The gate's ``veo3.gate.retried`` event lands in the run's event log as an
``AssetObservation``.

Under a spending cap (the AI resource's per-run / daily budget) only the clips that fit are submitted
(``cineforge_assets.broll.budget``); the rest fail as ``over_budget`` and the run's spend tags include the
clips' cost.

Clips of earlier runs are overwritten only when a scene succeeds again; ``jobs.json`` (rewritten every
run) is the authority on which clips belong to the latest materialization.
"""

import time
from typing import Any, Literal

import pandas as pd
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from cineforge_assets.broll.budget import BROLL_STAGE, VEO_PROVIDER, clip_price, reserve_clips, settle_clips
from cineforge_assets.broll.gate import GateResult, run_veo3_await_gate, submit_pending_jobs
from cineforge_assets.broll.jobs import BrollJob, BrollJobsFile, save_jobs, utc_now
from cineforge_assets.broll.scenes import DEFAULT_LONGEST_COUNT, scene_prompts, select_scenes
from cineforge_assets.checks import VEO3_BROLL_SERVED, degraded_upstream, evaluate_broll_inputs
from cineforge_assets.partitions import screenplay_partitions
from cineforge_assets.paths import artifacts_dir
from cineforge_assets.run_events import RunEventLog, tag_spend
from cineforge_assets.screenplay.artifacts import ProjectConfigArtifact
from cineforge_assets.versioning import code_version
from resources.ai import AIProviderResource
from resources.providers.prices import price_table
from resources.veo3 import Veo3Resource

GROUP = "broll"
ASSET_NAME = "veo3_broll"


class Veo3BrollConfig(Config):
    mode: Literal["all", "longest", "list"] = Field(
        default="longest", description="all scenes, the longest `count`, or the `scene_numbers` listed"
    )
    count: int = Field(default=DEFAULT_LONGEST_COUNT, ge=0, description="how many scenes in `longest` mode")
    scene_numbers: list[int] = Field(default_factory=list, description="scene numbers in `list` mode")


def _without_veo(jobs_file: BrollJobsFile, reason: str) -> GateResult:
    """No call is made (nothing selected, or Veo not configured): every job fails as ``not_configured``."""
    now = utc_now()
    for job in jobs_file.jobs:
        job.status = "failed"
        job.error_message = f"not_configured: {reason}"
        job.updated_at = job.finished_at = now
    return GateResult(
        outcome="completed",
        retried=False,
        broll_available=False,
        succeeded_scenes=[],
        failed={job.scene: job.error_message or "" for job in jobs_file.jobs},
        clips=[],
        reasons=[reason, "no B-roll: the pipeline proceeds without it"],
        polls=0,
        elapsed_s=0.0,
    )


def _jobs_table(jobs: list[BrollJob]) -> str:
    rows = ["| scene | status | attempts | error | clip |", "|---|---|---|---|---|"]
    for job in jobs:
        error = (job.error_message or "").replace("|", "/").replace("\n", " ")[:160]
        clip = job.video_path.rsplit("/", 1)[-1] if job.video_path else ""
        rows.append(f"| {job.scene} | {job.status} | {job.attempts} | {error} | {clip} |")
    return "\n".join(rows)


@asset(
    code_version=code_version(ASSET_NAME),
    partitions_def=screenplay_partitions,
    group_name=GROUP,
    pool="veo_calls",  # Veo has its own quotas, separate from the text providers
    check_specs=[VEO3_BROLL_SERVED],
    description="Veo 3 B-roll clips (MP4) for chosen scenes, from each scene's visual description; "
    "materializes without clips when Veo fails, with the reasons in metadata.",
)
def veo3_broll(
    context: AssetExecutionContext,
    config: Veo3BrollConfig,
    veo3: Veo3Resource,
    ai: AIProviderResource,
    scenes: pd.DataFrame,
    project_config: ProjectConfigArtifact,
) -> MaterializeResult:
    partition = context.partition_key
    jobs_path = artifacts_dir() / ASSET_NAME / partition / "jobs.json"
    choice = select_scenes(scenes, config.mode, count=config.count, scene_numbers=config.scene_numbers)
    prompts = scene_prompts(scenes, choice.scenes, genre=project_config.genre, tone=project_config.tone)
    jobs_file = BrollJobsFile(
        partition=partition,
        model=veo3.model,
        jobs=[BrollJob(scene=scene, prompt=prompt) for scene, prompt in prompts.items()],
    )
    save_jobs(jobs_path, jobs_file)

    reason = veo3.unavailable_reason() or ("" if jobs_file.jobs else "no scenes selected")
    clips_cost = 0.0
    if reason:
        result = _without_veo(jobs_file, reason)
        save_jobs(jobs_path, jobs_file)
    else:
        price = clip_price(
            veo3.model, billed=veo3.mode != "offline", table=price_table(ai.prices_file or None)
        )
        ledger = ai.ledger(context.run_id)
        try:
            reservations = reserve_clips(jobs_file.jobs, ledger, price)
            save_jobs(jobs_path, jobs_file)
            try:
                with veo3.open_client() as client:
                    submit_pending_jobs(jobs_path, client)
                    result = run_veo3_await_gate(
                        jobs_path,
                        client,
                        timeout_s=veo3.gate_timeout_seconds,
                        poll_interval_s=veo3.effective_poll_interval(),
                        clock=time.monotonic,
                        sleep=time.sleep,
                        event_bus=RunEventLog(context),
                    )
            finally:
                settled = BrollJobsFile.model_validate_json(jobs_path.read_bytes()).jobs
                clips_cost = settle_clips(settled, reservations, ledger, price)
        finally:
            ledger.store.close()
        tag_spend(context, ai, BROLL_STAGE, f"{VEO_PROVIDER}/{veo3.model}")
    for line in result.reasons:
        (context.log.info if result.broll_available else context.log.warning)(f"veo3_broll: {line}")

    final_jobs = BrollJobsFile.model_validate_json(jobs_path.read_bytes()).jobs
    metadata: dict[str, Any] = {
        "broll_available": result.broll_available,
        "clip_count": len(result.clips),
        "scenes_selected": MetadataValue.json(choice.scenes),
        "selection_mode": config.mode,
        "gate_outcome": result.outcome,
        "retried": result.retried,
        "reasons": MetadataValue.json(result.reasons),
        "clips": MetadataValue.json(result.clips),
        "failed": MetadataValue.json({str(scene): message for scene, message in result.failed.items()}),
        "jobs_path": MetadataValue.path(str(jobs_path)),
        "jobs": MetadataValue.md(_jobs_table(final_jobs)),
        "model": veo3.model,
        "veo_mode": veo3.mode,
        "polls": result.polls,
        "cost_usd": round(clips_cost, 6),
        "gate_elapsed_s": result.elapsed_s,
    }
    if choice.missing:
        metadata["missing_scenes"] = MetadataValue.json(choice.missing)
    inputs = degraded_upstream(context.instance, partition, ("scenes", "project_config"))
    return MaterializeResult(metadata=metadata, check_results=[evaluate_broll_inputs(inputs, not reason)])
