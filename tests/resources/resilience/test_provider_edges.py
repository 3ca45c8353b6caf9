"""Issue 14's provider edges, each through real HTTP on loopback against the simulator (the breaker-clock
test runs against the real PostgreSQL instead): x-should-retry, retry hints, daily quotas, wire-field
scrubbing, warming providers as the last resort, and drills that leave the live breakers alone."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from resources.adapters.anthropic import AnthropicAdapter
from resources.adapters.gemini import UNSUPPORTED_LANGUAGE, GeminiAdapter
from resources.adapters.http_adapter import HttpProviderAdapter
from resources.adapters.openai import OpenAIAdapter, parse_go_duration
from resources.ai import AIProviderResource
from resources.providers import prompts
from resources.providers.base import ProviderAdapter
from resources.providers.limits import estimate_tokens
from resources.providers.offline import OfflineAdapter
from resources.providers.prices import shipped_table
from resources.resilience.backoff import BackoffPolicy, full_jitter_delay
from resources.resilience.breaker import BreakerPolicy, CircuitBreaker
from resources.resilience.breaker_store import SQLiteBreakerStore
from resources.resilience.chain import StagePolicy
from resources.resilience.errors import (
    DAILY_QUOTA_EXHAUSTED,
    MODEL_NOT_FOUND,
    REQUEST_OVER_RATE_LIMIT,
    AllProvidersOpenError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnsupportedParameterError,
    parse_retry_after,
    seconds_until_daily_quota_reset,
)
from resources.resilience.executor import CallOutcome, ResilientCaller
from resources.resilience.health_probe import probe_provider
from resources.simulator import FaultProfile, FaultRule, ProviderSimulator
from resources.simulator.wire import REASONING_TOKENS
from tests.resources.resilience.fakes import FakeClock

KEY = "SENTINEL-edge-key-4c3b2a1908"  # not sk-/AIza-shaped: the adapters' exact-key scrub must catch it
PAYLOAD = {"title": "Big Fish", "characters": ["EDWARD", "WILL"], "excerpt": "a witch", "scene_count": 1}
BACKOFF = BackoffPolicy(base=0.5, cap=4.0)
SEED = 7


def request() -> Any:
    return prompts.build_request("project_insights", PAYLOAD, stage="project_config")


def parse(text: str) -> Any:
    return prompts.parse_response("project_insights", text)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.HTTPTransport(retries=0)) as client:
        yield client


def adapters(sim: ProviderSimulator, client: httpx.Client) -> dict[str, ProviderAdapter]:
    return {
        "anthropic": AnthropicAdapter(KEY, sim.anthropic_url, client),
        "openai": OpenAIAdapter(KEY, sim.openai_url, client),
        "gemini": GeminiAdapter(KEY, sim.gemini_url, client),
        "offline": OfflineAdapter(),
    }


def adapter(sim: ProviderSimulator, provider: str) -> HttpProviderAdapter:
    url = {"anthropic": sim.anthropic_url, "openai": sim.openai_url, "gemini": sim.gemini_url}[provider]
    factory = {"anthropic": AnthropicAdapter, "openai": OpenAIAdapter, "gemini": GeminiAdapter}[provider]
    return factory(KEY, url)


class Loopback:
    """A ``ResilientCaller`` over the real adapters and a SQLite breaker store, on a fake clock."""

    def __init__(
        self, sim: ProviderSimulator, client: httpx.Client, store_path: Path, policy: BreakerPolicy | None = None
    ) -> None:
        self.clock = FakeClock()
        self.store_path = store_path
        self.policy = policy or BreakerPolicy()
        self.breaker = self.host()
        self.caller = ResilientCaller(
            adapters(sim, client),
            self.breaker,
            policy=StagePolicy(backoff=BACKOFF, max_attempts=6),
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(SEED),
        )

    def host(self) -> CircuitBreaker:
        """Another process's breaker on the same store and clock."""
        return CircuitBreaker(SQLiteBreakerStore(self.store_path), self.policy, clock=self.clock)

    def call(self, chain: Sequence[str]) -> CallOutcome[Any]:
        return self.caller.call("project_config", request(), parse, chain)


