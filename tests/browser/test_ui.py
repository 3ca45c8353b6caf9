"""The Dagster UI in a real browser: the asset graph, a partition launched from the UI, its attempts.

``dagster dev`` (webserver + daemon + code server) runs on a free loopback port with a temporary
DAGSTER_HOME and CINEFORGE_DATA, offline (no API keys). Chromium is Debian's (/usr/bin/chromium, which
``.ci/run`` installs); playwright only drives it, it never downloads a browser. Screenshots go to
``test-artifacts/browser/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from cineforge_assets.definitions import defs
from cineforge_assets.sources import register_source
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
SAMPLE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"
STARTUP_TIMEOUT_S = 240.0
RUN_TIMEOUT_S = 300.0
UI_TIMEOUT_MS = 90_000
TERMINAL = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


@dataclass
class DagsterUI:
    base_url: str
    home: Path
    data: Path
    partition: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def offline_env(home: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("CINEFORGE_")}
    env.update(DAGSTER_HOME=str(home), CINEFORGE_DATA=str(data), CINEFORGE_PROVIDER_MODE="offline")
    return env


def prepare_instance(home: Path, data: Path) -> str:
    """Seed DAGSTER_HOME like ``make ui`` does, register the sample, add its partition."""
    home.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    # The "join the community" dialog is shown until this file exists; an operator dismisses it once.
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    key = register_source(SAMPLE, root=data)
    with DagsterInstance.from_config(str(home)) as instance:
        # Creating the storages here (not concurrently in the webserver, daemon and code server) avoids
        # two processes stamping a fresh SQLite schema at once.
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.add_dynamic_partitions("screenplays", [key])
    return key


def graphql(base_url: str, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


LOCATIONS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def wait_until_loaded(ui: DagsterUI) -> None:
    """Poll (bounded) until the webserver answers and the ``cineforge`` code location has loaded."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if ui.process.poll() is not None:
            pytest.fail(f"dagster dev exited with {ui.process.returncode}:\n{ui.log_tail()}")
        try:
            entries = graphql(ui.base_url, LOCATIONS_QUERY)["data"]["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, TypeError) as exc:
            last = repr(exc)
        else:
            entry = next((e for e in entries if e["name"] == "cineforge"), None)
            last = json.dumps(entry)
            if entry and entry["loadStatus"] == "LOADED":
                if entry["locationOrLoadError"]["__typename"] == "PythonError":
                    pytest.fail(f"code location failed to load: {entry['locationOrLoadError']['message']}")
                return
        time.sleep(1.0)  # poll interval; the bound is the deadline
    pytest.fail(f"dagster dev not ready after {STARTUP_TIMEOUT_S:.0f}s ({last}):\n{ui.log_tail()}")


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop ``dagster dev`` and everything it started (webserver, daemon, code servers, run workers)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    # dagster dev can linger on SIGTERM while its children shut down; nothing here needs a clean exit.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture
def chromium() -> Path:
    pytest.importorskip("playwright.sync_api", reason="python playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium; .ci/run does it)")
    return CHROMIUM


@pytest.fixture
def dagster_ui(tmp_path: Path, chromium: Path) -> Iterator[DagsterUI]:
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    partition = prepare_instance(home, data)
    port = free_port()
    log = tmp_path / "dagster-dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=offline_env(home, data),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the finalizer can stop all of it
        )
    ui = DagsterUI(f"http://127.0.0.1:{port}", home, data, partition, log, process)
    try:
        wait_until_loaded(ui)
        yield ui
    finally:
        stop_process_group(process)


def wait_for_run(ui: DagsterUI) -> Any:
    """The partition's run once it has finished (bounded poll of the instance)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with DagsterInstance.from_config(str(ui.home)) as instance:
        while time.monotonic() < deadline:
            runs = instance.get_runs(filters=RunsFilter(tags={"dagster/partition": ui.partition}))
            if runs and runs[0].status in TERMINAL:
                return runs[0]
            time.sleep(1.0)  # poll interval; the bound is the deadline
    pytest.fail(f"no finished run for {ui.partition} after {RUN_TIMEOUT_S:.0f}s:\n{ui.log_tail()}")


def executable_asset_names() -> list[str]:
    graph = defs.resolve_asset_graph()
    return sorted(key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).is_executable)


def test_graph_launch_a_partition_and_see_its_attempts(dagster_ui: DagsterUI, chromium: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base, key = dagster_ui.base_url, dagster_ui.partition
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        try:
            # 1. The global asset graph, every group expanded: every asset of the code location is there.
            page.goto(f"{base}/asset-groups")
            page.get_by_role("button", name="settings", exact=True).click()
            page.get_by_role("menuitem", name="Expand all groups").click()
            page.keyboard.press("Escape")  # close the settings menu
            expect(page.get_by_role("menuitem")).to_have_count(0)
            for name in executable_asset_names():
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "01-asset-graph.png"))

            # 2. The ingest group: Materialize all -> choose the partition -> launch one run.
            page.goto(f"{base}/locations/cineforge/asset-groups/ingest")
            expect(page.get_by_text("project_config", exact=True).first).to_be_visible()
            page.get_by_role("button", name="Materialize all").click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text("Partition selection")).to_be_visible()
            dialog.get_by_text("Select a partition or create one").click()
            page.get_by_text(key, exact=True).first.click()
            dialog.get_by_text("Launch runs to materialize").click()  # close the dropdown
            expect(page.get_by_placeholder("Filter partitions")).to_be_hidden()
            expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
            launch = dialog.get_by_role("button", name="Launch 1 run")
            expect(launch).to_be_enabled()
            page.screenshot(path=str(ARTIFACTS / "02-launch-partition.png"))
            launch.click()
            expect(page.get_by_text("Launched run")).to_be_visible()

            # 3. Wait for the run (bounded), then look at it in the UI.
            run = wait_for_run(dagster_ui)
            assert run.status == DagsterRunStatus.SUCCESS, dagster_ui.log_tail()
            page.goto(f"{base}/runs/{run.run_id}")
            expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()
            expect(page.get_by_text(f"partition: {key}").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "03-run-success.png"))

            # 4. The scenes asset: its materialization carries the provider layer's attempt log.
            page.goto(f"{base}/assets/scenes?partition={key}")
            expect(page.get_by_text("attempt_count", exact=True).first).to_be_visible()
            expect(page.get_by_text("attempts", exact=True).first).to_be_visible()
            expect(page.get_by_text("decision", exact=True).first).to_be_visible()  # the table's header
            # The page scrolls inside its own pane: bring the attempts rows into view for the screenshot.
            page.get_by_text("attempts", exact=True).first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "04-scenes-attempts.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
