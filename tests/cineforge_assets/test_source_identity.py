"""Issue 13 items 2, 3 and 7: partition keys that keep sources apart, concurrent drops, title-page-only
Fountain. Driven through the real entry points: ``cineforge ingest``, the inbox sensor's evaluation and
asset materialization on a temporary instance."""

from __future__ import annotations

import json
import multiprocessing
import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from dagster import AssetKey, DagsterEventType, DagsterInstance, SensorResult, build_sensor_context

from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.definitions import defs
from cineforge_assets.inbox import InboxPolicy
from cineforge_assets.partitions import MAX_KEY_LENGTH, ensure_screenplay_partition, partition_key_for
from cineforge_assets.paths import artifacts_dir, inbox_dir
from cineforge_assets.sensors import build_inbox_sensor
from cineforge_assets.sources import (
    SOURCE_PATH_TAG,
    SourceConflictError,
    register_source,
    register_source_version,
    source_for,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLE_FOUNTAIN = REPO / "samples" / "the-lighthouse-keepers-ledger.fountain"
OFFLINE = {"resources": {"ai": {"config": {"mode": "offline"}}}}
NOW = 1_900_000_000.0
KETTLE = "Title: The Kettle\n\nINT. KITCHEN - NIGHT\n\nA kettle whistles.\n\nANNA\nTea?\n"


def script(title: str) -> str:
    return KETTLE.replace("The Kettle", title)


# ------------------------------------------------------------------------------------ item 2: keys


@pytest.mark.parametrize(
    "names",
    [
        ("脚本.fountain", "台本.fountain"),  # all-CJK: both slugged to "untitled" before
        ("Сценарий.fountain", "Сценарий 2.fountain"),
        ("Σενάριο.pdf", "Σενάρια.pdf"),
        ("-.txt", "_.txt", "(1).txt"),  # names that slug to nothing
        ("a" * 90 + " part one.fountain", "a" * 90 + " part two.fountain"),  # cut at the limit
    ],
)
def test_names_that_lose_letters_get_distinct_safe_keys(names: tuple[str, ...]) -> None:
    keys = [partition_key_for(name) for name in names]
    assert len(set(keys)) == len(keys), keys
    for key in keys:
        assert key and len(key) <= MAX_KEY_LENGTH
        assert key.isascii() and all(c.isalnum() or c == "-" for c in key), key
        assert key != "untitled"


def test_keys_transliterate_where_it_reads_well_and_keep_plain_names_as_they_were() -> None:
    assert partition_key_for("Big Fish (v2).pdf") == "big-fish-v2"
    assert partition_key_for("ledger.pdf") == partition_key_for("ledger.fountain") == "ledger"
    assert partition_key_for("Сценарий.fountain").startswith("stsenariy-")
    assert partition_key_for("脚本.fountain").startswith("jiaoben-")
    # The same name typed on macOS (decomposed) and Linux (composed) is one source.
    composed = "Café Society.fountain"
    assert partition_key_for(unicodedata.normalize("NFD", composed)) == partition_key_for(composed)


def evaluate(instance: Any, cursor: str | None) -> SensorResult:
    sensor = build_inbox_sensor(clock=lambda: NOW, policy=InboxPolicy(settle_seconds=10.0))
    result = sensor(build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, SensorResult)
    return result


def drop(name: str, text: str) -> Path:
    folder = inbox_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    os.utime(path, (NOW - 60, NOW - 60))
    return path


def test_inbox_keeps_two_all_cjk_names_apart(data_root: Path, instance: Any) -> None:
    drop("脚本.fountain", script("Jiaoben"))
    drop("台本.fountain", script("Taiben"))
    result = evaluate(instance, None)
    requests = result.run_requests or []
    assert len(requests) == 2, result.skip_reason
    keys = {str(r.partition_key) for r in requests}
    assert len(keys) == 2
    titles = {source_for(key).read_text(encoding="utf-8").splitlines()[0] for key in keys}
    assert titles == {"Title: Jiaoben", "Title: Taiben"}


def test_inbox_refuses_a_different_source_for_a_taken_key_unless_replace_is_configured(
    data_root: Path, instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop("The Ledger.fountain", script("First"))
    first = evaluate(instance, None)
    (request,) = first.run_requests or []
    key = str(request.partition_key)
    drop("the_ledger.fountain", script("Second"))  # another source, same slug
    second = evaluate(instance, first.cursor)
    assert not second.run_requests
    message = second.skip_reason.skip_message if second.skip_reason else ""
    assert "the_ledger.fountain" in (message or "") and "already holds a different source" in (message or "")
    assert source_for(key).read_text(encoding="utf-8").startswith("Title: First")
    # The refusal is remembered for this version of the file: the next tick does not try again.
    assert not evaluate(instance, second.cursor).run_requests

    monkeypatch.setenv("CINEFORGE_REPLACE_SOURCES", "1")
    third = evaluate(instance, first.cursor)
    (replaced,) = third.run_requests or []
    assert replaced.partition_key == key
    assert source_for(key).read_text(encoding="utf-8").startswith("Title: Second")


def ingest(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    code = cineforge_main(["ingest", str(path), "--provider", "offline", *extra])
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    summary["_stderr"] = captured.err
    return code, summary


@pytest.mark.usefixtures("data_root", "dagster_home")
def test_cli_refuses_to_replace_a_different_source_without_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "The Ledger.fountain"
    first.write_text(script("First"))
    code, summary = ingest(first, capsys)
    assert code == 0, summary["_stderr"]
    key = summary["partition"]
    scenes_before = Path(summary["artifacts"]["canonical_script"]).read_bytes()

    other = tmp_path / "the_ledger.fountain"
    other.write_text(script("Second"))
    code, summary = ingest(other, capsys)
    assert code == 3 and summary["success"] is False and summary["run_id"] is None
    assert "the_ledger.fountain" in summary["_stderr"] and "--replace" in summary["_stderr"]
    assert source_for(key).read_text().startswith("Title: First")
    assert (artifacts_dir() / "canonical_script" / f"{key}.json").read_bytes() == scenes_before

    code, summary = ingest(other, capsys, "--replace")
    assert code == 0 and summary["partition"] == key
    assert source_for(key).read_text().startswith("Title: Second")


@pytest.mark.usefixtures("data_root", "dagster_home")
def test_cli_ingests_two_all_cjk_names_into_two_partitions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partitions = {}
    for name, title in (("脚本.fountain", "Jiaoben"), ("台本.fountain", "Taiben")):
        path = tmp_path / name
        path.write_text(script(title), encoding="utf-8")
        code, summary = ingest(path, capsys)
        assert code == 0, summary["_stderr"]
        partitions[title] = summary["partition"]
    assert len(set(partitions.values())) == 2
    for title, key in partitions.items():
        canonical = json.loads((artifacts_dir() / "canonical_script" / f"{key}.json").read_text())
        assert canonical["title"] == title


@pytest.mark.usefixtures("dagster_home")
def test_cli_names_a_damaged_source_manifest_instead_of_a_traceback(
    tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ledger.fountain"
    path.write_text(script("Ledger"))
    register_source(path)
    manifest = data_root / "sources" / "ledger" / "current.json"
    manifest.write_text("{not json")
    code, summary = ingest(path, capsys)
    assert code == 3 and summary["success"] is False
    assert str(manifest) in summary["_stderr"] and "damaged source manifest" in summary["_stderr"]


def test_same_stem_in_another_format_is_the_same_source(tmp_path: Path, data_root: Path) -> None:
    (tmp_path / "ledger.fountain").write_text(script("One"))
    (tmp_path / "ledger.txt").write_text(script("Two"))
    assert register_source(tmp_path / "ledger.fountain") == register_source(tmp_path / "ledger.txt") == "ledger"
    (tmp_path / "Ledger!.txt").write_text(script("Three"))
    with pytest.raises(SourceConflictError, match="already holds a different source, 'ledger.txt'"):
        register_source(tmp_path / "Ledger!.txt")


# ------------------------------------------------------------------------------------ item 3: races


def _register_rounds(path: str, root: str, rounds: int, barrier: Any, results: Any) -> None:
    problems: list[str] = []
    for _ in range(rounds):
        barrier.wait()
        try:
            register_source(Path(path), root=Path(root))
        except Exception as exc:
            problems.append(f"register {Path(path).name}: {exc!r}")
    results.put(problems)  # one message at the end: a child blocked on a full queue could never exit


def _read_rounds(key: str, root: str, rounds: int, allowed: list[bytes], barrier: Any, results: Any) -> None:
    problems: list[str] = []
    for _ in range(rounds):
        barrier.wait()
        for _ in range(5):
            try:
                data = source_for(key, root=Path(root)).read_bytes()
                if data not in allowed:
                    problems.append(f"read a torn or foreign source ({len(data)} bytes)")
            except Exception as exc:
                problems.append(f"read: {exc!r}")
    results.put(problems)


@pytest.mark.slow
def test_concurrent_registrations_for_one_partition_never_leave_it_empty(tmp_path: Path) -> None:
    """Two real processes register ``ledger.fountain`` and ``ledger.txt`` at the same moment (a barrier
    per round) while a third reads the partition's source: it must always find one whole file."""
    root = tmp_path / "data"
    first, second = tmp_path / "ledger.fountain", tmp_path / "ledger.txt"
    first.write_text(script("Fountain") * 50)
    second.write_text(script("Text") * 50)
    register_source(first, root=root)
    rounds = 150
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(3), spawn.Queue()
    allowed = [first.read_bytes(), second.read_bytes()]
    workers = [
        spawn.Process(target=_register_rounds, args=(str(first), str(root), rounds, barrier, results)),
        spawn.Process(target=_register_rounds, args=(str(second), str(root), rounds, barrier, results)),
        spawn.Process(target=_read_rounds, args=("ledger", str(root), rounds, allowed, barrier, results)),
    ]
    for worker in workers:
        worker.start()
    problems = [problem for _ in workers for problem in results.get(timeout=300)]
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert not problems, f"{len(problems)} problems, e.g. {problems[:3]}"
    assert source_for("ledger", root=root).read_bytes() in allowed


@pytest.mark.slow
def test_two_concurrent_cli_ingests_for_one_partition_each_read_their_own_file(
    tmp_path: Path, data_root: Path, dagster_home: Path
) -> None:
    """Two real ``cineforge ingest`` processes for ``ledger.fountain`` and ``ledger.txt`` at once: each
    run's raw_input must have read its own file (before, one read the other's while tagged with its own)."""
    import subprocess
    import sys

    from cineforge_assets.sources import file_sha256

    files = []
    for name, title in (("ledger.fountain", "From Fountain"), ("ledger.txt", "From Text")):
        path = tmp_path / name
        path.write_text(script(title))
        files.append(path)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(PYTHONPATH=str(REPO), DAGSTER_HOME=str(dagster_home), CINEFORGE_DATA=str(data_root))
    with DagsterInstance.get() as instance:
        instance.get_runs(limit=1)  # create the SQLite storages before two processes race to do it
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cineforge_assets.cli", "ingest", str(path), "--provider", "offline"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for path in files
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err.decode()[-3000:] for _, err in outputs]
    summaries = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    with DagsterInstance.get() as instance:
        for path, summary in zip(files, summaries, strict=True):
            run = instance.get_run_by_id(summary["run_id"])
            assert run is not None and run.tags["cineforge/sha256"] == file_sha256(path)
            (record,) = instance.get_records_for_run(
                summary["run_id"], of_type=DagsterEventType.ASSET_MATERIALIZATION
            ).records[:1]
            materialization = record.event_log_entry.asset_materialization
            assert materialization is not None and materialization.asset_key == AssetKey("raw_input")
            assert materialization.metadata["sha256"].value == file_sha256(path)
            assert materialization.metadata["file"].value == path.name


def _materialize_raw_input(instance: DagsterInstance, key: str, tags: dict[str, str]) -> Any:
    if not instance.has_dynamic_partition("screenplays", key):
        instance.add_dynamic_partitions("screenplays", [key])
    return defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance,
        partition_key=key,
        asset_selection=[AssetKey("raw_input")],
        run_config=OFFLINE,
        tags=tags,
        raise_on_error=False,
    )


def _failure_message(instance: DagsterInstance, run_id: str) -> str:
    from dagster import DagsterEventType

    (record,) = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records
    event = record.event_log_entry.dagster_event
    assert event is not None and event.step_failure_data is not None
    user = event.step_failure_data.user_failure_data
    assert user is not None and user.metadata["error_class"].value == "permanent"
    return str(user.description)


def test_a_run_reads_the_version_it_was_requested_for(
    tmp_path: Path, data_root: Path, instance: DagsterInstance
) -> None:
    (tmp_path / "ledger.fountain").write_text(script("Requested"))
    (tmp_path / "ledger.txt").write_text(script("Dropped later"))
    requested = register_source_version(tmp_path / "ledger.fountain")
    later = register_source_version(tmp_path / "ledger.txt")  # the partition's current version now
    assert source_for("ledger") == later.path and requested.path.exists()

    result = _materialize_raw_input(instance, "ledger", requested.run_tags())
    assert result.success
    (materialization,) = result.asset_materializations_for_node("raw_input")
    assert materialization.metadata["sha256"].value == requested.sha256
    assert materialization.metadata["file"].value == "ledger.fountain"


def test_raw_input_refuses_a_source_that_changed_after_the_run_was_requested(
    tmp_path: Path, data_root: Path, instance: DagsterInstance
) -> None:
    (tmp_path / "ledger.fountain").write_text(script("Original"))
    registered = register_source_version(tmp_path / "ledger.fountain")
    registered.path.write_text(script("Edited in place"))
    result = _materialize_raw_input(instance, "ledger", registered.run_tags())
    assert not result.success
    message = _failure_message(instance, result.run_id)
    assert str(registered.path) in message and "changed after the run was requested" in message
    assert not (artifacts_dir() / "raw_input" / "ledger.json").exists()


def test_raw_input_refuses_a_tagged_path_outside_the_partition(
    tmp_path: Path, data_root: Path, instance: DagsterInstance
) -> None:
    (tmp_path / "ledger.fountain").write_text(script("Mine"))
    register_source(tmp_path / "ledger.fountain")
    secret = data_root / "secret.txt"
    secret.write_text("not a screenplay")
    result = _materialize_raw_input(instance, "ledger", {SOURCE_PATH_TAG: "secret.txt"})
    assert not result.success
    assert "outside the source folder" in _failure_message(instance, result.run_id)


# ------------------------------------------------------------------------------------ item 7


@pytest.mark.usefixtures("data_root", "dagster_home")
def test_title_page_only_fountain_fails_permanently_and_keeps_the_last_good_artifacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good" / "ledger.fountain"
    good.parent.mkdir()
    good.write_bytes(SAMPLE_FOUNTAIN.read_bytes())
    code, summary = ingest(good, capsys)
    assert code == 0, summary["_stderr"]
    key = summary["partition"]
    kept = {
        asset: (artifacts_dir() / asset / f"{key}.json").read_bytes() for asset in ("raw_input", "canonical_script")
    }

    title_only = tmp_path / "bad" / "ledger.fountain"
    title_only.parent.mkdir()
    title_only.write_text("Title: The Ledger\nCredit: Written by\nAuthor: Someone\nDraft date: today\n\n\n")
    code, summary = ingest(title_only, capsys)
    assert code == 1 and summary["success"] is False
    failure = summary["failure"]
    assert failure["error_class"] == "permanent"
    assert "ledger.fountain" in failure["message"]
    assert "no script body after the title page" in failure["message"]
    assert "no script body after the title page" in summary["_stderr"]
    for asset, before in kept.items():
        assert (artifacts_dir() / asset / f"{key}.json").read_bytes() == before, asset


class _RacedPartitions:
    """A store where another ingest adds the key between this one's check and its insert."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.inserts = 0

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        return partition_key in self.keys

    def add_dynamic_partitions(self, partitions_def_name: str, partition_keys: Sequence[str]) -> None:
        self.inserts += 1
        self.keys.update(partition_keys)  # the other process's insert landed first...
        raise sqlalchemy.exc.IntegrityError("INSERT INTO dynamic_partitions", None, Exception("UNIQUE constraint"))


def test_an_ingest_that_loses_the_race_to_add_its_partition_goes_on() -> None:
    store = _RacedPartitions()
    ensure_screenplay_partition(store, "ledger")  # ...so this one's insert breaks the unique key
    assert store.inserts == 1 and store.has_dynamic_partition("screenplays", "ledger")


def test_a_partition_insert_that_fails_for_another_reason_is_not_swallowed() -> None:
    class Broken(_RacedPartitions):
        def add_dynamic_partitions(self, partitions_def_name: str, partition_keys: Sequence[str]) -> None:
            raise sqlalchemy.exc.OperationalError("INSERT", None, Exception("disk I/O error"))

    with pytest.raises(sqlalchemy.exc.OperationalError):
        ensure_screenplay_partition(Broken(), "ledger")