def calls(sim: ProviderSimulator, provider: str) -> int:
    return int(sim.stats()["by_provider"].get(provider, {}).get("total", 0))


def steps(outcome_or_error: CallOutcome[Any] | ProviderError) -> list[tuple[str, str, str, str | None]]:
    return [(a.provider, a.outcome, a.decision, a.error_code) for a in outcome_or_error.attempts]


# ------------------------------------------------------------------- 5. x-should-retry: false is no verdict


def test_an_overloaded_answer_that_says_do_not_retry_moves_to_the_next_provider(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path
) -> None:
    simulator.set_profile("overloaded-no-retry")
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.call(["claude-sonnet-4-6", "claude-opus-4-6", "gpt-4.1"])
    assert (served.provider, served.model) == ("openai", "gpt-4.1")
    assert calls(simulator, "anthropic") == 1  # not retried, and its other model skipped with it
    first = served.attempts[0]
    assert (first.status, first.error_class, first.decision) == (529, "transient", "fallback_next_provider")
    # The overload counts against the provider's health; it is no proof that the provider is up.
    assert world.breaker.store.read("anthropic").consecutive_failures == 1


# ------------------------------------------------------------------------------------------ 6. retry hints


def test_a_nan_retry_after_ms_does_not_hide_a_valid_retry_after(simulator: ProviderSimulator) -> None:
    simulator.set_profile("retry-hints:retry_after_ms=nan,retry_after=5")
    with adapter(simulator, "anthropic") as anthropic, pytest.raises(TransientProviderError) as caught:
        anthropic.complete("claude-sonnet-4-6", request(), timeout=5)
    assert caught.value.retry_after == 5.0


@pytest.mark.parametrize("hint", ["0", "-3", "inf", "0.0"])
def test_a_non_positive_or_non_finite_hint_is_no_hint_so_the_retry_is_jittered(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path, hint: str
) -> None:
    simulator.set_profile(f"retry-hints:retry_after={hint},hits=1")
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.call(["claude-sonnet-4-6"])
    assert served.provider == "anthropic" and calls(simulator, "anthropic") == 2
    # The wait is the seeded full-jitter draw, not 0 for every worker in lockstep.
    assert world.clock.sleeps == [full_jitter_delay(0, BACKOFF, random.Random(SEED))]
    assert world.clock.sleeps[0] > 0


def test_an_http_date_ending_minus_0000_is_a_hint(simulator: ProviderSimulator) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    header = when.strftime("%a, %d %b %Y %H:%M:%S -0000")
    rule = FaultRule(kind="rate_limit", provider="anthropic", headers={"retry-after": header})
    simulator.set_profile(FaultProfile(name="dated-hint", rules=[rule]))
    with adapter(simulator, "anthropic") as anthropic, pytest.raises(TransientProviderError) as caught:
        anthropic.complete("claude-sonnet-4-6", request(), timeout=5)
    # The date is whole seconds ahead of the wall clock; the request took some of them.
    assert caught.value.retry_after is not None and 10 < caught.value.retry_after <= 20


NOW = datetime(2026, 11, 30, 5, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "header",
    [
        "Mon, 30 Nov 2026 05:00:30 GMT",  # IMF-fixdate
        "Monday, 30-Nov-26 05:00:30 GMT",  # obsolete RFC 850
        "Mon Nov 30 05:00:30 2026",  # obsolete asctime (no zone: GMT)
        "Mon, 30 Nov 2026 05:00:30 -0000",
        "Mon, 30 Nov 2026 05:00:30 +0000",
    ],
)
def test_every_rfc_7231_date_form_parses(header: str) -> None:
    assert parse_retry_after({"retry-after": header}, now=NOW) == 30.0


