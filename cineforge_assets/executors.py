"""Executor chosen by configuration: ``CINEFORGE_EXECUTOR`` = ``in_process`` (default), ``multiprocess``,
``celery`` or ``k8s``. Deployment profiles set the variable; code never changes between them."""

from __future__ import annotations

import os

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor


def executor_from_env() -> ExecutorDefinition:
    name = os.environ.get("CINEFORGE_EXECUTOR", "in_process").strip().lower()
    if name in ("", "in_process", "inprocess"):
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
