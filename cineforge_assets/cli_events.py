"""The run's Dagster event log, read for the console: step events as they happen, attempts afterwards.

A thin shell over ``DagsterInstance``: the words are ``console``'s. Reading the event log (rather than
hooking a logger into the run) works the same for in-process runs and for steps on Celery workers or
Kubernetes pods, whose events reach the CLI only through the instance.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from cineforge_assets.console import ProgressDisplay, StepEvent, error_words, provider_name
from cineforge_assets.run_tags import CLI_INVOCATION_TAG
from resources.resilience.breaker_state import BreakerTransition
from resources.resilience.telemetry import AttemptRecord

logger = logging.getLogger(__name__)

# Observations the provider layer writes for every attempt that did not simply succeed (run_events.py).
ATTEMPT_EVENTS = frozenset({"stage_retrying", "stage_fallback", "stage_failed"})
POLL_SECONDS = 0.25


def _value(metadata: Any, key: str) -> Any:
    raw = metadata.get(key) if metadata else None
    return getattr(raw, "value", raw)


def attempt_from_metadata(metadata: Any, at: float) -> AttemptRecord | None:
    """The ``AttemptRecord`` an attempt observation was made from (None for other observations)."""
    if _value(metadata, "event") not in ATTEMPT_EVENTS:
        return None
    status = _value(metadata, "status")
    decision = str(_value(metadata, "decision") or "stop")
    return AttemptRecord.model_construct(
        ts=at,
        stage=str(_value(metadata, "stage") or ""),
        attempt=int(_value(metadata, "attempt") or 0),
        provider=str(_value(metadata, "provider") or ""),
        model=str(_value(metadata, "model") or ""),
        request_id=_value(metadata, "request_id"),
        # A skip is a chain entry passed over without a call: no HTTP status.
        outcome="skipped" if decision == "skip_provider" and status is None else "error",
        error_code=_value(metadata, "error_code"),
        error_class=_value(metadata, "error_class"),
        status=int(status) if status is not None else None,
        delay_s=float(_value(metadata, "delay_s") or 0.0),
        decision=decision,
        terminal_reason=_value(metadata, "terminal_reason"),
    )


def _observation(record: Any) -> tuple[str, Any] | None:
    event = record.event_log_entry.dagster_event
    data = event.event_specific_data if event is not None else None
    observation = getattr(data, "asset_observation", None)
    if observation is None:
        return None
    return observation.asset_key.to_user_string(), observation.metadata


def transition_from_metadata(metadata: Any, at: float) -> BreakerTransition | None:
    """The ``BreakerTransition`` a ``breaker_<state>`` observation was made from (None for others)."""
    if not str(_value(metadata, "event") or "").startswith("breaker_"):
        return None
    return BreakerTransition(
        provider=str(_value(metadata, "provider") or ""),
        from_state=_value(metadata, "from_state"),
        to_state=_value(metadata, "to_state"),
        reason=_value(metadata, "reason"),
        at=at,
    )


def run_story(instance: Any, run_id: str) -> tuple[dict[str, list[AttemptRecord]], dict[str, list[BreakerTransition]]]:
    """asset -> the attempts of its provider calls that failed or were skipped, and asset -> the breaker
    transitions its calls caused, in order."""
    from dagster import DagsterEventType

    attempts: dict[str, list[AttemptRecord]] = {}
    transitions: dict[str, list[BreakerTransition]] = {}
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_OBSERVATION).records:
        found = _observation(record)
        if found is None:
            continue
        asset, metadata = found
        at = record.event_log_entry.timestamp
        attempt = attempt_from_metadata(metadata, at)
        if attempt is not None:
            attempts.setdefault(asset, []).append(attempt)
        transition = transition_from_metadata(metadata, at)
        if transition is not None:
            transitions.setdefault(asset, []).append(transition)
    return attempts, transitions


def _activity_detail(metadata: Any) -> str:
    attempt = attempt_from_metadata(metadata, 0.0)
    if attempt is not None:
        status = f" ({attempt.status})" if attempt.status else ""
        return f"{provider_name(attempt.provider)} {error_words(attempt)}{status} -> {attempt.decision}"
    return str(_value(metadata, "event") or "")


def step_events(records: Iterable[Any]) -> list[StepEvent]:
    """Console events for event-log records (step start/success/failure/retry/skip, observations)."""
    from dagster import DagsterEventType

    kinds = {
        DagsterEventType.STEP_START: "start",
        DagsterEventType.STEP_SUCCESS: "success",
        DagsterEventType.STEP_FAILURE: "failure",
        DagsterEventType.STEP_UP_FOR_RETRY: "retry",
        DagsterEventType.STEP_SKIPPED: "skipped",
    }
    out: list[StepEvent] = []
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        kind = kinds.get(event.event_type)
        if kind is not None:
            out.append(StepEvent(kind, event.step_key, entry.timestamp))  # type: ignore[arg-type]
        elif event.event_type == DagsterEventType.ASSET_OBSERVATION:
            found = _observation(record)
            if found is not None:
                done, total = _value(found[1], "done"), _value(found[1], "total")
                out.append(
                    StepEvent(
                        "activity",
                        event.step_key,
                        entry.timestamp,
                        _activity_detail(found[1]),
                        done=int(done) if isinstance(done, int) else None,
                        total=int(total) if isinstance(total, int) else None,
                    )
                )
    return out


class RunWatcher:
    """Feeds a ``ProgressDisplay`` from the event log of the run tagged ``CLI_INVOCATION_TAG=token`` while it
    runs (a background thread polling the instance; the run may be in this process or on workers)."""

    def __init__(
        self, instance: Any, token: str, display: ProgressDisplay, *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.instance = instance
        self.token = token
        self.display = display
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cineforge-progress", daemon=True)
        self._run_id: str | None = None
        self._cursor: str | None = None

    def __enter__(self) -> RunWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()  # whatever arrived after the last tick
        self.display.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._poll()

    def _find_run(self) -> str | None:
        from dagster import RunsFilter

        runs = self.instance.get_runs(filters=RunsFilter(tags={CLI_INVOCATION_TAG: self.token}), limit=1)
        return runs[0].run_id if runs else None

    def _poll(self) -> None:
        try:
            if self._run_id is None:
                self._run_id = self._find_run()
                if self._run_id is None:
                    return
            self._drain(self.instance.get_records_for_run)
        except Exception:  # a busy SQLite read must not end the run: the next tick reads again
            logger.debug("progress poll failed", exc_info=True)

    def _drain(self, read: Callable[..., Any]) -> None:
        while True:
            connection = read(self._run_id, cursor=self._cursor, limit=500)
            self._cursor = connection.cursor
            self.display.feed(step_events(connection.records))
            if not connection.has_more:
                return
