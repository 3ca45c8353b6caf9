"""Named, seedable fault profiles for the provider simulator.

A ``FaultProfile`` is an ordered list of ``FaultRule``s. For every provider call the injector walks the
rules in order; the first rule that matches (provider, model glob, task, time window) and wins its
probability draw decides the fault. Time windows are measured on an injectable clock from the moment
the profile was set (or the simulator was reset), so tests can move time without sleeping.

Profiles are written as specs: ``name`` or ``name:key=value,key=value``; ``a+b`` concatenates the rules
of several profiles; a spec starting with ``{`` is a ``FaultProfile`` as JSON; a path to an existing
``.json`` file is loaded from disk.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal[
    "overloaded",
    "rate_limit",
    "server_error",
    "timeout",
    "reset",
    "malformed_json",
    "safety",
    "auth",
    "bad_request",
    "invalid_output",
    "overloaded_no_retry",
    "daily_quota",
    "echo_key",
    "billing",
    # Answers the real services give that are not failures of theirs but that a client must read right:
    "reasoning",  # a thinking model's answer: reasoning tokens billed as output, reported per provider
    "window_exhausted",  # Anthropic: stop_reason model_context_window_exceeded (others: their length cut)
    "request_over_tpm",  # OpenAI: 429 "Request too large ... tokens per min": never succeeds by waiting
    "token_rate_limit",  # OpenAI: 429 on tokens per minute, no retry-after; the wait as a Go duration
    "not_found",  # 404 for the model: retired, renamed, or not open to this key
    "candidate_stopped",  # Gemini: a candidate with finishReason `reason` and no content (others answer normally)
    "proxy_html",  # the CDN in front answers 502 with its own HTML page, not the provider's JSON
    "temperature_loop",  # Gemini 3 given a temperature below its default 1.0 loops to the ceiling
    "garbled_gzip",  # 200, gzip-encoded like the real APIs' answers, the compressed bytes damaged
    "prompt_cached",  # OpenAI/Gemini: a repeated prompt served from the prompt cache, reported in the usage
]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
Clock = Callable[[], float]


class FaultRule(BaseModel):
    """One way to fail. ``duration_s=None`` means until the profile changes."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    provider: str = "*"
    model: str = "*"
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    start_s: float = Field(default=0.0, ge=0.0)
    duration_s: float | None = Field(default=None, ge=0.0)
    retry_after: float | None = Field(default=None, ge=0.0)
    only_tasks: list[str] | None = None
    # How long a ``timeout`` fault holds the response: longer than any sane client timeout.
    hold_s: float = Field(default=30.0, ge=0.0)
    # Fire at most this many times (then the rule is spent): injects "fails N times, then recovers"
    # without any clock, which is what tests of retry budgets need.
    max_hits: int | None = Field(default=None, ge=0)
    # ``candidate_stopped``: the Gemini ``finishReason`` of the candidate (LANGUAGE, RECITATION, OTHER, ...).
    reason: str = "OTHER"
    # Headers that replace the answer's own (same name) or are added to it: odd retry hints
    # (``retry-after-ms: nan``, an HTTP date in ``-0000`` form) exactly as a proxy or provider sends them.
    headers: dict[str, str] | None = None

    def active_at(self, elapsed_s: float) -> bool:
        if elapsed_s < self.start_s:
            return False
        return self.duration_s is None or elapsed_s < self.start_s + self.duration_s

    def matches(self, provider: str, model: str, task: str | None) -> bool:
        if not fnmatch.fnmatchcase(provider, self.provider) or not fnmatch.fnmatchcase(model, self.model):
            return False
        return self.only_tasks is None or (task is not None and task in self.only_tasks)


class FaultProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    description: str = ""
    rules: list[FaultRule] = Field(default_factory=list)


# ---------------------------------------------------------------- named profiles


class _Params:
    """``key=value`` overrides of a named profile, typed on read; unknown keys are an error."""

    def __init__(self, profile: str, raw: dict[str, str]) -> None:
        self.profile = profile
        self.raw = raw
        self.used: set[str] = set()

    def text(self, key: str, default: str) -> str:
        self.used.add(key)
        return self.raw.get(key, default)

    def number(self, key: str, default: float) -> float:
        self.used.add(key)
        try:
            return float(self.raw[key]) if key in self.raw else default
        except ValueError:
            raise ValueError(f"profile {self.profile!r}: {key}={self.raw[key]!r} is not a number") from None

    def optional_number(self, key: str) -> float | None:
        return self.number(key, 0.0) if key in self.raw else None

    def tasks(self) -> list[str] | None:
        self.used.add("tasks")
        value = self.raw.get("tasks")
        return [t for t in value.replace("+", "|").split("|") if t] if value else None

    def check_all_used(self) -> None:
        unknown = set(self.raw) - self.used
        if unknown:
            raise ValueError(f"profile {self.profile!r} has no parameter(s) {sorted(unknown)}")


