"""What each model can take and give: context window, output ceiling and accepted parameters, as data.

The figures live in ``model_limits.json`` beside this module, one row per model of the stages' chains, each
with the documentation page it was read from and the date (``read_on``). The adapters (what to send), the
executor (how far a truncated answer's ceiling may be raised), the simulator (what to refuse and where to
cut) and the offline engine all read this one table, so simulated runs meet the limits live runs meet.

Lookup (``limits_for``): exact ``(provider, model)``; else the same model without a dated snapshot suffix
(``claude-haiku-4-5-20251001`` -> ``claude-haiku-4-5``, ``gpt-4.1-2025-04-14`` -> ``gpt-4.1``) and without
Gemini's ``models/`` prefix; else the table's **default**, which is deliberately conservative: a 128,000
token context window, an 8,192 token output ceiling (what every current chat model of the three providers
allows at least), and no sampling parameters (an unknown model gets only its provider's defaults, which no
model rejects). ``ModelLimits.known`` is False for such a row so callers can say so.

Token counts are estimated, not tokenized (``estimate_tokens``): no tokenizer is downloaded at run time.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

LIMITS_FILE = Path(__file__).with_name("model_limits.json")

# Both Anthropic's and OpenAI's documentation give ~4 characters of English per token. Screenplay text is
# English prose plus JSON punctuation, which the estimate slightly under-counts; callers that size work
# against a limit keep their own margin rather than this function guessing one.
CHARS_PER_TOKEN = 4

# Dated snapshots share their family's limits: ``-20251001`` (Anthropic) or ``-2025-04-14`` (OpenAI).
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")

TEMPERATURE = "temperature"
TOP_P = "top_p"


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` at ``CHARS_PER_TOKEN`` characters per token, rounded up (0 for empty text)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def estimate_prompt_tokens(system: str, prompt: str) -> int:
    """``estimate_tokens(system + prompt)`` without building the joined string (a whole script's prompt is
    hundreds of kilobytes, estimated on every call's path)."""
    return math.ceil((len(system) + len(prompt)) / CHARS_PER_TOKEN)


class ModelLimits(BaseModel):
    """One model's limits and capabilities.

    * ``context_window`` - tokens of prompt plus output the model takes in one request.
    * ``max_output_tokens`` - the highest output ceiling (``max_tokens`` / ``max_completion_tokens`` /
      ``maxOutputTokens``) the API accepts for the model.
    * ``sampling_parameters`` - sampling parameters the model accepts with a non-default value. The GPT-5
      family and the o-series accept none: any ``temperature`` but 1 is a 400 ``unsupported_value``. Gemini 3
      takes one but must not get it: Google's guide asks for the default temperature (1.0), lower values may
      loop to the output ceiling.
    * ``legacy_max_tokens`` - OpenAI only: the deprecated ``max_tokens`` is accepted (the reasoning models
      answer it with a 400 ``unsupported_parameter`` and want ``max_completion_tokens``).
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    sampling_parameters: frozenset[str] = frozenset()
    legacy_max_tokens: bool = False
    source: str = ""
    read_on: date | None = None
    known: bool = True

    def accepts(self, parameter: str) -> bool:
        """Does the model accept a non-default value for sampling ``parameter`` (e.g. ``temperature``)?"""
        return parameter in self.sampling_parameters

    def output_ceiling(self, requested: int) -> int:
        """``requested`` output tokens, capped at what the model allows."""
        return max(1, min(requested, self.max_output_tokens))

    def room_for_output(self, input_tokens: int) -> int:
        """The largest output ceiling a request with ``input_tokens`` of prompt can use (0: none)."""
        return max(0, min(self.max_output_tokens, self.context_window - input_tokens))


class ModelLimitsTable:
    """The shipped table: rows by ``(provider, model)`` plus the default for models it does not know."""

    def __init__(self, rows: list[ModelLimits], default: dict[str, Any], read_on: date | None = None) -> None:
        self._rows = {(row.provider, row.model): row for row in rows}
        self._default = default
        self.read_on = read_on
        # Looked up several times on every call's path; the table never changes once built.
        self._found: dict[tuple[str, str], ModelLimits] = {}

    @classmethod
    def load(cls, path: str | Path = LIMITS_FILE) -> ModelLimitsTable:
        """Read and validate a table file; a malformed file fails here, loudly, naming the file."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            rows = [ModelLimits.model_validate(row) for row in raw["models"]]
            default = dict(raw["default"])
            ModelLimits.model_validate({"provider": "-", "model": "-", **default})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"model limits table {path} is unusable: {exc}") from exc
        read_on = date.fromisoformat(raw["read_on"]) if raw.get("read_on") else None
        return cls(rows, default, read_on)

    def models(self) -> list[ModelLimits]:
        return list(self._rows.values())

    def get(self, provider: str, model: str) -> ModelLimits:
        """The row for ``model`` (see the module docstring for the lookup), or the default row."""
        found = self._found.get((provider, model))
        if found is None:
            found = self._found[(provider, model)] = self._lookup(provider, model)
        return found

    def _lookup(self, provider: str, model: str) -> ModelLimits:
        name = model.removeprefix("models/")
        for candidate in (name, _SNAPSHOT_SUFFIX.sub("", name)):
            row = self._rows.get((provider, candidate))
            if row is not None:
                return row
        return ModelLimits.model_validate({"provider": provider, "model": model, **self._default, "known": False})


@cache
def default_table() -> ModelLimitsTable:
    """The table shipped with the package, read once per process."""
    return ModelLimitsTable.load()


def limits_for(provider: str, model: str) -> ModelLimits:
    """``model``'s limits from the shipped table (the conservative default for an unknown model)."""
    return default_table().get(provider, model)
