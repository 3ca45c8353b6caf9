"""In-process stand-ins for the resilience tests: a fake clock, scripted adapters, a recording listener.

The adapters implement the real ``ProviderAdapter`` protocol and fail with errors built by the real
``classify_http_error`` from the providers' real error envelopes, so the executor sees exactly what the
httpx adapters will hand it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from resources.providers.base import Completion, CompletionRequest
from resources.resilience.breaker_state import BreakerTransition
from resources.resilience.errors import ProviderError, classify_http_error
from resources.resilience.telemetry import AttemptRecord

EPOCH = 1_700_000_000.0


class FakeClock:
    """Epoch seconds that only move when told to; ``sleep`` advances them and is recorded."""

    def __init__(self, start: float = EPOCH) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


Responder = Callable[[str, CompletionRequest], str]


@dataclass
class Call:
    model: str
    request: CompletionRequest
    timeout: float


class FakeAdapter:
    """A ``ProviderAdapter`` whose answers come from ``responder(model, request)`` (text, or raises).

    Each call takes ``latency`` seconds of fake time.
    """

    def __init__(self, name: str, responder: Responder, clock: FakeClock, latency: float = 0.5) -> None:
        self.name = name
        self.responder = responder
        self.clock = clock
        self.latency = latency
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def complete(self, model: str, request: CompletionRequest, *, timeout: float) -> Completion:
        with self._lock:
            self.calls.append(Call(model, request, timeout))
            n = len(self.calls)
        self.clock.advance(min(self.latency, timeout))
        text = self.responder(model, request)
        return Completion(provider=self.name, model=model, text=text, request_id=f"{self.name}-req-{n}")

    def close(self) -> None:
        pass

    def models_called(self) -> list[str]:
        return [c.model for c in self.calls]


def http_error(
    provider: str, status: int, body: Any, headers: Mapping[str, str] | None = None, model: str = ""
) -> ProviderError:
    return classify_http_error(
        provider=provider, model=model, status=status, headers=headers or {}, body=body
    )


def anthropic_error(
    status: int, etype: str, message: str, headers: Mapping[str, str] | None = None
) -> ProviderError:
    body = {"type": "error", "error": {"type": etype, "message": message}}
    return http_error("anthropic", status, body, {"request-id": "req_011CTest", **(headers or {})})


def openai_error(
    status: int, etype: str, message: str, code: str | None = None, headers: Mapping[str, str] | None = None
) -> ProviderError:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return http_error("openai", status, body, {"x-request-id": "req_openai_test", **(headers or {})})


def gemini_error(status: int, rpc_status: str, message: str) -> ProviderError:
    return http_error("gemini", status, {"error": {"code": status, "message": message, "status": rpc_status}})


def always(error_factory: Callable[[], ProviderError]) -> Responder:
    def respond(model: str, request: CompletionRequest) -> str:
        raise error_factory()

    return respond


def answers(text: str) -> Responder:
    return lambda model, request: text


def sequence(*steps: str | Callable[[], ProviderError]) -> Responder:
    """Answer with each step in turn (a string is returned, a factory's error raised); repeat the last."""
    remaining = list(steps)

    def respond(model: str, request: CompletionRequest) -> str:
        step = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(step, str):
            return step
        raise step()

    return respond


@dataclass
class RecordingListener:
    attempts: list[AttemptRecord] = field(default_factory=list)
    transitions: list[BreakerTransition] = field(default_factory=list)

    def on_attempt(self, record: AttemptRecord) -> None:
        self.attempts.append(record)

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        self.transitions.append(transition)
