"""The B-roll job file (``jobs.json``): one entry per Veo job, the single source of truth of a partition.

Every state change is written atomically, so an operator (or a later gate) reading the file mid-run sees
a consistent picture: which scene, which prompt, which operation, which clip, and why a job failed.

``error_message`` is ``"<kind>: <detail>"``; ``kind`` is one of the failure kinds the await gate
classifies (``cineforge_assets.broll.gate``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from resources.atomic_files import atomic_write_bytes

JobStatus = Literal["pending", "running", "succeeded", "failed"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed"})


def utc_now() -> datetime:
    return datetime.now(UTC)


def error_kind(message: str | None) -> str:
    """``"rate_limited"`` from ``"rate_limited: HTTP 429 ..."``; ``""`` for no message."""
    if not message:
        return ""
    kind, sep, _ = message.partition(":")
    return kind.strip() if sep else message.strip()


class BrollJob(BaseModel):
    scene: int
    prompt: str
    status: JobStatus = "pending"
    error_message: str | None = None
    operation_name: str | None = None
    video_uri: str | None = None
    video_path: str | None = None
    attempts: int = Field(default=0, description="submissions made for this job")
    previous_errors: list[str] = Field(default_factory=list, description="errors of earlier attempts")
    created_at: datetime = Field(default_factory=utc_now)
    submitted_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utc_now)
    finished_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def error_kind(self) -> str:
        return error_kind(self.error_message)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class BrollJobsFile(BaseModel):
    partition: str = ""
    model: str = ""
    jobs: list[BrollJob] = Field(default_factory=list)


def jobs_file_path(artifacts_root: Path, asset_name: str, partition: str) -> Path:
    """Where a partition's ``jobs.json`` lives: B-roll keeps a folder per partition, not one artifact file."""
    return artifacts_root / asset_name / partition / "jobs.json"


def clip_path(jobs_path: Path, scene: int) -> Path:
    """Where the clip of ``scene`` lives: next to ``jobs.json``."""
    return jobs_path.parent / f"scene-{scene}.mp4"


def load_jobs(jobs_path: Path) -> BrollJobsFile:
    return BrollJobsFile.model_validate_json(Path(jobs_path).read_bytes())


def save_jobs(jobs_path: Path, jobs_file: BrollJobsFile) -> None:
    atomic_write_bytes(Path(jobs_path), jobs_file.model_dump_json(indent=2).encode("utf-8"))
