"""Hostile and careless input at the real entry points (issue 13 items 1, 4, 5, 8): ``cineforge ingest``,
the inbox sensor's evaluation and the ``raw_input`` materialization refuse the same files for the same
reasons, permanently, before anything is copied, inflated or run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance

from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.definitions import defs
from cineforge_assets.inbox import InboxCursor, InboxPolicy, scan_inbox
from cineforge_assets.paths import inbox_dir, sources_dir
from cineforge_assets.screenplay.formats.errors import SourceLimitError
from cineforge_assets.screenplay.formats.reader import read_source
from cineforge_assets.sources import MANIFEST_NAME, copy_source, register_source
from tests.cineforge_assets.test_inbox_sensor import FOUNTAIN, NOW, SETTLE, drop, evaluate
from tests.conftest import REPO_ROOT
from tests.hostile import docx_bomb, fdx_element_flood, pdf_flate_bomb

pytestmark = pytest.mark.usefixtures("data_root", "dagster_home")

DEFAULT_POLICY = InboxPolicy(settle_seconds=SETTLE)
SAMPLE = REPO_ROOT / "samples" / "the-lighthouse-keepers-ledger.fountain"
BOMBS: dict[str, Callable[[Path], Path]] = {
    "docx": lambda folder: docx_bomb(folder / "bomb.docx", expanded_mib=1536),
    "fdx": lambda folder: fdx_element_flood(folder / "flood.fdx", elements=2_000_000),
    "pdf": lambda folder: pdf_flate_bomb(folder / "bomb.pdf", expanded_mib=200),
}


def ingest(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any], str]:
    code = cineforge_main(["ingest", str(path), "--provider", "offline", *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured.err


def registered_files() -> list[Path]:
    """Stored source versions (``sources/<key>/<sha256>/<name>``), not the registry's current.json pointers."""
    if not sources_dir().exists():
        return []
    return sorted(p for p in sources_dir().rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def inbox_refusal(name: str, policy: InboxPolicy = DEFAULT_POLICY, now: float = NOW) -> tuple[str, str]:
    scan = scan_inbox(inbox_dir(), InboxCursor(), now=now, policy=policy)
    (skip,) = [s for s in scan.skipped if s.name == name]
    assert name not in {a.name for a in scan.accepted}
    return skip.kind, skip.reason


# ------------------------------------------------------------------------------ item 1: bombs


@pytest.mark.parametrize("kind", list(BOMBS))
def test_cli_and_inbox_refuse_a_bomb_for_the_same_reason(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], instance: DagsterInstance
) -> None:
    bomb = BOMBS[kind](tmp_path)
    code, summary, stderr = ingest(bomb, capsys)
    assert code == 3 and summary["success"] is False and summary["run_id"] is None
    failure = summary["failure"]
    assert failure["error_class"] == "permanent" and failure["limit"]
    assert f"cineforge: refused {bomb}: {bomb.name} ({kind}): " in stderr
    assert registered_files() == [] and instance.get_runs() == []  # nothing copied, nothing run

    drop(inbox_dir(), bomb.name, bomb.read_bytes())
    refused_kind, reason = inbox_refusal(bomb.name)
    assert refused_kind == "over_limit"
    problem = reason.removeprefix("over a limit: ")
    assert problem != reason and problem in failure["message"]
    result = evaluate(instance, None, policy=DEFAULT_POLICY)
    assert not result.run_requests
    assert f"{bomb.name}: over a limit: {problem}" in (result.skip_reason.skip_message or "")  # type: ignore[union-attr]


def test_cineforge_ingest_on_a_docx_bomb_exits_at_once_in_its_own_process(tmp_path: Path) -> None:
    """The command as a user runs it: a 1.5 GiB docx bomb ends with exit status 3 and one JSON line."""
    bomb = docx_bomb(tmp_path / "bomb.docx", expanded_mib=1536)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "cineforge_assets.cli", "ingest", str(bomb), "--provider", "offline"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["failure"]["limit"] == "CINEFORGE_MAX_EXPANDED_MB"
    assert "bomb.docx (docx): it expands to 1,536.0 MiB" in proc.stderr