def test_dates_in_the_past_and_odd_numbers_are_no_hint() -> None:
    assert parse_retry_after({"retry-after": "Mon, 30 Nov 2026 04:59:00 GMT"}, now=NOW) is None
    assert parse_retry_after({"retry-after-ms": "-1", "retry-after": "nan"}) is None
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5


def test_gemini_daily_quota_is_provider_level_and_parks_the_provider_until_its_reset(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path
) -> None:
    simulator.set_profile("daily-quota")
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.call(["gemini-3-flash-preview", "gpt-4.1"])
    assert served.provider == "openai"
    assert calls(simulator, "gemini") == 1  # not retried as a transient 429
    quota = served.attempts[0]
    assert (quota.error_code, quota.error_class, quota.decision) == (
        DAILY_QUOTA_EXHAUSTED,
        "provider_unavailable",
        "skip_provider",
    )
    record = world.breaker.store.read("gemini")
    assert record.state == "closed" and record.consecutive_failures == 0  # the breaker did not count it

    # Another process, later but before the reset, does not call Gemini at all. The hold is the time to
    # midnight Pacific as of the real moment the answer came, so the test waits a share of it rather than
    # a fixed hour (an hour is past the reset when the suite runs between 23:00 and midnight Pacific).
    held_for = record.parked_until - world.clock()
    assert 0 < held_for <= 24 * 3600
    later = Loopback(simulator, http, tmp_path / "b.sqlite")
    later.clock.advance(held_for * 0.9)
    again = later.call(["gemini-3-flash-preview", "gpt-4.1"])
    assert again.provider == "openai" and calls(simulator, "gemini") == 1
    assert steps(again)[0] == ("gemini", "skipped", "skip_provider", DAILY_QUOTA_EXHAUSTED)


def test_the_daily_quota_resets_at_midnight_pacific() -> None:
    assert seconds_until_daily_quota_reset(NOW) == 3 * 3600  # 21:00 PST -> midnight
    summer = datetime(2026, 7, 1, 6, 30, tzinfo=UTC)  # 23:30 PDT
    assert seconds_until_daily_quota_reset(summer) == 30 * 60


# --------------------------------------------------------------------------------- 7. every wire field scrubbed


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_a_key_echoed_into_status_fields_and_request_ids_is_scrubbed(
    simulator: ProviderSimulator, provider: str, http: httpx.Client, tmp_path: Path
) -> None:
    simulator.set_profile(f"echo-key:provider={provider}")
    model = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1", "gemini": "gemini-3-flash-preview"}[provider]
    with adapter(simulator, provider) as echoing, pytest.raises(ProviderError) as caught:
        echoing.complete(model, request(), timeout=5)
    error = caught.value
    assert isinstance(error, TransientProviderError) and error.status == 502
    assert error.error_code and error.request_id  # the fields are kept, without the key
    texts = [str(error), repr(error), repr(error.as_dict()), error.error_code, error.request_id]
    assert not [text for text in texts if "SENTINEL" in text]

    # ... and so are the attempt records built from it (metadata, telemetry).
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.call([model, "offline"])
    assert served.provider == "offline"
    assert not [a for a in served.attempts if "SENTINEL" in a.model_dump_json()]


# ------------------------------------------------------------------- 3. warming providers as the last resort


def warming_and_open(world: Loopback) -> None:
    """Anthropic cold with both warm-up slots leased by other processes; OpenAI's breaker open."""
    others = world.host()
    others.acquire("anthropic")
    others.acquire("anthropic")
    for _ in range(world.policy.warm_up_budget):
        others.record(others.acquire("openai"), success=False)
    assert others.state("openai") == "open"


