"""What ``cineforge`` tells a person on stderr: a line per stage, and plain words at the end.

No Dagster here. ``cli_events`` turns the run's event log into ``StepEvent`` and ``AttemptRecord``
values; the functions below turn those into words, and ``ProgressDisplay`` puts the words on the
terminal (a live ``rich`` display on a terminal, plain lines otherwise).

Words come from the attempt records only (provider, error code, status, class, request id): never a
provider's message or a request body, so nothing a provider echoed back (a key, a screenplay) is printed.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from resources.resilience.breaker_state import BreakerTransition
from resources.resilience.telemetry import AttemptRecord

StepEventKind = Literal["start", "success", "failure", "retry", "skipped", "activity"]

PROVIDER_NAMES: Mapping[str, str] = {
    "anthropic": "Anthropic",
    "openai": "OpenAI",
    "gemini": "Gemini",
    "veo": "Veo",
    "offline": "the offline engine",
}

# What a provider did, in words, by the error code the adapters record.
ERROR_WORDS: Mapping[str, str] = {
    "overloaded_error": "overloaded",
    "provider_overloaded": "overloaded",
    "rate_limit_error": "rate-limited",
    "daily_quota": "out of daily quota",
    "timeout_error": "timed out",
    "timeout": "timed out",
    "connection_error": "unreachable",
    "connection_reset": "reset the connection",
    "server_error": "server error",
    "api_error": "server error",
    "authentication_error": "rejected the API key",
    "permission_error": "refused access",
    "not_found_error": "does not know the model",
    "invalid_request_error": "refused the request as invalid",
    "request_too_large": "refused the request as too large",
    "safety_refusal": "refused the content for safety",
    "recitation": "refused the content (recitation)",
    "malformed_response": "answered malformed output",
    "invalid_output": "answered invalid output",
    "output_truncated": "cut the answer at its output limit",
    "breaker_open": "breaker open",
    "provider_warming": "warming up (breaker)",
    "provider_parked": "parked (daily quota)",
    "unsupported_parameter": "refused a parameter of the model",
}

# Why a breaker moved, by ``BreakerTransition.reason``.
BREAKER_WORDS: Mapping[str, str] = {
    "consecutive_failures": "opened after consecutive transient failures",
    "failure_rate": "opened on its failure rate",
    "warm_up_failed": "opened: every warm-up call failed",
    "probe_failed": "re-opened: the half-open probe failed",
    "probe_succeeded": "closed again: the probe succeeded",
    "cooldown_elapsed": "half-open after its cooldown",
}

CLASS_WORDS: Mapping[str, str] = {
    "transient": "transient: the providers kept failing past the retry budget — retried, then gave up",
    "permanent": "permanent: the request or the input cannot succeed as it is — not retried",
    "provider_unavailable": "provider-level: no usable provider (API key, access or model name) — not retried",
}

# Permanent failures whose cause the error code names more exactly than the class does.
PERMANENT_CODE_WORDS: Mapping[str, str] = {
    "invalid_request_error": "permanent: the provider refused the request as invalid — not retried",
    "request_too_large": "permanent: the provider refused the request as too large — not retried",
    "safety_refusal": "permanent: the provider refused the content for safety — not retried",
    "recitation": "permanent: the provider refused the content (recitation) — not retried",
    "malformed_response": "permanent: the answer was not valid output after one repair — not retried",
    "invalid_output": "permanent: the answer was not valid output after one repair — not retried",
}


@dataclass(frozen=True, slots=True)
class StepEvent:
    """One thing that happened to a stage (a Dagster step) of a run, as the console shows it.

    ``activity`` events carry a line of what the stage is doing (an attempt that failed, a B-roll clip
    polled); ``done`` / ``total`` when it says how far along the stage is.
    """

    kind: StepEventKind
    step: str
    at: float
    detail: str = ""
    done: int | None = None
    total: int | None = None


def format_seconds(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 05 s``."""
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


@dataclass(slots=True)
class StageTimes:
    """When each stage started, so its end line can say how long it took."""

    started: dict[str, float] = field(default_factory=dict)

    def line_for(self, event: StepEvent) -> str | None:
        """The line a finished (or retried, or skipped) stage gets; None for starts and activity."""
        if event.kind == "start":
            self.started.setdefault(event.step, event.at)
            return None
        took = event.at - self.started.get(event.step, event.at)
        if event.kind == "success":
            return f"{event.step} ... done in {format_seconds(took)}"
        if event.kind == "failure":
            return f"{event.step} ... failed after {format_seconds(took)}"
        if event.kind == "retry":
            self.started.pop(event.step, None)
            return f"{event.step} ... will retry" + (f": {event.detail}" if event.detail else "")
        if event.kind == "skipped":
            return f"{event.step} ... skipped (an earlier stage failed)"
        return None


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def error_words(record: AttemptRecord) -> str:
    """``overloaded``, ``rate-limited``... for an attempt's error code (the code itself if unknown)."""
    return ERROR_WORDS.get(record.error_code or "", record.error_code or "failed")


