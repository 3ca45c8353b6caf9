"""What each call costs: list prices per provider and model, as data, and the arithmetic that turns usage into USD.

The figures live in ``model_prices.json`` beside this module (the sister of ``model_limits.json``), one row per
model of the stages' chains and of the B-roll stage, each with the pricing page it was read from and the date
(``read_on``). Chat models are priced per million tokens (uncached input, cached input, output); Veo per
generated second. The offline engine has an explicit row at zero: nobody bills it.

A model the table does not know is **unpriced**: ``cost_of`` answers ``Cost.unpriced(...)`` whose ``usd`` is
``None``, never ``0.0``, so a total that includes it says "at least" rather than silently under-counting. The
budget treats an unpriced call as one it cannot bound (see ``resources.resilience.budget``).

Lookup (``PriceTable.get``) mirrors ``limits_for``: exact ``(provider, model)``; else the model without a dated
snapshot suffix (``claude-haiku-4-5-20251001`` -> ``claude-haiku-4-5``) and without Gemini's ``models/`` prefix.

Users override prices with their own file in the same format (``CINEFORGE_PRICES_FILE`` or the AI resource's
``prices_file``): its rows replace the shipped rows of the same ``(provider, model)`` and add new ones, so a
negotiated discount or a new model needs only its own row.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

PRICES_FILE = Path(__file__).with_name("model_prices.json")
PRICES_FILE_ENV = "CINEFORGE_PRICES_FILE"

_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")
_PER_MILLION = 1_000_000


class TokenUsage(BaseModel):
    """Tokens one call used, as the provider reported them.

    ``input_tokens`` counts *uncached* prompt tokens only; ``cached_input_tokens`` the prompt tokens served from
    the provider's prompt cache (OpenAI's and Gemini's prompt counts include the cached ones: subtract them
    before building this).
    """

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cached_input_tokens


class TokenRates(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)


class LongContextRates(TokenRates):
    """Rates a request pays on *every* token once its prompt is longer than ``threshold_tokens``."""

    threshold_tokens: int = Field(gt=0)


class ModelPrice(BaseModel):
    """One model's list price. A chat model has the token rates; a video model has ``per_second``."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    input_per_mtok: float | None = Field(default=None, ge=0)
    output_per_mtok: float | None = Field(default=None, ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    long_context: LongContextRates | None = None
    per_second: float | None = Field(default=None, ge=0)
    source: str = ""
    read_on: date | None = None

    def model_post_init(self, __context: object) -> None:
        has_tokens = self.input_per_mtok is not None and self.output_per_mtok is not None
        if not has_tokens and self.per_second is None:
            raise ValueError(
                f"price row {self.provider}/{self.model} needs input_per_mtok and output_per_mtok, or per_second"
            )


@dataclass(frozen=True, slots=True)
class Cost:
    """What one call (or a sum of calls) cost. ``usd`` is ``None`` when a price was missing: unpriced, not free."""

    usd: float | None
    unpriced: tuple[str, ...] = ()

    @classmethod
    def priced(cls, usd: float) -> Cost:
        return cls(usd=usd)

    @classmethod
    def unpriced_model(cls, provider: str, model: str) -> Cost:
        return cls(usd=None, unpriced=(f"{provider}/{model}",))

    @property
    def is_priced(self) -> bool:
        return self.usd is not None

    def __add__(self, other: Cost) -> Cost:
        unpriced = tuple(dict.fromkeys(self.unpriced + other.unpriced))
        if self.usd is None or other.usd is None:
            return Cost(usd=None, unpriced=unpriced)
        return Cost(usd=self.usd + other.usd, unpriced=unpriced)


FREE = Cost(usd=0.0)


def sum_costs(costs: Iterable[Cost]) -> Cost:
    """The sum of ``costs``; unpriced if any part is."""
    total = FREE
    for cost in costs:
        total = total + cost
    return total


def known_part(costs: Iterable[Cost]) -> float:
    """USD of the priced parts only: the *at least* figure when some part is unpriced."""
    return sum(cost.usd for cost in costs if cost.usd is not None)


_Rates = tuple[float, float, float]  # input, output, cached input (USD per million tokens)


def _rates_of(input_rate: float, output_rate: float, cached_rate: float | None) -> _Rates:
    # A model without a cached-input price bills cached tokens as ordinary input (the conservative reading).
    return input_rate, output_rate, input_rate if cached_rate is None else cached_rate


class PriceTable:
    """Rows by ``(provider, model)``; a model without a row is unpriced."""

    def __init__(self, rows: Iterable[ModelPrice], read_on: date | None = None) -> None:
        self._rows = {(row.provider, row.model): row for row in rows}
        self.read_on = read_on
        # The table never changes once built: each name's lookup (and its token rates as plain floats) is
        # remembered, since pricing a served call is on every call's path.
        self._found: dict[tuple[str, str], ModelPrice | None] = {}
        self._rates: dict[tuple[str, str], tuple[_Rates, int, _Rates] | None] = {}

    @classmethod
    def load(cls, path: str | Path = PRICES_FILE) -> PriceTable:
        """Read and validate a price file; a malformed file fails here, loudly, naming the file."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            rows = [ModelPrice.model_validate(row) for row in raw["models"]]
            read_on = date.fromisoformat(raw["read_on"]) if raw.get("read_on") else None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"price table {path} is unusable: {exc}") from exc
        return cls(rows, read_on)

    def overridden_by(self, other: PriceTable) -> PriceTable:
        """This table with ``other``'s rows replacing or adding to its own."""
        merged = {**self._rows, **other._rows}
        return PriceTable(merged.values(), other.read_on or self.read_on)

    def models(self) -> list[ModelPrice]:
        return list(self._rows.values())

    def get(self, provider: str, model: str) -> ModelPrice | None:
        key = (provider, model)
        if key in self._found:
            return self._found[key]
        name = model.removeprefix("models/")
        row = self._rows.get((provider, name))
        if row is None:
            row = self._rows.get((provider, _SNAPSHOT_SUFFIX.sub("", name)))
        self._found[key] = row
        return row

    def tokens_usd(
        self, provider: str, model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
    ) -> float | None:
        """USD of a call whose ``input_tokens`` (every prompt token) include ``cached_input_tokens`` (``None``:
        the model is not priced by token). Plain floats from rates remembered per model: the per-call path
        prices every served call. A prompt over a ``long_context`` threshold pays its rates on every token."""
        key = (provider, model)
        if key not in self._rates:
            row = self.get(provider, model)
            if row is None or row.input_per_mtok is None or row.output_per_mtok is None:
                self._rates[key] = None
            else:
                long = row.long_context
                self._rates[key] = (
                    _rates_of(row.input_per_mtok, row.output_per_mtok, row.cached_input_per_mtok),
                    long.threshold_tokens if long is not None else 0,
                    _rates_of(long.input_per_mtok, long.output_per_mtok, long.cached_input_per_mtok)
                    if long is not None
                    else (0.0, 0.0, 0.0),
                )
        rates = self._rates[key]
        if rates is None:
            return None
        base, threshold, long_rates = rates
        input_rate, output_rate, cached_rate = long_rates if threshold and input_tokens > threshold else base
        cached = min(cached_input_tokens, input_tokens)
        uncached = input_tokens - cached
        return (uncached * input_rate + cached * cached_rate + output_tokens * output_rate) / _PER_MILLION

    def cost_of(self, provider: str, model: str, usage: TokenUsage) -> Cost:
        """What a call to ``model`` that used ``usage`` cost at list price."""
        usd = self.tokens_usd(
            provider, model, usage.prompt_tokens, usage.output_tokens, cached_input_tokens=usage.cached_input_tokens
        )
        return Cost.unpriced_model(provider, model) if usd is None else Cost.priced(usd)

    def video_cost(self, provider: str, model: str, seconds: float) -> Cost:
        """What ``seconds`` of generated video from ``model`` cost at list price."""
        row = self.get(provider, model)
        if row is None or row.per_second is None:
            return Cost.unpriced_model(provider, model)
        return Cost.priced(row.per_second * max(0.0, seconds))


@cache
def shipped_table() -> PriceTable:
    """The table shipped with the package, read once per process."""
    return PriceTable.load()


@cache
def _table_with_override(override: str) -> PriceTable:
    return shipped_table().overridden_by(PriceTable.load(override))


def price_table(override: str | Path | None = None) -> PriceTable:
    """The shipped table, overridden by ``override`` or else by the file ``CINEFORGE_PRICES_FILE`` names."""
    path = override or os.environ.get(PRICES_FILE_ENV) or None
    if not path:
        return shipped_table()
    return _table_with_override(str(Path(path).expanduser().resolve()))


def cost_of(provider: str, model: str, usage: TokenUsage, *, table: PriceTable | None = None) -> Cost:
    """What a call to ``provider``/``model`` that used ``usage`` cost (see ``PriceTable.cost_of``)."""
    return (table or price_table()).cost_of(provider, model, usage)


def video_cost(provider: str, model: str, seconds: float, *, table: PriceTable | None = None) -> Cost:
    """What ``seconds`` of video from ``provider``/``model`` cost (see ``PriceTable.video_cost``)."""
    return (table or price_table()).video_cost(provider, model, seconds)
