"""Executor chosen by configuration: ``CINEFORGE_EXECUTOR`` = ``in_process`` (default), ``multiprocess``,
``celery`` or ``k8s``; ``CINEFORGE_EXECUTOR_CONFIG`` optionally names a YAML file with the executor's
config (e.g. ``deploy/celery/celery_config.yaml``) so runs launched by sensors, schedules or the UI get
the same broker and queue as the workers. Deployment profiles set the variables; code never changes."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor


def executor_name() -> str:
    return os.environ.get("CINEFORGE_EXECUTOR", "in_process").strip().lower() or "in_process"


def _base_executor(name: str) -> ExecutorDefinition:
    if name in ("in_process", "inprocess"):
        return in_process_executor
    if name == "multiprocess":
        return multiprocess_executor
    if name == "celery":
        from dagster_celery import celery_executor

        return celery_executor
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"CINEFORGE_EXECUTOR={name!r}: expected in_process, multiprocess, celery or k8s")


def executor_from_env() -> ExecutorDefinition:
    executor = _base_executor(executor_name())
    path = os.environ.get("CINEFORGE_EXECUTOR_CONFIG", "").strip()
    if not path:
        return executor
    data = yaml.safe_load(Path(path).read_text()) or {}
    # Accept either the bare executor config or a run-config document (``execution: config: ...``).
    config = data.get("execution", {}).get("config", data) if isinstance(data, dict) else {}
    return executor.configured(config, name=executor.name)
