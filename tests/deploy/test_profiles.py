"""The deployment profiles in deploy/ load and validate against the schemas Dagster itself applies.

No cluster, broker or database is needed: these tests parse the files and run them through the config
schemas of the Dagster instance, the Celery executor, the Kubernetes executor and the K8s run launcher,
plus the consistency rules between the Helm values and the executor config (same secrets, same volume,
the same data directory everywhere).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
PG_ENV = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "cineforge",
    "DAGSTER_PG_PASSWORD": "not-a-secret",
    "DAGSTER_PG_DB": "cineforge",
}
CELERY_ENV = {
    "CINEFORGE_CELERY_BROKER_URL": "pyamqp://guest:guest@127.0.0.1:5672//",
    "CINEFORGE_CELERY_BACKEND_URL": "redis://127.0.0.1:6379/0",
}


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def validate_instance_yaml(config: Mapping[str, Any], tmp_path: Path) -> Mapping[str, Any]:
    """Run a dagster.yaml through the instance's own loader (schema + env resolution)."""
    from dagster._core.instance.config import dagster_instance_config

    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(dict(config)))
    resolved, _ = dagster_instance_config(str(home))
    return resolved


def job_with_executor(executor: Any) -> Any:
    """The real screenplay_pipeline job (same assets, resources) on the given executor."""
    from dagster import Definitions

    from cineforge_assets.definitions import defs

    rebuilt = Definitions(
        assets=defs.assets, jobs=defs.jobs, resources=defs.resources, executor=executor
    )
    return rebuilt.resolve_job_def("screenplay_pipeline")


# ------------------------------------------------------------------------------ PostgreSQL instance


def test_postgres_instance_profile_is_a_valid_instance_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    raw = load(DEPLOY / "postgres-celery" / "dagster.yaml")
    config = validate_instance_yaml(raw, tmp_path)

    pg = config["storage"]["postgres"]["postgres_db"]
    # Connection settings are env references, resolved by each process: no credentials in the file.
    assert all(set(pg[key]) == {"env"} for key in ("hostname", "port", "username", "password", "db_name"))
    assert {pg[key]["env"] for key in ("hostname", "port", "username", "password", "db_name")} == set(PG_ENV)
    assert pg["scheme"] == "postgresql+psycopg2"
    assert config["concurrency"]["pools"]["granularity"] == "op"
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_postgres_instance_profile_resolves_its_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dagster import Shape
    from dagster._config import post_process_config, validate_config
    from dagster._core.storage.config import pg_config
    from dagster_postgres.utils import pg_url_from_config

    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    storage = load(DEPLOY / "postgres-celery" / "dagster.yaml")["storage"]["postgres"]
    schema = validate_config(Shape(pg_config()), storage)
    assert schema.success, schema.errors
    resolved = post_process_config(Shape(pg_config()), storage).value
    assert resolved is not None
    url = pg_url_from_config(resolved)
    assert url == "postgresql+psycopg2://cineforge:not-a-secret@db.internal:5432/cineforge"


# ------------------------------------------------------------------------------ Celery executor


def test_celery_profile_validates_as_worker_config_and_as_run_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import validate_run_config
    from dagster_celery import celery_executor
    from dagster_celery.cli import get_validated_config

    from cineforge_assets.executors import executor_from_env

    for key, value in CELERY_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CINEFORGE_EXECUTOR", "celery")
    path = DEPLOY / "celery" / "celery_config.yaml"

    worker_side = get_validated_config(str(path))  # what `dagster-celery worker start -y` does
    assert worker_side["broker"] == CELERY_ENV["CINEFORGE_CELERY_BROKER_URL"]
    assert worker_side["backend"] == CELERY_ENV["CINEFORGE_CELERY_BACKEND_URL"]
    source = worker_side["config_source"]
    assert source["task_default_queue"] == "cineforge"
    assert source["task_acks_late"] is True and source["worker_prefetch_multiplier"] == 1

    executor = executor_from_env()
    assert executor is celery_executor
    validate_run_config(job_with_executor(executor), load(path))  # what `dagster job execute -c` does


# ------------------------------------------------------------------------------ Kubernetes


def test_k8s_run_config_validates_against_the_k8s_job_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import validate_run_config
    from dagster_k8s import k8s_job_executor

    from cineforge_assets.executors import executor_from_env

    monkeypatch.setenv("CINEFORGE_EXECUTOR", "k8s")
    executor = executor_from_env()
    assert executor is k8s_job_executor
    run_config = load(DEPLOY / "k8s" / "run_config.yaml")
    validated = validate_run_config(job_with_executor(executor), run_config)
    k8s = validated["execution"]["k8s"]  # resolved under the executor's name
    assert k8s["max_concurrent"] == 4
    assert k8s["step_k8s_config"]["container_config"]["resources"]["limits"]["memory"] == "1Gi"


def _env_list(env: Any) -> dict[str, str]:
    if isinstance(env, Mapping):
        return {str(k): str(v) for k, v in env.items()}
    return {item["name"]: str(item.get("value", "")) for item in env}


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_camel_to_snake(str(k)): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


@pytest.fixture(scope="module")
def helm_values() -> dict[str, Any]:
    return load(DEPLOY / "k8s" / "values.yaml")


