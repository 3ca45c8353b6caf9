"""The adapter contract every provider speaks.

An adapter makes exactly one HTTP request per ``complete`` call and never retries: the resilience
layer owns every retry. Failures come out as the taxonomy in ``resources.resilience.errors``.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field


class CompletionRequest(BaseModel):
    """A provider-neutral chat request: one system prompt, one user message, optional JSON output."""

    system: str = ""
    prompt: str
    max_tokens: int = 2048
    temperature: float = 0.0
    json_output: bool = True
    stage: str = ""
    # Free-form hints the offline engine uses to answer deterministically (e.g. the task name).
    task: str = ""
    payload: dict[str, Any] = Field(default_factory=dict)


class Completion(BaseModel):
    """One answer. ``truncated``: the provider stopped at the output ceiling (``max_tokens``, the ceiling the
    adapter actually sent), so ``text`` is cut off and must not be taken as the whole answer.

    ``input_tokens`` counts every prompt token; ``cached_input_tokens`` how many of them the provider served
    from its prompt cache (billed at its cached-input rate, a fraction of the input rate)."""

    provider: str
    model: str
    text: str
    request_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    truncated: bool = False
    max_tokens: int | None = None


class ProviderAdapter(Protocol):
    name: str

    def complete(self, model: str, request: CompletionRequest, *, timeout: float) -> Completion: ...

    def close(self) -> None: ...