def test_raw_input_fails_permanently_on_a_bomb_that_reached_the_registry(
    tmp_path: Path, instance: DagsterInstance
) -> None:
    """A bomb registered without screening (an older version, a copy by hand) is refused by the reader:
    one permanent failure naming the file and the limit, no retry, nothing downstream."""
    flood = fdx_element_flood(tmp_path / "flood.fdx", elements=2_000_000)
    key = register_source(flood)
    instance.add_dynamic_partitions("screenplays", [key])
    result = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False,
        run_config={"resources": {"ai": {"config": {"mode": "offline"}}}},
    )
    assert not result.success
    (failure,) = instance.get_records_for_run(result.run_id, of_type=DagsterEventType.STEP_FAILURE).records
    event = failure.event_log_entry.dagster_event
    assert event is not None and event.step_key == "raw_input"
    data = event.step_failure_data
    assert data is not None and data.user_failure_data is not None
    description = data.user_failure_data.description or ""
    assert "flood.fdx (fdx): it has over 2,000,00" in description and "limit of 500,000" in description
    assert data.user_failure_data.metadata["error_class"].value == "permanent"
    assert not instance.get_records_for_run(result.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY).records
    assert not result.asset_materializations_for_node("canonical_script")


# ------------------------------------------------------------------------------ item 4: one size limit


def test_cli_refuses_an_oversized_file_by_stat_before_copying(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.fountain"
    with big.open("wb") as out:
        out.truncate(11 * 1024 * 1024)  # sparse: the test writes nothing
    code, summary, stderr = ingest(big, capsys)
    assert code == 3 and summary["failure"]["limit"] == "CINEFORGE_MAX_SOURCE_MB"
    assert "big.fountain (fountain): the file is 11,534,336 bytes, over the 10,485,760-byte limit" in stderr
    assert registered_files() == []


def test_inbox_cli_and_reader_apply_one_configured_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, instance: DagsterInstance
) -> None:
    script = tmp_path / "kettle.fountain"
    script.write_text(FOUNTAIN * 40)  # ~3.6 kB
    registered = register_source(script)  # registered while the limit was the default
    monkeypatch.setenv("CINEFORGE_MAX_SOURCE_MB", "0.001")  # 1,048 bytes
    expected = f"the file is {script.stat().st_size:,} bytes, over the 1,048-byte limit on source files"

    code, summary, _ = ingest(script, capsys)
    assert code == 3 and expected in summary["failure"]["message"]
    drop(inbox_dir(), script.name, script.read_bytes())
    kind, reason = inbox_refusal(script.name, InboxPolicy.from_env())
    assert kind == "too_large" and expected in reason
    with pytest.raises(SourceLimitError, match=expected):
        read_source(script)
    instance.add_dynamic_partitions("screenplays", [registered])
    result = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
        instance=instance, partition_key=registered, raise_on_error=False,
        run_config={"resources": {"ai": {"config": {"mode": "offline"}}}},
    )
    assert not result.success
    (failure,) = instance.get_records_for_run(result.run_id, of_type=DagsterEventType.STEP_FAILURE).records
    step_failure = failure.event_log_entry.dagster_event.step_failure_data  # type: ignore[union-attr]
    assert expected in (step_failure.user_failure_data.description or "")  # type: ignore[union-attr]


def test_copy_source_streams_hashes_and_leaves_no_partial_file(tmp_path: Path) -> None:
    import hashlib

    copied = copy_source(SAMPLE, tmp_path / "out" / SAMPLE.name)
    assert copied.sha256 == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert copied.size == SAMPLE.stat().st_size and copied.path.read_bytes() == SAMPLE.read_bytes()
    assert [p.name for p in (tmp_path / "out").iterdir()] == [SAMPLE.name]


# ------------------------------------------------------------------------------ item 5: links and bad entries


def test_cli_refuses_a_symlink_unless_asked_to_follow_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    shadow = tmp_path / "shadow.txt"
    shadow.symlink_to(secret)
    code, summary, stderr = ingest(shadow, capsys)
    assert code == 3 and "shadow.txt (text): it is a symbolic link; links are not followed." in stderr
    assert "--follow-symlinks" in summary["failure"]["message"]
    assert registered_files() == []

    link = tmp_path / "ledger.fountain"
    link.symlink_to(SAMPLE)
    code, summary, _ = ingest(link, capsys, "--follow-symlinks")
    assert code == 0 and summary["success"] is True
    assert [p.read_bytes() for p in registered_files()] == [SAMPLE.read_bytes()]