@pytest.mark.parametrize(
    "chain",
    [["claude-sonnet-4-6", "gpt-4.1", "offline"], ["claude-sonnet-4-6", "gpt-4.1"]],
    ids=["offline", "no-offline"],
)
def test_a_warming_provider_is_called_before_offline_or_giving_up(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path, chain: list[str]
) -> None:
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    warming_and_open(world)
    served = world.call(chain)
    assert (served.provider, served.model) == ("anthropic", "claude-sonnet-4-6")
    assert calls(simulator, "anthropic") == 1 and calls(simulator, "openai") == 0
    assert steps(served)[:2] == [
        ("anthropic", "skipped", "skip_provider", "provider_warming"),
        ("openai", "skipped", "skip_provider", "breaker_open"),
    ]


def test_the_error_names_every_provider_and_why(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path
) -> None:
    simulator.set_profile("auth")  # anthropic rejects the key: provider-level, skipped
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    warming_and_open(world)
    with pytest.raises(AllProvidersOpenError) as caught:
        world.call(["claude-sonnet-4-6", "gpt-4.1"])
    assert caught.value.reasons == {"anthropic": "provider_unavailable", "openai": "breaker_open"}
    assert "anthropic: provider_unavailable" in str(caught.value)
    assert "openai: breaker_open" in str(caught.value)


# ---------------------------------------------------------------------- 1. drills never touch live breakers


def test_a_fault_drill_leaves_the_live_breakers_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))  # both use the default store beside it
    telemetry = str(tmp_path / "events.jsonl")
    with ProviderSimulator(profile="primary-down") as drill_sim, ProviderSimulator() as production:
        drill = AIProviderResource(mode="simulated", simulator_url=drill_sim.base_url, telemetry_path=telemetry)
        live = AIProviderResource(
            mode="live",
            anthropic_api_key=KEY,
            openai_api_key=KEY,
            anthropic_base_url=production.anthropic_url,
            openai_base_url=production.openai_url,
            telemetry_path=telemetry,
        )
        for _ in range(BreakerPolicy().warm_up_budget):
            drilled = drill.run_task(stage="project_config", task="project_insights", payload=PAYLOAD)
            assert drilled.provider != "anthropic"
        assert drill.breaker().state("anthropic") == "open"

        served = live.run_task(stage="project_config", task="project_insights", payload=PAYLOAD)
        assert served.provider == "anthropic"
        assert live.breaker().state("anthropic") == "closed"
        assert calls(production, "anthropic") == 1


# --------------------------------------------------------------------------------- connection resets (issue 18)


def test_a_reset_connection_is_retried_at_once_on_a_fresh_connection(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path
) -> None:
    simulator.set_profile("fault:kind=reset,provider=anthropic,rate=1,hits=1")
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.call(["claude-sonnet-4-6", "gpt-4.1"])
    assert (served.provider, served.model) == ("anthropic", "claude-sonnet-4-6")
    assert steps(served) == [
        ("anthropic", "error", "retry_same_model", "connection_reset"),
        ("anthropic", "success", "success", None),
    ]
    assert world.clock.sleeps == []  # no backoff before the first retry of a reset


def test_a_second_reset_in_a_row_waits_the_jittered_backoff(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path
) -> None:
    simulator.set_profile("fault:kind=reset,provider=anthropic,rate=1,hits=2")
    # (a cold provider's two warm-up calls would both be spent on the resets)
    world = Loopback(simulator, http, tmp_path / "b.sqlite", BreakerPolicy(warm_up_calls=5))
    world.caller.policy = StagePolicy(backoff=BACKOFF, max_attempts=6, attempts_per_model=3)
    served = world.call(["claude-sonnet-4-6", "gpt-4.1"])
    assert served.provider == "anthropic" and calls(simulator, "anthropic") == 3
    # The first retry went at once; the second waited full jitter for retry 1 (rng untouched by the first).
    assert world.clock.sleeps == [pytest.approx(full_jitter_delay(1, BACKOFF, random.Random(SEED)))]


# ------------------------------------------------- answers the real services give that the simulator was kind about