def _none(p: _Params) -> list[FaultRule]:
    return []


def _overload_storm(p: _Params) -> list[FaultRule]:
    return [
        FaultRule(
            kind="overloaded",
            provider=p.text("provider", "anthropic"),
            model=p.text("model", "*"),
            start_s=p.number("start", 0.0),
            duration_s=p.number("duration", 20.0),
            retry_after=p.optional_number("retry_after"),
        )
    ]


def _primary_down(p: _Params) -> list[FaultRule]:
    return [
        FaultRule(kind="overloaded", provider=p.text("provider", "anthropic"), model=p.text("model", "*"))
    ]


def _rate_limit(p: _Params) -> list[FaultRule]:
    return [
        FaultRule(
            kind="rate_limit",
            provider=p.text("provider", "anthropic"),
            model=p.text("model", "*"),
            start_s=p.number("start", 0.0),
            duration_s=p.number("duration", 20.0),
            retry_after=p.number("retry_after", 2.0),
        )
    ]


def _flaky(p: _Params) -> list[FaultRule]:
    # Two rules drawn in sequence; the second probability is conditional so the total is exactly ``rate``.
    rate = p.number("rate", 0.1)
    half = rate / 2
    provider, model, hold = p.text("provider", "*"), p.text("model", "*"), p.number("hold", 30.0)
    return [
        FaultRule(kind="timeout", provider=provider, model=model, probability=half, hold_s=hold),
        FaultRule(kind="reset", provider=provider, model=model, probability=min(1.0, half / (1 - half))),
    ]


def _safety(p: _Params) -> list[FaultRule]:
    return [
        FaultRule(
            kind="safety",
            provider=p.text("provider", "*"),
            model=p.text("model", "*"),
            probability=p.number("rate", 0.25),
            only_tasks=p.tasks(),
        )
    ]


def _auth(p: _Params) -> list[FaultRule]:
    return [FaultRule(kind="auth", provider=p.text("provider", "anthropic"), model=p.text("model", "*"))]


def _single_fault(p: _Params) -> list[FaultRule]:
    """``fault:kind=reset,provider=openai,rate=0.5,start=0,duration=10,retry_after=1,hold=5,tasks=a|b,hits=3``."""
    kind = p.text("kind", "")
    if kind not in FAULT_KINDS:
        raise ValueError(f"profile 'fault' needs kind= one of {', '.join(FAULT_KINDS)}")
    return [
        FaultRule(
            kind=kind,  # type: ignore[arg-type]
            provider=p.text("provider", "*"),
            model=p.text("model", "*"),
            probability=p.number("rate", 1.0),
            start_s=p.number("start", 0.0),
            duration_s=p.optional_number("duration"),
            retry_after=p.optional_number("retry_after"),
            hold_s=p.number("hold", 30.0),
            only_tasks=p.tasks(),
            max_hits=int(hits) if (hits := p.optional_number("hits")) is not None else None,
        )
    ]


def _retry_hints(p: _Params) -> list[FaultRule]:
    """A rate limit whose retry hints are the given header values, verbatim (``retry_after_ms=nan``)."""
    headers = {
        name: p.raw[key]
        for key, name in (("retry_after_ms", "retry-after-ms"), ("retry_after", "retry-after"))
        if key in p.raw
    }
    p.used.update({"retry_after_ms", "retry_after"})
    return [
        FaultRule(
            kind="rate_limit",
            provider=p.text("provider", "anthropic"),
            model=p.text("model", "*"),
            headers=headers,
            max_hits=int(hits) if (hits := p.optional_number("hits")) is not None else None,
        )
    ]


def _kind_everywhere(kind: FaultKind, default_provider: str) -> Callable[[_Params], list[FaultRule]]:
    def build(p: _Params) -> list[FaultRule]:
        return [
            FaultRule(
                kind=kind,
                provider=p.text("provider", default_provider),
                model=p.text("model", "*"),
                probability=p.number("rate", 1.0),
                start_s=p.number("start", 0.0),
                duration_s=p.optional_number("duration"),
                retry_after=p.optional_number("retry_after"),
                hold_s=p.number("hold", 30.0),
                only_tasks=p.tasks(),
            )
        ]

    return build