def test_helm_values_user_deployment_serves_this_code_location(helm_values: dict[str, Any]) -> None:
    import importlib

    from dagster import Definitions

    user = helm_values["dagster-user-deployments"]
    assert user["enabled"] and user["enableSubchart"]
    (deployment,) = user["deployments"]
    assert {"name", "image", "dagsterApiGrpcArgs", "port"} <= set(deployment)
    assert set(deployment["image"]) == {"repository", "tag", "pullPolicy"}
    assert deployment["image"]["tag"] not in ("", "latest")
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    attribute = args[args.index("--attribute") + 1]
    assert isinstance(getattr(importlib.import_module(module), attribute), Definitions)
    env = _env_list(deployment["env"])
    assert env["CINEFORGE_EXECUTOR"] == "k8s"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True


def test_helm_values_runs_and_steps_share_secrets_and_the_data_volume(helm_values: dict[str, Any]) -> None:
    (deployment,) = helm_values["dagster-user-deployments"]["deployments"]
    launcher = helm_values["runLauncher"]["config"]["k8sRunLauncher"]
    executor = load(DEPLOY / "k8s" / "run_config.yaml")["execution"]["config"]

    secrets = {s["name"] for s in deployment["envSecrets"]}
    assert {s["name"] for s in launcher["envSecrets"]} == secrets == set(executor["env_secrets"])

    data_dir = _env_list(deployment["env"])["CINEFORGE_DATA"]
    executor_env = dict(item.split("=", 1) for item in executor["env_vars"])
    assert executor_env["CINEFORGE_DATA"] == data_dir
    assert executor_env["CINEFORGE_EXECUTOR"] == "k8s"
    mounts = [
        {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]},
        {m["name"]: m["mountPath"] for m in launcher["volumeMounts"]},
        {m["name"]: m["mount_path"] for m in executor["volume_mounts"]},
    ]
    assert all(m == {"cineforge-data": data_dir} for m in mounts), mounts
    claims = [
        deployment["volumes"][0]["persistentVolumeClaim"]["claimName"],
        launcher["volumes"][0]["persistentVolumeClaim"]["claimName"],
        executor["volumes"][0]["persistent_volume_claim"]["claim_name"],
    ]
    assert set(claims) == {"cineforge-data"}


def test_helm_values_run_launcher_validates_as_k8s_run_launcher_config(helm_values: dict[str, Any]) -> None:
    """The chart turns runLauncher.config.k8sRunLauncher into K8sRunLauncher config; check ours does."""
    from dagster._config import validate_config
    from dagster_k8s import K8sRunLauncher

    assert helm_values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = dict(helm_values["runLauncher"]["config"]["k8sRunLauncher"])
    rendered = {
        # What the chart fills in itself.
        "instance_config_map": "cineforge-dagster-instance",
        "dagster_home": "/opt/dagster/dagster_home",
        "postgres_password_secret": helm_values["global"]["postgresqlSecretName"],
        "load_incluster_config": True,
        "image_pull_policy": launcher.pop("imagePullPolicy"),
        "env_secrets": [s["name"] for s in launcher.pop("envSecrets")],
        "volume_mounts": launcher.pop("volumeMounts"),  # camelCase is accepted here
        "volumes": launcher.pop("volumes"),
    }
    assert not launcher, f"keys not checked: {sorted(launcher)}"
    result = validate_config(K8sRunLauncher.config_type(), rendered)
    assert result.success, result.errors


def test_helm_values_render_a_valid_instance_config(
    helm_values: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instance sections the chart renders from these values pass Dagster's instance schema."""
    # Key sets of the chart's (extra="forbid") models for the sections set here.
    chart_keys = {
        "pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"},
        "runs": {"maxConcurrentRuns", "tagConcurrencyLimits"},
        "runMonitoring": {
            "enabled", "startTimeoutSeconds", "cancelTimeoutSeconds", "maxResumeRunAttempts",
            "pollIntervalSeconds", "freeSlotsAfterRunEndSeconds",
        },
        "runRetries": {"enabled", "maxRetries", "retryOnAssetOrOpFailure"},
    }
    concurrency = helm_values["concurrency"]
    daemon = helm_values["dagsterDaemon"]
    assert concurrency["enabled"] is True
    assert set(concurrency["pools"]) <= chart_keys["pools"]
    assert set(concurrency["runs"]) <= chart_keys["runs"]
    assert set(daemon["runMonitoring"]) <= chart_keys["runMonitoring"]
    assert set(daemon["runRetries"]) <= chart_keys["runRetries"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"

    pg = helm_values["postgresql"]
    assert pg["enabled"] is False and helm_values["generatePostgresqlPasswordSecret"] is False
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "from-the-secret")
    postgres_config = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
            "scheme": pg["postgresqlScheme"],
        }
    }
    instance = {
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage",
                        "config": postgres_config},
        "event_log_storage": {"module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage",
                              "config": postgres_config},
        "schedule_storage": {"module": "dagster_postgres.schedule_storage", "class": "PostgresScheduleStorage",
                             "config": postgres_config},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        "concurrency": _snake_keys({k: v for k, v in concurrency.items() if k != "enabled"}),
        "run_monitoring": _snake_keys(daemon["runMonitoring"]),
        "run_retries": _snake_keys(daemon["runRetries"]),
    }
    resolved = validate_instance_yaml(instance, tmp_path)
    assert resolved["concurrency"]["pools"]["default_limit"] >= 1
    assert resolved["run_monitoring"]["free_slots_after_run_end_seconds"] > 0

    from dagster import Shape
    from dagster._config import validate_config
    from dagster._core.storage.config import pg_config

    assert validate_config(Shape(pg_config()), postgres_config).success
