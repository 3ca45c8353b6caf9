"""``cineforge status`` against a real breaker store (SQLite beside the instance), telemetry file and inbox."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from cineforge_assets.cli import main as cineforge_main
from cineforge_assets.status import breaker_statuses, clock_time, opening_reasons
from resources.resilience.breaker import CircuitBreaker, breaker_identity
from resources.resilience.breaker_state import BreakerRecord, BreakerTransition
from resources.resilience.breaker_store import default_store_url, store_from_url
from resources.resilience.telemetry import JsonlTelemetrySink

pytestmark = pytest.mark.usefixtures("data_root")

ANTHROPIC = breaker_identity("anthropic", "live", "https://api.anthropic.com")
OPENAI = breaker_identity("openai", "live", "https://api.openai.com/v1")


def seed_open_breaker(home: Path, data: Path, opened_at: float, reopens_at: float) -> None:
    store = store_from_url(default_store_url(home))
    try:
        store.update(
            ANTHROPIC,
            lambda _: (BreakerRecord(state="open", generation=3, opened_at=opened_at, reopens_at=reopens_at), None),
        )
        # A proven closed breaker: a success in the current window.
        bucket = int(time.time())
        store.update(OPENAI, lambda _: (BreakerRecord(window=((bucket, 5, 0),)), None))
    finally:
        store.close()
    sink = JsonlTelemetrySink(data / "telemetry" / "events.jsonl")
    sink.on_breaker_transition(BreakerTransition("anthropic", "closed", "open", "consecutive_failures", opened_at))
    sink.close()


def test_status_shows_the_open_breaker_until_its_reopening_time_with_why_and_the_inbox(
    dagster_home: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opened_at = time.time() - 5
    reopens_at = opened_at + 120
    seed_open_breaker(dagster_home, data_root, opened_at, reopens_at)
    inbox = data_root / "inbox"
    inbox.mkdir()
    (inbox / "notes.exe").write_bytes(b"MZ\x00\x00")
    (inbox / "harbor.fountain").write_text("INT. HARBOR - DAY\n\nMaria waits.\n")
    for settled in inbox.iterdir():  # older than the settle time: decided now, not left for a later tick
        os.utime(settled, (time.time() - 3600, time.time() - 3600))

    assert cineforge_main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"anthropic (live https://api.anthropic.com): open until {clock_time(reopens_at)} (in 1" in out, out
    assert "consecutive transient failures reached the threshold" in out
    assert "openai (live https://api.openai.com/v1): closed" in out
    assert "notes.exe: refused: unsupported type '.exe'" in out
    assert "harbor.fountain: waiting:" in out

    assert cineforge_main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (anthropic,) = [b for b in report["breakers"] if b["provider"] == "anthropic"]
    assert anthropic["state"] == "open" and anthropic["until"] == pytest.approx(reopens_at)
    assert anthropic["mode"] == "live" and anthropic["endpoint"] == "https://api.anthropic.com"
    assert {i["name"]: i["state"] for i in report["inbox"]} == {"notes.exe": "refused", "harbor.fountain": "waiting"}


def test_status_lists_the_last_runs_with_outcome_and_partition(
    instance: DagsterInstance, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    script = tmp_path / "harbor.fountain"
    script.write_text("INT. HARBOR - DAY\n\nMaria waits.\n\nMARIA\nHe will come back.\n")
    assert cineforge_main(["ingest", str(script), "--provider", "offline"]) == 0
    run_id = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    assert cineforge_main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (run,) = report["runs"]
    assert run["run_id"] == run_id and run["status"] == "success" and run["partition"] == "harbor"


def test_half_open_warming_and_parked_breakers_are_named() -> None:
    from resources.resilience.breaker_store import MemoryBreakerStore

    now = time.time()
    store = MemoryBreakerStore()
    store.update("anthropic@live:u", lambda _: (BreakerRecord(state="half_open", generation=2), None))
    store.update("openai@live:u", lambda _: (BreakerRecord(), None))  # never succeeded: warming
    store.update("gemini@live:u", lambda _: (BreakerRecord(parked_until=now + 600, parked_reason="daily quota"), None))
    rows = {r.provider: r for r in breaker_statuses(CircuitBreaker(store).snapshot(), {})}
    assert rows["anthropic"].state == "half-open"
    assert rows["openai"].state == "warming"
    assert rows["gemini"].state == "parked" and rows["gemini"].reason == "daily quota"


def test_an_open_breaker_without_its_transition_in_the_telemetry_says_so() -> None:
    from resources.resilience.breaker_store import MemoryBreakerStore

    store = MemoryBreakerStore()
    store.update("anthropic@live:u", lambda _: (BreakerRecord(state="open", opened_at=10.0, reopens_at=9e9), None))
    reasons = opening_reasons([{"kind": "breaker_transition", "provider": "anthropic", "to_state": "open", "at": 11.0}])
    (row,) = breaker_statuses(CircuitBreaker(store).snapshot(), reasons)
    assert row.state == "open" and row.reason == "reason not in the telemetry file"


def test_an_open_breaker_whose_cooldown_is_over_says_it_goes_half_open_at_the_next_call() -> None:
    from cineforge_assets.status import BreakerStatus, breaker_line

    row = BreakerStatus("anthropic@live:u", "anthropic", "live", "u", "open", until=100.0, reason="probe failed")
    assert breaker_line(row, now=50.0) == (
        f"anthropic (live u): open until {clock_time(100.0)} (in 50 s): probe failed"
    )
    assert breaker_line(row, now=150.0) == (
        f"anthropic (live u): open, time over since {clock_time(100.0)} (half-open at the next call): probe failed"
    )


def test_status_shows_live_spend_today_from_the_ledger_against_the_daily_budget(
    dagster_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from resources.resilience.budget import day_key, spend_store_from_url

    monkeypatch.setenv("CINEFORGE_DAILY_BUDGET_USD", "5")
    store = spend_store_from_url(default_store_url(dagster_home))
    try:
        now = time.time()
        store.update([day_key(now)], lambda _values: ({day_key(now): 1.25}, None))
        # A simulated drill's spend has its own daily key and is not today's live spend.
        store.update([day_key(now, "simulated")], lambda _values: ({day_key(now, "simulated"): 7.0}, None))
    finally:
        store.close()

    assert cineforge_main(["status"]) == 0
    assert "spend today: $1.25 of $5.00 daily budget" in capsys.readouterr().out
    assert cineforge_main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["spend"] == {"today_usd": 1.25, "daily_budget_usd": 5.0}


def drill(port: int, provider: str = "anthropic") -> str:
    paths = {"anthropic": "anthropic", "openai": "openai/v1", "gemini": "gemini"}
    return breaker_identity(provider, "simulated", f"http://127.0.0.1:{port}/{paths[provider]}")


def seed_live_and_old_drills(home: Path, now: float) -> None:
    """Live anthropic open (a real outage), live openai proven; four breakers left by drills on their own
    simulator ports: idle closed ones, one whose open period is long over, one still open."""
    store = store_from_url(default_store_url(home))
    bucket = int(now)
    try:
        store.update(
            ANTHROPIC,
            lambda _: (BreakerRecord(state="open", generation=1, opened_at=now - 5, reopens_at=now + 60), None),
        )
        store.update(OPENAI, lambda _: (BreakerRecord(window=((bucket, 5, 0),)), None))
        for key in (drill(41001), drill(41001, "openai")):
            store.update(key, lambda _: (BreakerRecord(), None))
        store.update(
            drill(41002),
            lambda _: (BreakerRecord(state="open", opened_at=now - 86_400, reopens_at=now - 86_000), None),
        )
        still_open = BreakerRecord(state="open", opened_at=now - 2, reopens_at=now + 30)
        store.update(drill(41003), lambda _: (still_open, None))
    finally:
        store.close()


def test_status_lists_the_modes_breakers_in_use_and_sums_up_old_drills_in_one_line(
    dagster_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("CINEFORGE_PROVIDER_MODE", "CINEFORGE_SIMULATOR_URL", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CINEFORGE_PROVIDER_MODE", "live")
    seed_live_and_old_drills(dagster_home, time.time())

    assert cineforge_main(["status"]) == 0
    out = capsys.readouterr().out
    breakers = out.split("last runs:")[0]
    assert "simulated http" not in breakers, breakers
    assert breakers.splitlines()[0] == "breakers (live):"
    assert "anthropic (live https://api.anthropic.com): open until" in breakers
    assert "openai (live https://api.openai.com/v1): closed" in breakers
    assert "not shown: 4 simulated (1 open, probing or parked)" in breakers

    assert cineforge_main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {b["mode"] for b in report["breakers"]} == {"live"}
    assert report["breaker_mode"] == "live"
    assert report["hidden_breakers"] == [{"mode": "simulated", "count": 4, "pending": 1, "stale": 0}]

    assert cineforge_main(["status", "--all-breakers", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [b["mode"] for b in report["breakers"]] == ["live"] * 2 + ["simulated"] * 4
    assert report["hidden_breakers"] == []


def test_a_simulated_view_lists_its_simulators_breakers_and_drills_still_open_not_finished_ones(
    dagster_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CINEFORGE_SIMULATOR_URL", "http://127.0.0.1:41001")
    seed_live_and_old_drills(dagster_home, time.time())

    assert cineforge_main(["status", "--mode", "simulated", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [b["key"] for b in report["breakers"]] == [drill(41001), drill(41001, "openai"), drill(41003)]
    assert report["hidden_breakers"] == [
        {"mode": "simulated", "count": 1, "pending": 0, "stale": 1},  # port 41002: over a day ago
        {"mode": "live", "count": 2, "pending": 1, "stale": 0},
    ]
    assert cineforge_main(["status", "--mode", "simulated"]) == 0
    out = capsys.readouterr().out
    assert "not shown: 1 stale simulated, 2 live (1 open, probing or parked)" in out


def test_offline_runs_call_no_provider_so_their_view_is_the_live_breakers() -> None:
    from cineforge_assets.status import BreakerStatus, pick_breakers

    live = BreakerStatus(ANTHROPIC, "anthropic", "live", "https://api.anthropic.com", "closed")
    old = BreakerStatus(drill(41001), "anthropic", "simulated", "http://127.0.0.1:41001/anthropic", "closed")
    shown, hidden = pick_breakers([old, live], mode="offline", current={ANTHROPIC}, now=0.0)
    assert shown == [live]
    assert [(h.mode, h.count) for h in hidden] == [("simulated", 1)]
