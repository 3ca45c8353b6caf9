"""Which models a stage tries, in which order, and how hard.

A chain is an ordered list of models; each model belongs to one provider (the prefix decides). The
executor walks the chain: retries stay on one model, an overloaded or unusable provider is skipped as a
whole, and ``offline`` (the deterministic local engine) ends every default chain so a stage can always
produce *something* when the budget and deadline allow it to get that far.

Defaults (``StagePolicy``): 6 provider calls per stage across the whole chain, 120 s wall-clock per stage,
at most 2 calls per model before falling to the next one, backoff 0.5 s base / 20 s cap / 30 s
retry-after cap, a ``retry-after`` of more than 2 s answered by falling back (when a provider model is
left in the chain) rather than by waiting, and a per-request timeout equal to the time left before the
deadline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from resources.resilience.backoff import BackoffPolicy

ANTHROPIC = "anthropic"
OPENAI = "openai"
GEMINI = "gemini"
OFFLINE = "offline"

# OpenAI reasoning models are "o" + a digit: o1, o3-mini, o4-mini ... ("offline" must not match).
_OPENAI_REASONING = re.compile(r"^o\d")

DEFAULT_CHAINS: Mapping[str, tuple[str, ...]] = {
    "normalize": ("claude-sonnet-4-6", "claude-opus-4-6", "gpt-4.1", "gemini-3-flash-preview", "offline"),
    "extract_scenes": (
        "claude-sonnet-4-6",
        "claude-opus-4-6",
        "gpt-5.2",
        "gemini-3-flash-preview",
        "offline",
    ),
    "project_config": (
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-6",
        "claude-opus-4-6",
        "gpt-4.1",
        "offline",
    ),
}


def provider_for(model: str) -> str:
    """The provider serving ``model``: ``claude-*`` anthropic, ``gpt-*``/``o<digit>*`` openai,
    ``gemini-*`` gemini, ``offline`` offline."""
    if model == OFFLINE:
        return OFFLINE
    if model.startswith("claude-"):
        return ANTHROPIC
    if model.startswith("gpt-") or _OPENAI_REASONING.match(model):
        return OPENAI
    if model.startswith("gemini-"):
        return GEMINI
    raise ValueError(f"no provider known for model {model!r}")


@dataclass(frozen=True, slots=True)
class ModelRef:
    provider: str
    model: str

    @classmethod
    def of(cls, model: str) -> ModelRef:
        return cls(provider_for(model), model)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


def fallback_chain_for(stage: str, overrides: Mapping[str, Sequence[str]] | None = None) -> list[ModelRef]:
    """The stage's chain: ``overrides[stage]`` if given, else ``DEFAULT_CHAINS[stage]``.

    Duplicates are dropped (keeping the first), so an override cannot make one model eat the budget twice.
    """
    if overrides and stage in overrides:
        models: Sequence[str] = overrides[stage]
    elif stage in DEFAULT_CHAINS:
        models = DEFAULT_CHAINS[stage]
    else:
        known = ", ".join(sorted(set(DEFAULT_CHAINS) | set(overrides or {})))
        raise ValueError(f"no fallback chain for stage {stage!r} (known: {known})")
    if isinstance(models, str):
        raise TypeError(f"chain for {stage!r} must be a sequence of model names, not a string")
    chain = [ModelRef.of(model) for model in dict.fromkeys(models)]
    if not chain:
        raise ValueError(f"the fallback chain for stage {stage!r} is empty")
    return chain


DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_DEADLINE_SECONDS = 120.0
DEFAULT_ATTEMPTS_PER_MODEL = 2
DEFAULT_RETRY_AFTER_FALLBACK_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class StagePolicy:
    """How hard one stage tries.

    * ``max_attempts`` - provider calls per stage, across the whole chain (repairs included, skips not).
    * ``deadline_seconds`` - wall-clock budget per stage; no call starts and no backoff sleep is begun
      that would end past it, and each call's timeout is cut to the time left.
    * ``attempts_per_model`` - transient failures tolerated on one model before falling to the next.
    * ``request_timeout_seconds`` - upper bound for one call (``None``: the time left before the deadline);
      with ``output_tokens_per_second_floor`` it is the *base* a call gets whatever its length (a hung
      call's allowance: connection, queueing, reading the prompt).
    * ``output_tokens_per_second_floor`` - the slowest output rate a healthy model is expected to keep; a call
      whose output ceiling is N tokens gets ``N / floor`` seconds on top of the base, so a long answer is not
      killed by the timeout meant for a hung call (``timeout_for``). ``None``: the base alone.
    * ``retry_after_fallback_seconds`` - a provider that asks (``retry-after``) for a longer wait than this
      is not waited for when another provider's model is left in the chain: the next model is tried at
      once. A short hint (a per-second rate-limit blip) is cheaper to wait out than a switch of model;
      a long one would hold the stage while a healthy fallback idles. The offline engine does not count
      as such a model: a degraded answer now is not preferred to the real one a few seconds later.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    attempts_per_model: int = DEFAULT_ATTEMPTS_PER_MODEL
    request_timeout_seconds: float | None = None
    retry_after_fallback_seconds: float = DEFAULT_RETRY_AFTER_FALLBACK_SECONDS
    output_tokens_per_second_floor: float | None = None

    def timeout_for(self, output_tokens: int) -> float | None:
        """The timeout of one call whose output ceiling is ``output_tokens`` (None: no bound of its own, the
        deadline applies): the base plus the time the whole ceiling takes at the floor rate."""
        base = self.request_timeout_seconds
        if base is None or self.output_tokens_per_second_floor is None:
            return base
        return base + max(0, output_tokens) / self.output_tokens_per_second_floor

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.deadline_seconds <= 0:
            raise ValueError("deadline_seconds must be > 0")
        if self.attempts_per_model < 1:
            raise ValueError("attempts_per_model must be >= 1")
        if self.request_timeout_seconds is not None and self.request_timeout_seconds <= 0:
            raise ValueError("request_timeout_seconds must be > 0")
        if self.retry_after_fallback_seconds < 0:
            raise ValueError("retry_after_fallback_seconds must be >= 0")
        if self.output_tokens_per_second_floor is not None and self.output_tokens_per_second_floor <= 0:
            raise ValueError("output_tokens_per_second_floor must be > 0")
