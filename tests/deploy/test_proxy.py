"""The deploy profile's door: ``deploy/proxy/nginx.conf.template`` rendered as docs/deploy.md says, nginx
(Debian's) on loopback in front of a real ``dagster-webserver --read-only``.

An unauthenticated request is refused, a viewer's password opens the read-only port only, an operator's
opens the operators' port, and the webserver behind the viewers' port cannot launch runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT

TEMPLATE = REPO_ROOT / "deploy" / "proxy" / "nginx.conf.template"
STARTUP_TIMEOUT_S = 120.0
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PERMISSIONS_QUERY = "{ permissions { permission value } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    hashed = subprocess.run(
        ["openssl", "passwd", "-apr1", password], capture_output=True, text=True, check=True
    ).stdout.strip()
    return f"{user}:{hashed}\n"


def wait_until(check: object, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``check`` (bounded) until it returns True; fail with the process's log if it exits first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.5)  # poll interval; the bound is the deadline
    pytest.fail(f"{what} not ready after {STARTUP_TIMEOUT_S:.0f}s:\n{log.read_text(errors='replace')[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@dataclass
class Door:
    viewers_url: str
    operators_url: str


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    if not Path(NGINX).exists():
        pytest.skip("nginx not installed (apt-get install nginx; .ci/run does it)")
    if shutil.which("envsubst") is None or shutil.which("openssl") is None:
        pytest.skip("envsubst (gettext-base) and openssl are needed to render the profile")

    home, data, state = tmp_path / "home", tmp_path / "data", tmp_path / "proxy"
    home.mkdir()
    state.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    webserver_port, viewers_port, operators_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("CINEFORGE_")}
    env.update(DAGSTER_HOME=str(home), CINEFORGE_DATA=str(data), CINEFORGE_PROVIDER_MODE="offline")
    webserver_log = tmp_path / "webserver.log"
    with webserver_log.open("wb") as log:
        webserver = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml"]
            + ["-h", "127.0.0.1", "-p", str(webserver_port), "--read-only"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    nginx: subprocess.Popen[bytes] | None = None
    try:
        (state / "viewers.htpasswd").write_text(htpasswd_line("viewer", "look-only"))
        (state / "operators.htpasswd").write_text(htpasswd_line("operator", "launch-runs"))
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            + ["-keyout", str(state / "key.pem"), "-out", str(state / "cert.pem"), "-days", "1"]
            + ["-subj", "/CN=127.0.0.1"],
            capture_output=True,
            check=True,
        )
        values = {
            "CINEFORGE_PROXY_USER": "root" if os.geteuid() == 0 else "nobody",  # workers read files in tmp
            "CINEFORGE_PROXY_STATE": str(state),
            "CINEFORGE_PROXY_LISTEN": "127.0.0.1",
            "CINEFORGE_PROXY_VIEWERS_PORT": str(viewers_port),
            "CINEFORGE_PROXY_OPERATORS_PORT": str(operators_port),
            "CINEFORGE_PROXY_CERT": str(state / "cert.pem"),
            "CINEFORGE_PROXY_KEY": str(state / "key.pem"),
            "CINEFORGE_PROXY_VIEWERS_HTPASSWD": str(state / "viewers.htpasswd"),
            "CINEFORGE_PROXY_OPERATORS_HTPASSWD": str(state / "operators.htpasswd"),
            # One read-only webserver behind both ports keeps the test to one webserver; what each port lets
            # in is the proxy's doing.
            "CINEFORGE_READONLY_UPSTREAM": f"127.0.0.1:{webserver_port}",
            "CINEFORGE_WEBSERVER_UPSTREAM": f"127.0.0.1:{webserver_port}",
        }
        render_env = {"PATH": os.environ.get("PATH", ""), **values}
        # The command docs/deploy.md gives, verbatim.
        rendered = subprocess.run(
            ["bash", "-c", """envsubst "$(env | sed -n 's/^\\(CINEFORGE_[A-Z_]*\\)=.*/$\\1/p')" """],
            input=TEMPLATE.read_text(),
            env=render_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "${CINEFORGE_" not in rendered and "$http_upgrade" in rendered and "$host" in rendered
        conf = state / "nginx.conf"
        conf.write_text(rendered)
        checked = subprocess.run([NGINX, "-t", "-p", str(state), "-c", str(conf)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr

        nginx_log = state / "error.log"
        nginx = subprocess.Popen(
            [NGINX, "-p", str(state), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{webserver_port}/server_info", timeout=5).status_code == 200,
            "dagster-webserver",
            webserver,
            webserver_log,
        )
        viewers = f"https://127.0.0.1:{viewers_port}"
        wait_until(
            lambda: httpx.get(f"{viewers}/server_info", verify=False, timeout=5).status_code == 401,
            "nginx",
            nginx,
            nginx_log,
        )
        yield Door(viewers, f"https://127.0.0.1:{operators_port}")
    finally:
        if nginx is not None:
            stop(nginx)
        stop(webserver)


def test_the_proxy_refuses_strangers_and_serves_each_password_its_own_door(door: Door) -> None:
    with httpx.Client(verify=False, timeout=30) as client:
        refused = client.get(f"{door.viewers_url}/server_info")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert "dagster" not in refused.text.lower()  # nothing of the webserver behind it
        assert client.get(f"{door.operators_url}/server_info").status_code == 401
        assert client.get(f"{door.viewers_url}/server_info", auth=("viewer", "wrong")).status_code == 401

        served = client.get(f"{door.viewers_url}/server_info", auth=("viewer", "look-only"))
        assert served.status_code == 200 and "dagster_webserver_version" in served.json()
        # A viewer's password does not open the operators' door; an operator's does.
        assert client.get(f"{door.operators_url}/server_info", auth=("viewer", "look-only")).status_code == 401
        assert client.get(f"{door.operators_url}/server_info", auth=("operator", "launch-runs")).status_code == 200

        # The webserver behind the viewers' door was started --read-only: it grants no launch.
        answer = client.post(
            f"{door.viewers_url}/graphql", json={"query": PERMISSIONS_QUERY}, auth=("viewer", "look-only")
        )
        assert answer.status_code == 200, answer.text[:500]
        permissions = {p["permission"]: p["value"] for p in answer.json()["data"]["permissions"]}
        assert permissions["launch_pipeline_execution"] is False
