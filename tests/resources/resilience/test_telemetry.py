"""The JSONL sink: whole lines under concurrency, no secrets, both record kinds."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from resources.resilience.breaker_state import BreakerTransition
from resources.resilience.telemetry import AttemptRecord, JsonlTelemetrySink

RECORD = AttemptRecord(
    ts=1_700_000_000.25,
    stage="normalize",
    attempt=1,
    provider="anthropic",
    model="claude-sonnet-4-6",
    request_id="req_011CTest",
    outcome="error",
    error_code="overloaded_error",
    error_class="transient",
    status=529,
    decision="fallback_next_provider",
    latency_s=0.5,
    breaker_state="closed",
    run_id="run-1",
    partition="big-fish",
)


def test_lines_carry_their_kind_and_every_field(tmp_path: Path) -> None:
    sink = JsonlTelemetrySink(tmp_path / "nested" / "t.jsonl")
    sink.on_attempt(RECORD)
    sink.on_breaker_transition(BreakerTransition("anthropic", "closed", "open", "consecutive_failures", 5.0))
    sink.close()
    attempt, transition = (
        json.loads(line) for line in (tmp_path / "nested" / "t.jsonl").read_text().splitlines()
    )
    assert attempt == {"kind": "attempt", **RECORD.model_dump(mode="json")}
    assert transition == {
        "kind": "breaker_transition",
        "provider": "anthropic",
        "from_state": "closed",
        "to_state": "open",
        "reason": "consecutive_failures",
        "at": 5.0,
    }


def test_attempt_records_have_no_room_for_payloads() -> None:
    assert set(AttemptRecord.model_fields) == {
        "ts",
        "stage",
        "attempt",
        "provider",
        "model",
        "request_id",
        "outcome",
        "error_code",
        "error_class",
        "status",
        "delay_s",
        "decision",
        "terminal_reason",
        "latency_s",
        "breaker_state",
        "run_id",
        "partition",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "max_tokens",
        "truncated",
        "cost_usd",
        "first_model_cost_usd",
    }


def test_whole_lines_from_many_threads(tmp_path: Path) -> None:
    sink = JsonlTelemetrySink(tmp_path / "t.jsonl")

    def write() -> None:
        for _ in range(200):
            sink.on_attempt(RECORD)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    assert len(lines) == 800
    assert all(json.loads(line) == json.loads(lines[0]) for line in lines)


def _append_many(path: str, count: int, marker: str) -> None:
    sink = JsonlTelemetrySink(path)
    record = RECORD.model_copy(update={"run_id": marker * 2000})  # long lines make interleaving visible
    for _ in range(count):
        sink.on_attempt(record)
    sink.close()


@pytest.mark.slow
def test_whole_lines_from_several_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "t.jsonl")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_append_many, args=(path, 300, marker)) for marker in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    lines = Path(path).read_text().splitlines()
    assert len(lines) == 600
    run_ids = [json.loads(line)["run_id"] for line in lines]
    assert sorted(set(run_ids)) == ["a" * 2000, "b" * 2000]


def test_a_trusted_record_is_the_record_model_construct_builds() -> None:
    fields = RECORD.model_dump()
    assert len(fields) == len(AttemptRecord.model_fields)
    trusted, constructed = AttemptRecord.trusted(**fields), AttemptRecord.model_construct(**fields)
    assert trusted == constructed == RECORD
    assert trusted.model_fields_set == constructed.model_fields_set
    assert trusted.model_dump_json() == RECORD.model_dump_json()
    assert trusted.model_copy(update={"attempt": 2}).attempt == 2
    with pytest.raises(ValidationError):  # still frozen
        trusted.attempt = 3  # type: ignore[misc]


def test_a_trusted_record_missing_fields_gets_their_defaults() -> None:
    fields = RECORD.model_dump(exclude={"run_id", "partition", "delay_s"})
    record = AttemptRecord.trusted(**fields)
    assert (record.run_id, record.partition, record.delay_s) == (None, None, 0.0)


def test_a_sink_stamps_its_mode_on_every_kind_of_line_and_a_line_without_one_reads_as_unknown(
    tmp_path: Path,
) -> None:
    from resources.resilience.telemetry import UNKNOWN_MODE, line_mode

    path = tmp_path / "t.jsonl"
    sink = JsonlTelemetrySink(path, mode="simulated")
    sink.on_attempt(RECORD)
    sink.on_stage_cost({"ts": 1.0, "stage": "normalize", "cost_usd": 0.5})
    sink.on_breaker_transition(BreakerTransition("anthropic", "closed", "open", "consecutive_failures", 5.0))
    sink.close()
    legacy = JsonlTelemetrySink(path)  # as every line was written before modes were stamped
    legacy.on_attempt(RECORD)
    legacy.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line_mode(line) for line in lines] == ["simulated", "simulated", "simulated", UNKNOWN_MODE]
    assert lines[0] == {"kind": "attempt", "mode": "simulated", **RECORD.model_dump(mode="json")}
    assert "mode" not in lines[3]
