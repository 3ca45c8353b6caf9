"""The inbox sensor: pure scanning rules (``inbox.py``) and the sensor on a real Dagster instance.

Time never passes by sleeping: file mtimes are set with ``os.utime`` and the scan gets an explicit
``now`` (the sensor an injected clock). The end-to-end tests evaluate the sensor with
``build_sensor_context`` on a real instance and launch its run request with ``execute_in_process``;
the daemon test lets ``dagster-daemon`` do both.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorResult,
    build_sensor_context,
)

from cineforge_assets.inbox import (
    InboxCursor,
    InboxEntry,
    InboxPolicy,
    SeenFile,
    resolve_collisions,
    scan_inbox,
    settling_reason,
    temporary_reason,
)
from cineforge_assets.paths import inbox_dir
from cineforge_assets.run_tags import SOURCE_PATH_TAG, SOURCE_SHA256_TAG, SOURCE_TAG, TRIGGER_TAG
from cineforge_assets.sensors import build_inbox_sensor, sensors
from cineforge_assets.sources import source_for
from tests.cineforge_assets.daemon_runs import wait_for_tagged_run
from tests.conftest import REPO_ROOT

NOW = 1_900_000_000.0  # an arbitrary fixed "now" (epoch seconds)
SETTLE = 10.0
POLICY = InboxPolicy(max_bytes=2 * 1024 * 1024, settle_seconds=SETTLE)
SAMPLE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"
OFFLINE = {"resources": {"ai": {"config": {"mode": "offline"}}}}

FOUNTAIN = """Title: The Kettle

INT. KITCHEN - NIGHT

ANNA fills the kettle.

ANNA
We should have left at noon.
"""


def drop(folder: Path, name: str, data: bytes | str, *, age: float = 60.0, now: float = NOW) -> Path:
    """Write ``name`` into ``folder`` and make it ``age`` seconds old relative to ``now``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.utime(path, (now - age, now - age))
    return path


def scan(folder: Path, cursor: InboxCursor | None = None, *, now: float = NOW, policy: InboxPolicy = POLICY):
    return scan_inbox(folder, cursor or InboxCursor(), now=now, policy=policy)


# ------------------------------------------------------------------------------------ pure rules


@pytest.mark.parametrize(
    "name",
    [".hidden.fountain", "~$script.docx", "script.pdf.part", "script.fdx.crdownload", "draft.tmp", "a.txt~",
     ".script.pdf.swp", "BIG.PDF.PART"],
)
def test_temporary_and_partial_files_are_ignored(name: str) -> None:
    assert temporary_reason(name) is not None


@pytest.mark.parametrize("name", ["script.pdf", "The Ledger (v2).fountain", "notes.txt", "a.docx"])
def test_real_names_are_not_temporary(name: str) -> None:
    assert temporary_reason(name) is None


def test_settling_compares_mtime_with_the_injected_clock() -> None:
    entry = InboxEntry(Path("x.fountain"), size=10, mtime_ns=int((NOW - 3) * 1e9))
    assert settling_reason(entry, NOW, POLICY) is not None
    assert settling_reason(entry, NOW + SETTLE, POLICY) is None


def test_a_fresh_file_waits_and_is_taken_once_it_settles(tmp_path: Path) -> None:
    drop(tmp_path, "kettle.fountain", FOUNTAIN, age=2.0)
    first = scan(tmp_path)
    assert first.accepted == []
    assert [(s.name, s.kind) for s in first.skipped] == [("kettle.fountain", "settling")]
    assert "kettle.fountain" not in first.cursor.files  # nothing decided yet

    later = scan(tmp_path, first.cursor, now=NOW + SETTLE)
    assert [a.name for a in later.accepted] == ["kettle.fountain"]
    item = later.accepted[0]
    assert item.partition_key == "kettle"
    assert item.source_format == "fountain"
    assert item.run_key == f"kettle.fountain:{item.sha256}"


def test_temporary_files_never_reach_the_cursor(tmp_path: Path) -> None:
    drop(tmp_path, "kettle.fountain.part", FOUNTAIN)
    drop(tmp_path, ".kettle.fountain", FOUNTAIN)
    drop(tmp_path, "~$kettle.docx", b"lock")
    result = scan(tmp_path)
    assert result.accepted == []
    assert {s.kind for s in result.skipped} == {"temporary"}
    assert result.cursor.files == {}
    assert "3 temporary file(s) ignored" in result.summary()