def _candidate_stopped(p: _Params) -> list[FaultRule]:
    return [
        FaultRule(
            kind="candidate_stopped",
            provider=p.text("provider", "gemini"),
            model=p.text("model", "*"),
            probability=p.number("rate", 1.0),
            reason=p.text("reason", "OTHER").upper(),
            only_tasks=p.tasks(),
        )
    ]


PROFILES: Final[dict[str, tuple[str, Callable[[_Params], list[FaultRule]]]]] = {
    "none": ("no faults", _none),
    "overload-storm": (
        "primary (anthropic) answers 529 overloaded_error for `duration` s (default 20), then recovers",
        _overload_storm,
    ),
    "primary-down": ("primary (anthropic) answers 529 overloaded_error for the whole run", _primary_down),
    "rate-limit": ("anthropic answers 429 + retry-after for `duration` s (default 20)", _rate_limit),
    "flaky": ("`rate` (default 10%) of calls on every provider time out or are reset", _flaky),
    "safety": ("`rate` (default 25%) of calls on every provider are refused for safety", _safety),
    "auth": ("anthropic rejects the API key (401)", _auth),
    "billing": (
        "anthropic refuses to bill (400 credit balance too low); provider=openai: 429 insufficient_quota, "
        "provider=gemini: 403 BILLING_DISABLED",
        _kind_everywhere("billing", "anthropic"),
    ),
    "server-errors": (
        "anthropic answers 500 (`rate`, default always)",
        _kind_everywhere("server_error", "anthropic"),
    ),
    "timeouts": (
        "anthropic holds every response past the client timeout",
        _kind_everywhere("timeout", "anthropic"),
    ),
    "resets": ("anthropic resets every connection (RST)", _kind_everywhere("reset", "anthropic")),
    "malformed": (
        "anthropic answers 200 with a truncated JSON body",
        _kind_everywhere("malformed_json", "anthropic"),
    ),
    "invalid-output": (
        "anthropic answers 200 with content that fails the task schema",
        _kind_everywhere("invalid_output", "anthropic"),
    ),
    "bad-request": (
        "anthropic answers 400 invalid_request_error",
        _kind_everywhere("bad_request", "anthropic"),
    ),
    "overloaded-no-retry": (
        "anthropic answers 529 overloaded_error with x-should-retry: false (the provider, not the request)",
        _kind_everywhere("overloaded_no_retry", "anthropic"),
    ),
    "daily-quota": (
        "gemini answers 429 RESOURCE_EXHAUSTED for a per-day quota (QuotaFailure quotaId ...PerDay...)",
        _kind_everywhere("daily_quota", "gemini"),
    ),
    "reasoning": (
        "every provider (default) answers as a thinking model: reasoning tokens reported its own way "
        "(Anthropic thinking block + output_tokens, OpenAI reasoning_tokens, Gemini thoughtsTokenCount)",
        _kind_everywhere("reasoning", "*"),
    ),
    "prompt-cached": (
        "openai and gemini (default: every provider) answer as for a repeated prompt: the prompt's tokens from "
        "1,024 on (in steps of 128) served from their prompt cache (OpenAI prompt_tokens_details.cached_tokens, "
        "Gemini cachedContentTokenCount); Anthropic caches only at a cache_control breakpoint, never sent",
        _kind_everywhere("prompt_cached", "*"),
    ),
    "window-exhausted": (
        "anthropic answers 200 cut at the context window, stop_reason model_context_window_exceeded",
        _kind_everywhere("window_exhausted", "anthropic"),
    ),
    "request-over-tpm": (
        "openai answers 429 'Request too large ... on tokens per min (TPM)': the request alone exceeds the limit",
        _kind_everywhere("request_over_tpm", "openai"),
    ),
    "token-rate-limit": (
        "openai answers 429 on tokens per minute without retry-after (wait in x-ratelimit-reset-tokens, e.g. 6.5s)",
        _kind_everywhere("token_rate_limit", "openai"),
    ),
    "model-not-found": (
        "`model` (default every one) of anthropic answers 404 for the model (retired, renamed or not open to the "
        "key): anthropic not_found_error 'model: M', openai model_not_found, gemini NOT_FOUND 'models/M is not found'",
        _kind_everywhere("not_found", "anthropic"),
    ),
    "candidate-stopped": (
        "gemini answers 200 with a candidate stopped before any text: finishReason `reason` (default OTHER; "
        "LANGUAGE, RECITATION, PROHIBITED_CONTENT, MALFORMED_FUNCTION_CALL, MAX_TOKENS when thinking took the whole "
        "ceiling...) and no content; the other providers answer normally",
        _candidate_stopped,
    ),
    "proxy-html": (
        "the CDN in front of `provider` (default every one) answers 502 Bad Gateway as an HTML page with a cf-ray",
        _kind_everywhere("proxy_html", "*"),
    ),
    "temperature-loop": (
        "a Gemini 3 model sent a temperature below its default (1.0) repeats itself until maxOutputTokens "
        "(finishReason MAX_TOKENS), as Google's Gemini 3 guide warns; at the default it answers normally",
        _kind_everywhere("temperature_loop", "gemini"),
    ),
    "garbled-gzip": (
        "`provider` (default every one) answers 200 gzip-encoded, as the real APIs do, with the second half of the "
        "compressed bytes damaged (a faulty middlebox): the body will not decompress",
        _kind_everywhere("garbled_gzip", "*"),
    ),
    "echo-key": (
        "a proxy in front of `provider` (default every one) answers 502 echoing the caller's API key in the "
        "error's status field and the request-id header",
        _kind_everywhere("echo_key", "*"),
    ),
    "retry-hints": (
        "anthropic answers 429 with the given retry_after_ms= / retry_after= header values verbatim",
        _retry_hints,
    ),
    "fault": (
        "one rule built from parameters: kind=, provider=, model=, rate=, start=, duration=, ...",
        _single_fault,
    ),
}


