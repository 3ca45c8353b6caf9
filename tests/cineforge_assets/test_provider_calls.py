"""``run_parts``: parts in flight together, each failing alone; a part too big for its model is halved."""

from __future__ import annotations

import threading

from cineforge_assets.provider_calls import needs_smaller_parts, run_parts
from resources.ai import AIResult
from resources.resilience.errors import (
    InvalidModelOutputError,
    OutputTruncatedError,
    PermanentProviderError,
    TransientProviderError,
)


def answered(part: range) -> AIResult[list[int]]:
    return AIResult(value=list(part), provider="openai", model="gpt-5.2")


def test_a_part_cut_at_its_ceiling_is_halved_until_the_halves_fit() -> None:
    sent: list[range] = []
    lock = threading.Lock()

    def call(part: range) -> AIResult[list[int]]:
        with lock:
            sent.append(part)
        if len(part) > 3:  # the model's ceiling holds three items' answers
            raise OutputTruncatedError(provider="openai", model="gpt-5.2", max_tokens=300, output_tokens=300)
        return answered(part)

    run = run_parts([range(0, 3), range(3, 11)], call, concurrency=2)
    assert not run.failed
    assert [o.part for o in run.outcomes] == [range(0, 3), range(3, 5), range(5, 7), range(7, 9), range(9, 11)]
    assert [o.splits for o in run.outcomes] == [0, 2, 2, 2, 2]
    assert range(3, 11) in sent and range(3, 7) in sent


def test_a_failed_part_fails_alone_and_the_others_are_kept() -> None:
    def call(part: range) -> AIResult[list[int]]:
        if 5 in part:
            raise InvalidModelOutputError("still not JSON after one repair", provider="openai", model="gpt-5.2")
        return answered(part)

    run = run_parts([range(0, 4), range(4, 8), range(8, 12)], call, concurrency=3)
    assert [o.part for o in run.failed] == [range(4, 8)]  # not split: a smaller prompt would not fix it
    assert [o.part for o in run.served] == [range(0, 4), range(8, 12)]
    assert run.calls == 2


def test_which_errors_ask_for_smaller_parts() -> None:
    truncated = OutputTruncatedError(provider="anthropic", model="m", max_tokens=10, output_tokens=10)
    assert needs_smaller_parts(truncated)
    assert needs_smaller_parts(PermanentProviderError("x", error_code="context_length_exceeded"))
    assert needs_smaller_parts(PermanentProviderError("prompt is too long: 210000 tokens > 200000 maximum"))
    assert needs_smaller_parts(PermanentProviderError("The input token count (9) exceeds the maximum number of tokens"))
    assert not needs_smaller_parts(PermanentProviderError("safety", error_code="safety_refusal"))
    assert not needs_smaller_parts(TransientProviderError("overloaded", error_code="overloaded_error"))