def test_oversized_and_unsupported_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    drop(tmp_path, "huge.pdf", b"%PDF-1.7\n" + b"0" * 4096)
    drop(tmp_path, "poster.jpg", b"\xff\xd8\xff\xe0 jpeg")
    drop(tmp_path, "fake.pdf", "INT. HOUSE - DAY\n\nNot a PDF at all.\n")
    small = InboxPolicy(max_bytes=1024, settle_seconds=SETTLE)
    result = scan(tmp_path, policy=small)
    assert result.accepted == []
    reasons = {s.name: (s.kind, s.reason) for s in result.skipped}
    assert reasons["huge.pdf"][0] == "too_large"
    assert "over the 1,024-byte limit on source files (CINEFORGE_MAX_SOURCE_MB)" in reasons["huge.pdf"][1]
    assert reasons["poster.jpg"][0] == "unsupported"
    assert "'.jpg'" in reasons["poster.jpg"][1] and ".fountain" in reasons["poster.jpg"][1]
    assert reasons["fake.pdf"][0] == "unsupported"
    assert "no PDF header" in reasons["fake.pdf"][1]
    summary = result.summary()
    assert "huge.pdf: too large" in summary and "poster.jpg: unsupported type" in summary


def test_a_refusal_is_new_once_per_version_of_the_file(tmp_path: Path) -> None:
    path = drop(tmp_path, "poster.jpg", b"\xff\xd8\xff\xe0 jpeg")
    first = scan(tmp_path)
    assert [s.new for s in first.skipped] == [True]
    again = scan(tmp_path, first.cursor)
    assert [(s.kind, s.new) for s in again.skipped] == [("unsupported", False)]
    assert "poster.jpg: unsupported type" in again.summary()  # still explained, just not re-logged
    drop(tmp_path, path.name, b"\xff\xd8\xff\xe0 another jpeg", age=30.0)
    changed = scan(tmp_path, again.cursor)
    assert [(s.kind, s.new) for s in changed.skipped] == [("unsupported", True)]