MODEL_OF = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1", "gemini": "gemini-2.5-flash"}


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_reasoning_tokens_count_as_output_on_every_provider(simulator: ProviderSimulator, provider: str) -> None:
    # Anthropic puts a thinking block before the text and counts it in output_tokens; OpenAI counts reasoning in
    # completion_tokens; Gemini reports it apart, in thoughtsTokenCount. All three bill it as output.
    simulator.set_profile(f"reasoning:provider={provider}")
    with adapter(simulator, provider) as thinking:
        completion = thinking.complete(MODEL_OF[provider], request(), timeout=5)
    assert parse(completion.text).genre  # the thinking is not part of the answer
    assert completion.output_tokens == estimate_tokens(completion.text) + REASONING_TOKENS


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_an_answer_stopped_by_the_context_window_is_truncated(simulator: ProviderSimulator, provider: str) -> None:
    # Anthropic says stop_reason "model_context_window_exceeded" (Claude 4.5+); the text is cut all the same.
    simulator.set_profile(f"window-exhausted:provider={provider}")
    with adapter(simulator, provider) as cut:
        completion = cut.complete(MODEL_OF[provider], request(), timeout=5)
    assert completion.truncated
    with pytest.raises(ValueError):
        parse(completion.text)


def test_a_request_over_the_tokens_per_minute_limit_falls_to_the_next_model_at_once(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path
) -> None:
    simulator.set_profile("request-over-tpm:model=gpt-4.1")
    with adapter(simulator, "openai") as openai, pytest.raises(UnsupportedParameterError) as caught:
        openai.complete("gpt-4.1", request(), timeout=5)
    assert (caught.value.status, caught.value.error_code) == (429, REQUEST_OVER_RATE_LIMIT)
    assert caught.value.error_class == "provider_unavailable"

    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.call(["gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4-6"])
    # Waiting never helps a request larger than the limit itself: no retry, no backoff; the provider's other
    # model (whose limit is its own) serves, and the provider is not counted as failing.
    assert (served.provider, served.model) == ("openai", "gpt-4.1-mini")
    assert steps(served) == [
        ("openai", "error", "fallback_next_model", REQUEST_OVER_RATE_LIMIT),
        ("openai", "success", "success", None),
    ]
    assert world.clock.sleeps == []
    assert world.breaker.store.read("openai").consecutive_failures == 0


