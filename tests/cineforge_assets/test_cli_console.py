"""The console's words, from attempt records and step events alone (no Dagster, no run)."""

from __future__ import annotations

import io
import shlex
from typing import Any

from cineforge_assets.console import (
    ProgressDisplay,
    StageTimes,
    StepEvent,
    failure_words,
    format_seconds,
    resume_command,
    stage_story,
    summary_lines,
    wants_color,
)
from resources.resilience.telemetry import AttemptRecord


def attempt(provider: str, code: str | None, *, status: int | None, decision: str, **extra: Any) -> AttemptRecord:
    outcome = "skipped" if decision == "skip_provider" and status is None else "error"
    return AttemptRecord(
        ts=0.0,
        stage="extract_scenes",
        attempt=1,
        provider=provider,
        model="m",
        outcome=outcome,
        error_code=code,
        error_class="transient",
        status=status,
        decision=decision,  # type: ignore[arg-type]
        **extra,
    )


def test_a_fallback_names_who_failed_how_often_the_class_and_who_served() -> None:
    attempts = [
        attempt("anthropic", "overloaded_error", status=529, decision="fallback_next_provider"),
        attempt("anthropic", "provider_overloaded", status=None, decision="skip_provider"),
    ]
    line = stage_story("scenes", attempts, "openai/gpt-5.2", "simulated")
    assert line == "scenes: Anthropic overloaded (transient, 529 x1), served by openai/gpt-5.2 (fallback)"


def test_repeated_failures_are_counted_and_retries_on_the_same_provider_are_not_a_fallback() -> None:
    attempts = [attempt("anthropic", "rate_limit_error", status=429, decision="retry_same_model")] * 3
    line = stage_story("project_config", attempts, "anthropic/claude-haiku", "live")
    expected = "project_config: Anthropic rate-limited (transient, 429 x3), served by anthropic/claude-haiku"
    assert line == expected + " (after retries)"


def test_a_provider_skipped_without_a_call_is_named_with_why() -> None:
    attempts = [attempt("anthropic", "breaker_open", status=None, decision="skip_provider")]
    line = stage_story("scenes", attempts, "openai/gpt-5.2", "live")
    assert line == "scenes: Anthropic skipped: breaker open, served by openai/gpt-5.2 (fallback)"


def test_the_offline_engine_serving_a_non_offline_run_is_called_degraded() -> None:
    assert "degraded" in stage_story("scenes", [], "offline/offline", "live")
    assert stage_story("scenes", [], "offline/offline", "offline") == "scenes: served by offline/offline"


def test_a_failure_says_the_stage_the_class_in_words_the_request_id_and_the_resume_command() -> None:
    summary = {
        "run_id": "r-1",
        "success": False,
        "mode": "live",
        "served_by": {},
        "failure": {
            "step": "scenes",
            "error_class": "permanent",
            "error_code": "invalid_request_error",
            "message": "extract_scenes: permanent provider error, not retried",
            "provider": "anthropic",
            "model": "claude-sonnet-4-6",
            "request_id": "req_42",
        },
    }
    lines = summary_lines(summary, {}, resume="cineforge resume r-1")
    assert "failed at scenes: permanent: the provider refused the request as invalid — not retried" in lines
    assert "  provider anthropic/claude-sonnet-4-6, request id req_42" in lines
    assert lines[-1] == "  resume with: cineforge resume r-1"


def test_failure_classes_in_words() -> None:
    assert failure_words({"error_class": "transient"}).startswith("transient: ")
    assert "not retried" in failure_words({"error_class": "provider_unavailable"})
    assert failure_words({"error_class": "permanent", "error_code": "safety_refusal"}).endswith("not retried")


def test_the_resume_command_carries_the_instance_and_data_folders_quoted() -> None:
    command = resume_command("abc", {"DAGSTER_HOME": "/srv/my home", "CINEFORGE_DATA": "/d", "PATH": "x"})
    assert shlex.split(command) == ["DAGSTER_HOME=/srv/my home", "CINEFORGE_DATA=/d", "cineforge", "resume", "abc"]


def test_stage_lines_say_how_long_each_stage_took() -> None:
    times = StageTimes()
    assert times.line_for(StepEvent("start", "scenes", 100.0)) is None
    assert times.line_for(StepEvent("success", "scenes", 100.42)) == "scenes ... done in 0.4 s"
    times.line_for(StepEvent("start", "project_config", 200.0))
    assert times.line_for(StepEvent("failure", "project_config", 275.0)) == "project_config ... failed after 1 min 15 s"
    assert (
        times.line_for(StepEvent("skipped", "veo3_broll", 276.0)) == "veo3_broll ... skipped (an earlier stage failed)"
    )
    assert format_seconds(12.4) == "12 s"


def test_off_a_terminal_the_display_writes_one_plain_line_per_finished_stage_and_no_colour_codes() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream)
    display.feed(
        [
            StepEvent("start", "scenes", 1.0),
            StepEvent("activity", "scenes", 1.1, "Anthropic overloaded (529) -> fallback_next_provider"),
            StepEvent("success", "scenes", 1.5),
        ]
    )
    display.close()
    assert stream.getvalue() == "scenes ... done in 0.5 s\n"


def test_on_a_terminal_the_live_display_draws_running_stages_and_keeps_the_done_line() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream, live=True, color=False)
    display.feed(
        [StepEvent("start", "veo3_broll", 1.0), StepEvent("activity", "veo3_broll", 1.2, "polling", done=1, total=3)]
    )
    display.feed([StepEvent("success", "veo3_broll", 3.0)])
    display.close()
    assert "veo3_broll ... done in 2.0 s" in stream.getvalue()
    assert "\x1b[3" not in stream.getvalue()  # no colour with color=False


def test_no_color_is_honoured() -> None:
    assert wants_color({}) is True
    assert wants_color({"NO_COLOR": "1"}) is False


def test_a_breaker_the_stage_opened_is_told_with_why() -> None:
    from resources.resilience.breaker_state import BreakerTransition

    attempts = [attempt("anthropic", "overloaded_error", status=529, decision="fallback_next_provider")]
    opened = BreakerTransition("anthropic", "closed", "open", "warm_up_failed", 5.0)
    line = stage_story("project_config", attempts, "openai/gpt-4.1", "simulated", [opened])
    assert line == (
        "project_config: Anthropic overloaded (transient, 529 x1), Anthropic breaker opened: every warm-up call"
        " failed, served by openai/gpt-4.1 (fallback)"
    )