def test_unchanged_files_are_not_run_again_and_not_reread(tmp_path: Path) -> None:
    path = drop(tmp_path, "kettle.fountain", FOUNTAIN)
    first = scan(tmp_path)
    assert len(first.accepted) == 1
    again = scan(tmp_path, first.cursor)
    assert again.accepted == []
    assert [(s.kind, s.new) for s in again.skipped] == [("unchanged", False)]
    assert again.summary() == "no new or changed files; 1 already processed"
    # Same size and mtime: the scan trusts the fingerprint and does not read the bytes (an edit that
    # kept both would go unnoticed; every real copy or save moves the mtime).
    stat = path.stat()
    path.write_text(FOUNTAIN.replace("ANNA", "ALMA"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert scan(tmp_path, first.cursor).accepted == []


def test_touching_a_file_without_changing_it_does_not_rerun(tmp_path: Path) -> None:
    path = drop(tmp_path, "kettle.fountain", FOUNTAIN, age=100.0)
    first = scan(tmp_path)
    os.utime(path, (NOW - 50, NOW - 50))
    touched = scan(tmp_path, first.cursor)
    assert touched.accepted == []
    assert touched.cursor.files["kettle.fountain"].sha256 == first.accepted[0].sha256
    assert touched.cursor.files["kettle.fountain"] != first.cursor.files["kettle.fountain"]  # new fingerprint


def test_a_changed_file_runs_again_under_a_new_run_key(tmp_path: Path) -> None:
    drop(tmp_path, "kettle.fountain", FOUNTAIN, age=100.0)
    first = scan(tmp_path)
    drop(tmp_path, "kettle.fountain", FOUNTAIN + "\nANNA\nNow.\n", age=30.0)
    second = scan(tmp_path, first.cursor)
    assert [a.partition_key for a in second.accepted] == ["kettle"]
    assert second.accepted[0].run_key != first.accepted[0].run_key


def test_files_that_left_the_inbox_leave_the_cursor(tmp_path: Path) -> None:
    path = drop(tmp_path, "kettle.fountain", FOUNTAIN)
    first = scan(tmp_path)
    path.unlink()
    assert scan(tmp_path, first.cursor).cursor.files == {}


def test_two_files_for_one_partition_the_newest_wins(tmp_path: Path) -> None:
    drop(tmp_path, "Kettle.txt", FOUNTAIN, age=200.0)
    drop(tmp_path, "kettle.fountain", FOUNTAIN + "\nANNA\nLater draft.\n", age=100.0)
    result = scan(tmp_path)
    assert [a.name for a in result.accepted] == ["kettle.fountain"]
    superseded = [s for s in result.skipped if s.kind == "superseded"]
    assert [s.name for s in superseded] == ["Kettle.txt"]
    # The loser is remembered, so it does not trigger a run on its own next tick.
    assert scan(tmp_path, result.cursor).accepted == []


def test_resolve_collisions_keeps_distinct_partitions(tmp_path: Path) -> None:
    drop(tmp_path, "a.fountain", FOUNTAIN)
    drop(tmp_path, "b.fountain", FOUNTAIN)
    winners, losers = resolve_collisions(scan(tmp_path).accepted)
    assert [w.name for w in winners] == ["a.fountain", "b.fountain"] and losers == []


def test_cursor_round_trips_and_survives_damage() -> None:
    cursor = InboxCursor({"a.pdf": SeenFile("10:20", sha256="ab"), "b.jpg": SeenFile("1:2", refused="nope")})
    assert InboxCursor.from_json(cursor.to_json()) == cursor
    for damaged in ("", None, "{", "[]", '{"v": 99, "files": {}}', '{"v": 1, "files": {"a": {}}}'):
        assert InboxCursor.from_json(damaged) == InboxCursor()


def test_policy_from_env() -> None:
    policy = InboxPolicy.from_env({"CINEFORGE_MAX_SOURCE_MB": "2", "CINEFORGE_INBOX_SETTLE_SECONDS": "0"})
    assert policy.max_bytes == 2 * 1024 * 1024 and policy.settle_seconds == 0
    with pytest.raises(ValueError):
        InboxPolicy(settle_seconds=-1)


# ------------------------------------------------------------------------------------ the sensor


def evaluate(instance: Any, cursor: str | None, *, now: float = NOW, policy: InboxPolicy = POLICY) -> SensorResult:
    """One tick of a freshly built sensor (a restarted daemon builds it afresh too)."""
    sensor_def = build_inbox_sensor(clock=lambda: now, policy=policy)
    context = build_sensor_context(instance=instance, cursor=cursor)
    result = sensor_def(context)
    assert isinstance(result, SensorResult)
    return result


def apply_partition_requests(instance: DagsterInstance, result: SensorResult) -> None:
    """What the sensor daemon does with a result's dynamic partition requests."""
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def test_sensor_is_registered_and_runs_the_whole_pipeline_job() -> None:
    (inbox_sensor,) = [s for s in sensors if s.name == "screenplay_inbox"]
    assert inbox_sensor.job_name == "screenplay_pipeline"
    assert inbox_sensor.default_status.value == "RUNNING"


def test_sensor_registers_the_file_and_requests_a_partition_and_a_run(data_root: Path, instance: Any) -> None:
    drop(inbox_dir(), SAMPLE.name, SAMPLE.read_bytes())
    result = evaluate(instance, None)
    (request,) = result.run_requests or []
    assert isinstance(request, RunRequest)
    key = "the-lighthouse-keepers-ledger"
    assert request.partition_key == key
    assert request.run_key is not None and request.run_key.startswith(f"{SAMPLE.name}:")
    assert request.tags[TRIGGER_TAG] == "inbox" and request.tags[SOURCE_TAG] == SAMPLE.name
    (add,) = result.dynamic_partitions_requests or []
    assert isinstance(add, AddDynamicPartitionsRequest)
    assert add.partitions_def_name == "screenplays" and list(add.partition_keys) == [key]
    # The run names the exact stored version (content-addressed) and its hash.
    sha = request.tags[SOURCE_SHA256_TAG]
    assert request.tags[SOURCE_PATH_TAG] == f"sources/{key}/{sha}/{SAMPLE.name}"
    assert (data_root / request.tags[SOURCE_PATH_TAG]).read_bytes() == SAMPLE.read_bytes()
    assert source_for(key).read_bytes() == SAMPLE.read_bytes()

    # A restarted sensor with the stored cursor: nothing to do, and it says why.
    again = evaluate(instance, result.cursor)
    assert not again.run_requests
    assert again.skip_reason is not None
    assert "1 already processed" in (again.skip_reason.skip_message or "")
    assert again.cursor == result.cursor


def test_sensor_skips_with_reasons_when_nothing_is_runnable(data_root: Path, instance: Any) -> None:
    drop(inbox_dir(), "poster.jpg", b"\xff\xd8\xff\xe0 jpeg")
    drop(inbox_dir(), "kettle.fountain.crdownload", FOUNTAIN)
    drop(inbox_dir(), "kettle.fountain", FOUNTAIN, age=1.0)
    result = evaluate(instance, None)
    assert not result.run_requests and not result.dynamic_partitions_requests
    message = result.skip_reason.skip_message if result.skip_reason else ""
    assert message is not None
    assert "poster.jpg: unsupported type '.jpg'" in message
    assert "kettle.fountain: modified 1.0s ago" in message
    assert "1 temporary file(s) ignored" in message


def test_sensor_on_an_empty_inbox_creates_it_and_skips(data_root: Path, instance: Any) -> None:
    result = evaluate(instance, None)
    assert inbox_dir().is_dir()
    assert result.skip_reason is not None and result.skip_reason.skip_message == "inbox is empty"


def test_sensor_reruns_a_changed_file(data_root: Path, instance: Any) -> None:
    drop(inbox_dir(), "kettle.fountain", FOUNTAIN, age=100.0)
    first = evaluate(instance, None)
    drop(inbox_dir(), "kettle.fountain", FOUNTAIN + "\nANNA\nNow.\n", age=30.0)
    second = evaluate(instance, first.cursor)
    (a,), (b,) = first.run_requests or [], second.run_requests or []
    assert a.partition_key == b.partition_key == "kettle"
    assert a.run_key != b.run_key
    assert source_for("kettle").read_text().endswith("Now.\n")
    # The first run's version is still there for it to read.
    assert (data_root / a.tags[SOURCE_PATH_TAG]).read_text() == FOUNTAIN


def launch(instance: DagsterInstance, result: SensorResult) -> list[Any]:
    """Apply the sensor's partition requests and run each run request in-process on the instance."""
    from cineforge_assets.definitions import defs

    apply_partition_requests(instance, result)
    job = defs.resolve_job_def("screenplay_pipeline")
    outcomes = []
    for request in result.run_requests or []:
        outcomes.append(
            job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                tags={**request.tags, "dagster/run_key": request.run_key or ""},
                run_config=OFFLINE,
                raise_on_error=False,
            )
        )
    return outcomes


def test_a_corpus_pdf_dropped_in_the_inbox_becomes_a_successful_run(
    data_root: Path, instance: Any, corpus_dir: Path
) -> None:
    pdf = corpus_dir / "The-Last-Birthday-Card.pdf"
    drop(inbox_dir(), pdf.name, pdf.read_bytes(), now=time.time())
    result = evaluate(instance, None, now=time.time(), policy=InboxPolicy())
    (outcome,) = launch(instance, result)
    assert outcome.success
    key = "the-last-birthday-card"
    assert instance.has_dynamic_partition("screenplays", key)
    run = instance.get_run_by_id(outcome.run_id)
    assert run is not None and run.tags["dagster/partition"] == key
    assert run.tags[SOURCE_TAG] == pdf.name
    materialized = outcome.asset_materializations_for_node("project_config")
    assert materialized and materialized[0].partition == key
    assert (data_root / "artifacts" / "project_config" / f"{key}.json").exists()
    # The next tick finds nothing new.
    assert not evaluate(instance, result.cursor, now=time.time(), policy=InboxPolicy()).run_requests


# ------------------------------------------------------------------------------------ with the daemon


def _free_env(tmp_path: Path, home: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        DAGSTER_HOME=str(home),
        CINEFORGE_DATA=str(data),
        CINEFORGE_PROVIDER_MODE="offline",
        CINEFORGE_INBOX_INTERVAL_SECONDS="2",
        CINEFORGE_INBOX_SETTLE_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[DagsterInstance, Path, Path]]:
    """``dagster-daemon run`` on a private DAGSTER_HOME / CINEFORGE_DATA; killed as a process group."""
    home, data = tmp_path / "daemon_home", tmp_path / "daemon_data"
    home.mkdir()
    data.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    # Create the SQLite storages (and stamp their schema) here, before the daemon and its code server
    # start: processes initializing a fresh DAGSTER_HOME at the same moment can stamp the schema twice.
    instance = DagsterInstance.from_config(str(home))
    instance.get_runs(limit=1)
    instance.all_instigator_state()
    log = (tmp_path / "daemon.log").open("wb")
    bin_dir = Path(sys.executable).parent
    proc = subprocess.Popen(
        [str(bin_dir / "dagster-daemon"), "run", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT,
        env=_free_env(tmp_path, home, data),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield instance, data, tmp_path / "daemon.log"
    finally:
        _stop_group(proc)
        log.close()
        instance.dispose()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon's process group (it and the run workers it spawned), SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.slow
def test_dagster_daemon_turns_a_dropped_pdf_into_a_successful_run(
    daemon: tuple[DagsterInstance, Path, Path], corpus_dir: Path
) -> None:
    instance, data, log = daemon
    pdf = corpus_dir / "The-Last-Birthday-Card.pdf"
    inbox = data / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    # Copy under a temporary name, then rename: the way a careful uploader delivers a file.
    partial = inbox / (pdf.name + ".part")
    shutil.copyfile(pdf, partial)
    partial.rename(inbox / pdf.name)

    status = wait_for_tagged_run(instance, {TRIGGER_TAG: "inbox"}, timeout_s=300.0)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert status == DagsterRunStatus.SUCCESS, f"run status {status}; daemon log tail:\n{tail}"
    (run,) = instance.get_runs(filters=RunsFilter(tags={TRIGGER_TAG: "inbox"}))
    assert run.tags["dagster/partition"] == "the-last-birthday-card"
    assert run.tags.get("dagster/sensor_name") == "screenplay_inbox"
    assert instance.has_dynamic_partition("screenplays", "the-last-birthday-card")