def test_cli_refuses_a_pipe_without_waiting_for_a_writer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "script.fountain"
    os.mkfifo(fifo)
    code, _, stderr = ingest(fifo, capsys)
    assert code == 3 and "not a regular file" in stderr


def test_inbox_refuses_links_and_keeps_scanning_past_a_looping_one(tmp_path: Path, instance: Any) -> None:
    folder = inbox_dir()
    drop(folder, "kettle.fountain", FOUNTAIN)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    (folder / "shadow.txt").symlink_to(secret)
    (folder / "loop.fountain").symlink_to(folder / "loop.fountain")  # a self-looping link
    (folder / "drafts").mkdir()
    result = evaluate(instance, None, policy=DEFAULT_POLICY)
    assert [r.partition_key for r in result.run_requests or []] == ["kettle"]
    assert [p.name for p in registered_files()] == ["kettle.fountain"]  # the secret was never copied
    scan = scan_inbox(folder, InboxCursor(), now=NOW, policy=DEFAULT_POLICY)
    refused = {s.name: (s.kind, s.reason) for s in scan.skipped}
    assert refused["shadow.txt"][0] == refused["loop.fountain"][0] == "not_regular"
    assert "symbolic link" in refused["shadow.txt"][1] and "drafts" not in refused
    # Remembered: the next tick does not log them again.
    again = scan_inbox(folder, scan.cursor, now=NOW, policy=DEFAULT_POLICY)
    assert {s.name: s.new for s in again.skipped if s.kind == "not_regular"} == {
        "loop.fountain": False, "shadow.txt": False
    }


def test_an_unreadable_file_is_refused_and_the_others_still_run(
    instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PermissionError on one file (injected: the suite runs as root, which no mode bits stop)."""
    import cineforge_assets.inbox as inbox_module

    real_read = inbox_module.read_bounded

    def read_or_deny(path: Path, *args: Any, **kwargs: Any) -> bytes:
        if path.name == "locked.fountain":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(inbox_module, "read_bounded", read_or_deny)
    drop(inbox_dir(), "kettle.fountain", FOUNTAIN)
    drop(inbox_dir(), "locked.fountain", FOUNTAIN)
    result = evaluate(instance, None, policy=DEFAULT_POLICY)
    assert [r.partition_key for r in result.run_requests or []] == ["kettle"]
    kind, reason = inbox_refusal("locked.fountain")
    assert (kind, reason) == ("unreadable", "unreadable: Permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_refused(instance: Any) -> None:
    path = drop(inbox_dir(), "locked.fountain", FOUNTAIN)
    path.chmod(0)
    assert inbox_refusal("locked.fountain") == ("unreadable", "unreadable: Permission denied")


# ------------------------------------------------------------------------------ item 8: clock trust


def test_a_file_from_the_future_is_taken_now_with_a_warning(instance: Any) -> None:
    drop(inbox_dir(), "kettle.fountain", FOUNTAIN, age=-86_400.0)  # modified "tomorrow"
    scan = scan_inbox(inbox_dir(), InboxCursor(), now=NOW, policy=DEFAULT_POLICY)
    assert [a.name for a in scan.accepted] == ["kettle.fountain"]
    assert scan.warnings == [
        "kettle.fountain: modification time is 86,400s in the future (the writer's clock is ahead?); "
        "treated as settled now"
    ]
    result = evaluate(instance, None, policy=DEFAULT_POLICY)
    assert [r.partition_key for r in result.run_requests or []] == ["kettle"]
    # Taken once: the next tick sees the same fingerprint and neither runs nor warns again.
    later = scan_inbox(inbox_dir(), scan.cursor, now=NOW + 60, policy=DEFAULT_POLICY)
    assert later.accepted == [] and later.warnings == []


def test_a_file_a_moment_ahead_still_settles_normally() -> None:
    drop(inbox_dir(), "kettle.fountain", FOUNTAIN, age=-0.5)  # timestamp granularity, not a wrong clock
    scan = scan_inbox(inbox_dir(), InboxCursor(), now=NOW, policy=DEFAULT_POLICY)
    assert scan.accepted == [] and [s.kind for s in scan.skipped] == ["settling"] and scan.warnings == []