def _parse_params(profile: str, text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"profile {profile!r}: parameter {item!r} is not key=value")
        params[key.strip()] = value.strip()
    return params


def named_profile(spec: str) -> FaultProfile:
    """One named profile with optional ``:key=value,...`` overrides."""
    name, _, param_text = spec.strip().partition(":")
    if name not in PROFILES:
        raise ValueError(f"unknown fault profile {name!r}; known: {', '.join(PROFILES)}")
    description, build = PROFILES[name]
    params = _Params(name, _parse_params(name, param_text))
    rules = build(params)
    params.check_all_used()
    return FaultProfile(name=spec.strip(), description=description, rules=rules)


def profile_from_spec(spec: str | FaultProfile) -> FaultProfile:
    """Resolve any accepted profile spelling (see module docstring) into a ``FaultProfile``."""
    if isinstance(spec, FaultProfile):
        return spec
    text = spec.strip()
    if text.startswith("{"):
        return FaultProfile.model_validate_json(text)
    if text.endswith(".json") and Path(text).is_file():
        return FaultProfile.model_validate_json(Path(text).read_text(encoding="utf-8"))
    parts = [named_profile(part) for part in text.split("+") if part.strip()] or [named_profile("none")]
    if len(parts) == 1:
        return parts[0]
    return FaultProfile(
        name=text,
        description=" + ".join(p.description for p in parts),
        rules=[rule for p in parts for rule in p.rules],
    )


# ---------------------------------------------------------------- clock + injector


class ManualClock:
    """A clock tests move by hand: ``clock.advance(25)`` instead of sleeping 25 s."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class FaultInjector:
    """Decides, per call, which fault (if any) applies. Thread-safe; deterministic for a given seed
    and a given order of calls."""

    def __init__(
        self, profile: str | FaultProfile = "none", *, seed: int = 0, clock: Clock = time.monotonic
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seed = seed
        self._profile = profile_from_spec(profile)
        self._random = random.Random(seed)
        self._started = clock()
        self._hits: dict[int, int] = {}

    @property
    def profile(self) -> FaultProfile:
        with self._lock:
            return self._profile

    @property
    def seed(self) -> int:
        return self._seed

    def elapsed(self) -> float:
        with self._lock:
            return self._clock() - self._started

    def set_profile(self, profile: str | FaultProfile, *, seed: int | None = None) -> FaultProfile:
        """Switch profile; its time windows start now and its random stream restarts."""
        resolved = profile_from_spec(profile)
        with self._lock:
            self._profile = resolved
            if seed is not None:
                self._seed = seed
            self._random = random.Random(self._seed)
            self._started = self._clock()
            self._hits = {}
        return resolved

    def reset(self) -> None:
        with self._lock:
            self._random = random.Random(self._seed)
            self._started = self._clock()
            self._hits = {}

    def decide(self, provider: str, model: str, task: str | None = None) -> FaultRule | None:
        with self._lock:
            elapsed = self._clock() - self._started
            for index, rule in enumerate(self._profile.rules):
                if not rule.active_at(elapsed) or not rule.matches(provider, model, task):
                    continue
                if rule.max_hits is not None and self._hits.get(index, 0) >= rule.max_hits:
                    continue
                # Rules that always fire consume no random draw, so adding one never shifts the others.
                if rule.probability >= 1.0 or self._random.random() < rule.probability:
                    self._hits[index] = self._hits.get(index, 0) + 1
                    return rule
            return None