@pytest.mark.parametrize(("wait", "hint"), [(0.174, 0.174), (3.89, 3.89), (6.5, 6.5), (360.0, 60.0)])
def test_an_openai_token_rate_limit_without_retry_after_takes_its_wait_from_the_reset_header(
    simulator: ProviderSimulator, wait: float, hint: float
) -> None:
    simulator.set_profile(f"token-rate-limit:retry_after={wait}")
    with adapter(simulator, "openai") as openai, pytest.raises(TransientProviderError) as caught:
        openai.complete("gpt-4.1", request(), timeout=5)
    assert caught.value.status == 429 and caught.value.error_code == "rate_limit_exceeded"
    assert caught.value.retry_after == pytest.approx(hint)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("174ms", 0.174), ("3.89s", 3.89), ("6m0s", 360.0), ("1h2m3s", 3723.0), ("1.5m", 90.0), ("0s", 0.0)],
)
def test_go_durations_parse(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5", "-3s", "3s4", "nan s"])
def test_what_is_no_go_duration_is_no_hint(text: str) -> None:
    assert parse_go_duration(text) is None


@pytest.mark.parametrize(
    ("provider", "chain"),
    [
        ("anthropic", ["claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4.1"]),
        ("openai", ["gpt-4o-mini", "gpt-4.1-mini", "claude-sonnet-4-6"]),
        ("gemini", ["gemini-2.5-pro", "gemini-2.5-flash", "gpt-4.1"]),
    ],
)
def test_a_retired_model_falls_to_the_same_providers_next_model(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path, provider: str, chain: list[str]
) -> None:
    # A 404 that names the model says nothing of the provider's other models (models are retired one by one).
    simulator.set_profile(f"model-not-found:provider={provider},model={chain[0]}")
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.call(chain)
    assert (served.provider, served.model) == (provider, chain[1])
    assert steps(served) == [
        (provider, "error", "fallback_next_model", MODEL_NOT_FOUND),
        (provider, "success", "success", None),
    ]
    assert world.breaker.store.read(provider).consecutive_failures == 0


def test_a_gemini_candidate_stopped_for_its_language_falls_to_the_next_model_without_a_retry(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path
) -> None:
    # finishReason LANGUAGE with no content is the service's verdict on the input, not a garbled answer: the
    # same request gets the same verdict, while another model may well read the language.
    simulator.set_profile("candidate-stopped:reason=LANGUAGE")
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.call(["gemini-2.5-flash", "gpt-4.1"])
    assert (served.provider, served.model) == ("openai", "gpt-4.1")
    assert calls(simulator, "gemini") == 1
    assert steps(served)[0] == ("gemini", "error", "fallback_next_model", UNSUPPORTED_LANGUAGE)
    assert world.breaker.store.read("gemini").consecutive_failures == 0


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_a_cdn_error_page_is_transient_and_reads_as_its_title(simulator: ProviderSimulator, provider: str) -> None:
    simulator.set_profile(f"proxy-html:provider={provider}")
    with adapter(simulator, provider) as proxied, pytest.raises(TransientProviderError) as caught:
        proxied.complete(MODEL_OF[provider], request(), timeout=5)
    error = caught.value
    assert error.status == 502 and error.request_id and error.request_id.endswith("-LAX")  # the cf-ray
    # What reaches logs, metadata and telemetry is the page's title, not its markup.
    assert error.message == "502 Bad Gateway"
    assert "<" not in str(error)


@pytest.mark.parametrize(
    ("reason", "error_type", "code"),
    [
        ("RECITATION", PermanentProviderError, "recitation"),
        ("PROHIBITED_CONTENT", PermanentProviderError, "safety_refusal"),
        ("BLOCKLIST", PermanentProviderError, "safety_refusal"),
        ("SPII", PermanentProviderError, "safety_refusal"),
        ("LANGUAGE", UnsupportedParameterError, "unsupported_language"),
        # No stated cause, or a tool call we never asked for: a glitch of that answer, worth one more try.
        ("OTHER", TransientProviderError, "malformed_response"),
        ("MALFORMED_FUNCTION_CALL", TransientProviderError, "malformed_response"),
    ],
)
def test_a_gemini_candidate_stopped_before_any_text_is_classified_by_its_finish_reason(
    simulator: ProviderSimulator, reason: str, error_type: type[ProviderError], code: str
) -> None:
    simulator.set_profile(f"candidate-stopped:reason={reason}")
    with adapter(simulator, "gemini") as gemini, pytest.raises(ProviderError) as caught:
        gemini.complete("gemini-2.5-flash", request(), timeout=5)
    assert type(caught.value) is error_type and caught.value.error_code == code
    assert caught.value.status == 200
    if code != "malformed_response":
        assert f"finishReason={reason}" in caught.value.message


def test_a_gemini_thinking_model_whose_thoughts_took_the_whole_ceiling_is_a_truncated_empty_answer(
    simulator: ProviderSimulator,
) -> None:
    simulator.set_profile("candidate-stopped:reason=MAX_TOKENS")
    with adapter(simulator, "gemini") as gemini:
        completion = gemini.complete("gemini-2.5-flash", request(), timeout=5)
    assert completion.truncated and completion.text == ""
    # The thoughts were billed: the ceiling's worth of output, though no candidate token came back.
    assert completion.output_tokens == completion.max_tokens


def test_a_health_probe_of_a_retired_model_reports_the_model_not_a_provider_still_down(
    simulator: ProviderSimulator, tmp_path: Path
) -> None:
    simulator.set_profile("model-not-found:provider=openai")
    breaker = CircuitBreaker(SQLiteBreakerStore(tmp_path / "b.sqlite"), BreakerPolicy())
    with adapter(simulator, "openai") as openai:
        result = probe_provider("openai", "gpt-4.1", openai, breaker, timeout_seconds=5)
    assert (result.outcome, result.detail) == ("unavailable", f"provider_unavailable: {MODEL_NOT_FOUND}")
    assert breaker.state("openai") == "closed"  # the provider answered: it is up


def test_gemini_3_gets_its_default_temperature_so_it_does_not_loop_to_the_ceiling(
    simulator: ProviderSimulator,
) -> None:
    # Google's Gemini 3 guide: keep temperature at its default 1.0; lower values may loop. A loop runs to the
    # output ceiling, which the executor would then raise to the model's 65,536-token limit before splitting.
    simulator.set_profile("temperature-loop")
    with adapter(simulator, "gemini") as gemini:
        three = gemini.complete("gemini-3-flash-preview", request(), timeout=5)
        older = gemini.request_body(request(), "gemini-2.5-flash")
    assert not three.truncated and parse(three.text).genre
    assert older["generationConfig"]["temperature"] == 0.0  # Gemini 2.5 still gets the request's temperature


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_a_gzip_answer_that_will_not_decompress_is_a_transient_malformed_response(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path, provider: str
) -> None:
    # The real APIs gzip their answers; a damaged compressed body is raised by httpx as DecodingError, which is
    # no TransportError: it must not escape the adapter (the executor would take it for a bug and end the stage).
    simulator.set_profile(f"garbled-gzip:provider={provider}")
    with adapter(simulator, provider) as cut, pytest.raises(TransientProviderError) as caught:
        cut.complete(MODEL_OF[provider], request(), timeout=5)
    assert caught.value.error_code == "malformed_response"

    simulator.set_profile(f"fault:kind=garbled_gzip,provider={provider},hits=1")
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.call([MODEL_OF[provider]])
    assert served.provider == provider and steps(served)[0][3] == "malformed_response"


@pytest.mark.parametrize(("provider", "caches"), [("openai", True), ("gemini", True), ("anthropic", False)])
def test_a_prompt_served_from_the_providers_cache_is_priced_at_the_cached_rate(
    simulator: ProviderSimulator, http: httpx.Client, tmp_path: Path, provider: str, caches: bool
) -> None:
    # OpenAI counts the cached part inside prompt_tokens (prompt_tokens_details.cached_tokens), Gemini inside
    # promptTokenCount (cachedContentTokenCount); both bill it at their cached-input rate. Anthropic caches only
    # at a cache_control breakpoint, which no request of ours sets.
    simulator.set_profile(f"prompt-cached:provider={provider}")
    long = request().model_copy(update={"prompt": request().prompt + " " + "x" * 4800})  # ~1,2xx tokens
    world = Loopback(simulator, http, tmp_path / "b.sqlite")
    served = world.caller.call("project_config", long, parse, [MODEL_OF[provider]])
    completion = served.completion
    cached = completion.input_tokens // 128 * 128 if caches else 0  # from 1,024 tokens on, in steps of 128
    assert completion.input_tokens >= 1024 and completion.cached_input_tokens == cached
    row = shipped_table().get(provider, MODEL_OF[provider])
    assert row is not None and row.input_per_mtok is not None and row.output_per_mtok is not None
    cached_rate = row.cached_input_per_mtok if row.cached_input_per_mtok is not None else row.input_per_mtok
    expected = (
        (completion.input_tokens - cached) * row.input_per_mtok
        + cached * cached_rate
        + completion.output_tokens * row.output_per_mtok
    ) / 1_000_000
    (attempt,) = served.attempts
    assert attempt.cached_input_tokens == cached
    assert attempt.cost_usd == pytest.approx(expected)
    if cached:  # what the layer recorded before: every prompt token at the full input rate
        assert attempt.cost_usd < (
            completion.input_tokens * row.input_per_mtok + completion.output_tokens * row.output_per_mtok
        ) / 1_000_000