def stage_story(
    stage: str,
    attempts: Sequence[AttemptRecord],
    served_by: str | None,
    mode: str,
    transitions: Sequence[BreakerTransition] = (),
) -> str:
    """One line per stage: who served it and what happened on the way.

    ``scenes: Anthropic overloaded (transient, 529 x1), served by openai/gpt-5.2 (fallback)``. Failed
    calls are counted per provider, words and status; providers skipped without a call are named only
    when no call of theirs failed (``Anthropic skipped: breaker open``).
    """
    failed = [a for a in attempts if a.outcome == "error"]
    counted = Counter((a.provider, error_words(a), a.error_class or "", a.status) for a in failed)
    parts: list[str] = []
    for (provider, words, error_class, status), count in counted.items():
        shown = f"{status} x{count}" if status and status >= 400 else f"x{count}"
        detail = f"{error_class}, {shown}" if error_class else shown
        parts.append(f"{provider_name(provider)} {words} ({detail})")
    failed_providers = {a.provider for a in failed}
    skipped: dict[str, str] = {}
    for a in attempts:
        if a.outcome == "skipped" and a.provider not in failed_providers:
            skipped.setdefault(a.provider, error_words(a))
    parts.extend(f"{provider_name(p)} skipped: {why}" for p, why in skipped.items())
    parts.extend(
        f"{provider_name(t.provider)} breaker {BREAKER_WORDS.get(t.reason, f'{t.from_state} -> {t.to_state}')}"
        for t in transitions
    )
    if served_by:
        served = f"served by {served_by}"
        if served_by.startswith("offline/") and mode != "offline":
            served += " (offline fallback: a degraded answer)"
        elif attempts and attempts[0].provider != served_by.split("/")[0]:
            served += " (fallback)"
        elif parts:
            served += " (after retries)"
        parts.append(served)
    elif not parts:
        parts.append("done")
    return f"{stage}: {', '.join(parts)}"


def failure_words(failure: Mapping[str, Any]) -> str:
    """The error class of a failed stage in words (the code's own words for permanent refusals)."""
    error_class = str(failure.get("error_class") or "unknown")
    code = str(failure.get("error_code") or "")
    if error_class == "permanent" and code in PERMANENT_CODE_WORDS:
        return PERMANENT_CODE_WORDS[code]
    return CLASS_WORDS.get(error_class, f"{error_class}: the stage failed")


def resume_command(run_id: str, environ: Mapping[str, str], program: str = "cineforge") -> str:
    """The exact command that resumes ``run_id``: the instance and data folders it needs, then the call."""
    settings = [
        f"{name}={shlex.quote(environ[name])}" for name in ("DAGSTER_HOME", "CINEFORGE_DATA") if environ.get(name)
    ]
    return " ".join([*settings, shlex.quote(program), "resume", shlex.quote(run_id)])


def summary_lines(
    summary: Mapping[str, Any],
    attempts_by_stage: Mapping[str, Sequence[AttemptRecord]],
    *,
    resume: str | None = None,
    transitions_by_stage: Mapping[str, Sequence[BreakerTransition]] | None = None,
) -> list[str]:
    """Plain words before the JSON line: a line per AI stage, then the failure (class, request id, resume)."""
    served_by: Mapping[str, str] = summary.get("served_by") or {}
    mode = str(summary.get("mode") or "")
    transitions = transitions_by_stage or {}
    stages = list(dict.fromkeys([*served_by, *attempts_by_stage, *transitions]))
    lines = [
        stage_story(stage, attempts_by_stage.get(stage, ()), served_by.get(stage), mode, transitions.get(stage, ()))
        for stage in stages
    ]
    failure: Mapping[str, Any] | None = summary.get("failure")
    if summary.get("success"):
        lines.append(f"run {summary.get('run_id')} succeeded")
        return lines
    if failure is None:
        return lines
    step = failure.get("step") or "an unknown stage"
    lines.append(f"failed at {step}: {failure_words(failure)}")
    message = str(failure.get("message") or "").strip()
    if message:
        lines.append(f"  reason: {message.splitlines()[0][:300]}")
    who = "/".join(str(failure[k]) for k in ("provider", "model") if failure.get(k))
    facts = [
        f"provider {who}" if who else "",
        f"request id {failure['request_id']}" if failure.get("request_id") else "",
    ]
    if any(facts):
        lines.append("  " + ", ".join(fact for fact in facts if fact))
    if resume:
        lines.append(f"  resume with: {resume}")
    return lines


def wants_color(environ: Mapping[str, str] = os.environ) -> bool:
    """False when ``NO_COLOR`` is set to anything non-empty (https://no-color.org)."""
    return not environ.get("NO_COLOR")


class ProgressDisplay:
    """Stage lines on ``stream``: a live ``rich`` display of running stages on a terminal, plain lines
    (one per finished stage) otherwise. ``rich`` draws the spinner and bar; nothing is drawn by hand."""

    def __init__(self, stream: IO[str], *, color: bool = True, live: bool | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=stream, no_color=not color, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal if live is None else live
        self.times = StageTimes()
        self._tasks: dict[str, Any] = {}
        self._progress: Any = None
        if self.live:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.fields[step]}"),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()

    def say(self, line: str) -> None:
        """A line that stays (above the live display on a terminal)."""
        self.console.print(line, markup=False, highlight=False)

    def feed(self, events: Iterable[StepEvent]) -> None:
        for event in events:
            line = self.times.line_for(event)
            if self._progress is not None:
                self._update_live(event)
            if line is not None:
                self.say(line)

    def _update_live(self, event: StepEvent) -> None:
        progress = self._progress
        task = self._tasks.get(event.step)
        if event.kind == "start" and task is None:
            self._tasks[event.step] = progress.add_task("", step=event.step, total=None)
        elif event.kind == "activity" and task is not None:
            progress.update(task, description=event.detail, total=event.total, completed=event.done or 0)
        elif event.kind in ("success", "failure", "retry", "skipped") and task is not None:
            progress.remove_task(self._tasks.pop(event.step))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
