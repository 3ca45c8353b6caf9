"""A throw-away scale-out deployment on this machine's PostgreSQL, RabbitMQ and Redis, for one test.

``Fleet`` owns everything it starts and removes it afterwards: a PostgreSQL database
``cineforge_test_<uuid>`` (Dagster instance + breaker table), RabbitMQ queues/exchanges named
``cf<uuid>_*``, Redis result keys under the prefix ``cf<uuid>:``, a standalone provider simulator, and
Celery worker processes (each in its own process group). Runs are launched exactly as docs/deploy.md
says, with ``dagster job execute`` and the profiles in ``deploy/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent

PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
AMQP_URL = "pyamqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"

WORKER_READY_TIMEOUT_S = 90.0
RUN_TIMEOUT_S = 150.0


def services_unavailable() -> str | None:
    """Why the services tests cannot run here, or ``None`` when PostgreSQL, RabbitMQ and Redis answer."""
    try:
        import psycopg2
        import redis
        from kombu import Connection
    except ImportError as exc:  # the `scale` extra is not installed
        return f"scale-out dependencies missing: {exc}"
    try:
        psycopg2.connect(dbname="postgres", connect_timeout=5, **PG).close()
    except psycopg2.OperationalError as exc:
        return f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        return f"Redis not reachable on 127.0.0.1:6379: {exc}"
    try:
        with Connection(AMQP_URL, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # kombu raises the transport's own errors
        return f"RabbitMQ not reachable on 127.0.0.1:5672: {exc}"
    return None


# ------------------------------------------------------------------------------------------ processes


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 4 (ppid) follows the command name, which is parenthesised and may contain spaces.
    return int(stat.rsplit(")", 1)[1].split()[1])


def descends_from(pid: int, ancestor: int) -> bool:
    current: int | None = pid
    while current and current > 1:
        if current == ancestor:
            return True
        current = _ppid(current)
    return False


def stop_process_group(proc: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    """SIGTERM the process group ``proc`` leads (Celery's warm shutdown), SIGKILL it if it lingers."""
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of a leader that already exited
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@dataclass
class Worker:
    name: str
    queues: list[str]
    proc: subprocess.Popen[Any]
    log: Path

    def owns(self, pid: int) -> bool:
        return descends_from(pid, self.proc.pid)


# ------------------------------------------------------------------------------------------ the fleet


@dataclass
class Fleet:
    root: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    simulator_url: str = ""
    workers: list[Worker] = field(default_factory=list)
    _procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    _db_created: bool = False

    # names -----------------------------------------------------------------------------------------

    @property
    def db_name(self) -> str:
        return f"cineforge_test_{self.token}"

    @property
    def pg_url(self) -> str:
        return f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{self.db_name}"

    @property
    def redis_prefix(self) -> str:
        return f"cf{self.token}:"

    def queue(self, suffix: str) -> str:
        return f"cf{self.token}_{suffix}"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    # environment -----------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """What every host of the deployment sets (docs/deploy.md), pointing at this fleet's resources."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CINEFORGE_", "DAGSTER_"))}
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "DAGSTER_HOME": str(self.dagster_home),
                "DAGSTER_PG_HOST": str(PG["host"]),
                "DAGSTER_PG_PORT": str(PG["port"]),
                "DAGSTER_PG_USER": str(PG["user"]),
                "DAGSTER_PG_PASSWORD": "",
                "DAGSTER_PG_DB": self.db_name,
                "CINEFORGE_EXECUTOR": "celery",
                "CINEFORGE_CELERY_BROKER_URL": AMQP_URL,
                "CINEFORGE_CELERY_BACKEND_URL": REDIS_URL,
                "CINEFORGE_DATA": str(self.data_root),
                "CINEFORGE_PROVIDER_MODE": "simulated",
                "CINEFORGE_SIMULATOR_URL": self.simulator_url,
                "CINEFORGE_BREAKER_STORE_URL": self.pg_url,
                "CINEFORGE_STEP_RETRY_DELAY_SECONDS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # set-up ----------------------------------------------------------------------------------------

    def create_database(self) -> None:
        import psycopg2
        from psycopg2 import sql

        admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
            self._db_created = True
        finally:
            admin.close()

    def install_instance_profile(self) -> None:
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        (self.dagster_home / "dagster.yaml").write_text((DEPLOY / "postgres-celery" / "dagster.yaml").read_text())

    def start_simulator(self, faults: str = "none", latency_s: float = 0.0) -> str:
        """``python -m resources.simulator --port 0``: the first stdout line is its base URL."""
        log = (self.root / "simulator.err").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "resources.simulator", "--port", "0", "--faults", faults,
             "--latency", str(latency_s)],
            cwd=REPO_ROOT, env=self.env(), stdout=subprocess.PIPE, stderr=log, start_new_session=True,
        )
        self._procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            raise RuntimeError(f"simulator did not print its URL (got {line!r}); see {log.name}")
        self.simulator_url = line
        return line

    def celery_config(self, queue: str) -> dict[str, Any]:
        """deploy/celery/celery_config.yaml with this fleet's queue and Redis key prefix."""
        config = yaml.safe_load((DEPLOY / "celery" / "celery_config.yaml").read_text())
        source = config["execution"]["config"]["config_source"]
        source["task_default_queue"] = queue
        source["result_backend_transport_options"] = {"global_keyprefix": self.redis_prefix}
        # No remote-control (pidbox) queues on the shared broker: nothing to clean up after the test.
        source["worker_enable_remote_control"] = False
        return dict(config)

    def write_run_config(self, name: str, queue: str, extra: Mapping[str, Any] | None = None) -> Path:
        config = self.celery_config(queue)
        config.update(extra or {})
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start_workers(self, count: int = 2) -> list[Worker]:
        """``dagster-celery worker start`` x count, each on the shared queue plus a queue of its own."""
        config = self.write_run_config("worker_config", self.queue("shared"))
        for index in range(1, count + 1):
            name = f"cf{self.token}_w{index}"
            queues = [self.queue("shared"), self.queue(f"w{index}")]
            log = self.root / f"{name}.log"
            cmd = [str(VENV_BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                   "-y", str(config), "-n", name,
                   # One comma-separated -q: dagster-celery passes repeated -q on as repeated -Q, and
                   # Celery keeps only the last of those.
                   "-q", ",".join(queues),
                   "--", "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat"]
            with log.open("wb") as out:
                proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=self.env(), stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            self._procs.append(proc)
            self.workers.append(Worker(name, queues, proc, log))
        for worker in self.workers:
            self._wait_ready(worker)
        return self.workers

    def _wait_ready(self, worker: Worker) -> None:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if f"{worker.name}@" in (text := worker.log.read_text(errors="replace")) and " ready." in text:
                return
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited early:\n{text[-3000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"worker {worker.name} not ready after {WORKER_READY_TIMEOUT_S}s:\n{text[-3000:]}")

    # runs ------------------------------------------------------------------------------------------

    def launch(self, partition: str, run_config: Path, log_name: str) -> subprocess.Popen[Any]:
        """``dagster job execute`` for one partition (the run's orchestrator; steps go to Celery)."""
        cmd = [str(VENV_BIN / "dagster"), "job", "execute", "-m", "cineforge_assets.definitions",
               "-j", "screenplay_pipeline", "-c", str(run_config),
               "--tags", json.dumps({"dagster/partition": partition})]
        with (self.root / f"{log_name}.log").open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self._procs.append(proc)
        return proc

    def resume(self, run_id: str) -> dict[str, Any]:
        """``cineforge resume RUN_ID``: re-execution from failure in a fresh orchestrator process, on the
        executor of the environment (``CINEFORGE_EXECUTOR=celery``), with the failed run's config."""
        out = subprocess.run(
            [str(VENV_BIN / "cineforge"), "resume", run_id],
            cwd=REPO_ROOT, env=self.env(), capture_output=True, timeout=RUN_TIMEOUT_S, check=False,
        )
        (self.root / "resume.log").write_bytes(out.stdout + out.stderr)
        lines = out.stdout.decode().strip().splitlines()
        if not lines:
            raise RuntimeError(f"cineforge resume printed nothing:\n{out.stderr.decode()[-3000:]}")
        return dict(json.loads(lines[-1]))

    def run_cli(self, *args: str) -> str:
        out = subprocess.run([str(VENV_BIN / args[0]), *args[1:]], cwd=REPO_ROOT, env=self.env(),
                             capture_output=True, timeout=120, check=True)
        return out.stdout.decode()

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # simulator -------------------------------------------------------------------------------------

    def sim_stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.simulator_url}/_sim/stats", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def sim_set(self, profile: str, latency_s: float) -> None:
        body = json.dumps({"profile": profile, "latency_s": latency_s}).encode()
        req = urllib.request.Request(f"{self.simulator_url}/_sim/faults", data=body, method="PUT")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    # tear-down -------------------------------------------------------------------------------------

    def close(self) -> None:
        for proc in reversed(self._procs):
            stop_process_group(proc)
        self._purge_broker()
        self._purge_redis()
        self._drop_database()

    def _purge_broker(self) -> None:
        from kombu import Connection

        names = [self.queue("shared"), *(self.queue(f"w{i}") for i in range(1, len(self.workers) + 1))]
        with contextlib.suppress(Exception), Connection(AMQP_URL, connect_timeout=5) as conn:
            for name in names:
                # Each operation on a missing queue/exchange closes the channel: use a fresh one each time.
                for op in ("queue_delete", "exchange_delete"):
                    with contextlib.suppress(Exception), conn.channel() as channel:
                        getattr(channel, op)(name)

    def _purge_redis(self) -> None:
        import redis

        with contextlib.suppress(redis.RedisError):
            client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
            keys = list(client.scan_iter(match=f"{self.redis_prefix}*", count=500))
            if keys:
                client.delete(*keys)

    def _drop_database(self) -> None:
        if not self._db_created:
            return
        import psycopg2
        from psycopg2 import sql

        admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name)))
        finally:
            admin.close()


@contextlib.contextmanager
def fleet_at(root: Path) -> Iterator[Fleet]:
    fleet = Fleet(root)
    try:
        fleet.create_database()
        fleet.install_instance_profile()
        yield fleet
    finally:
        fleet.close()
