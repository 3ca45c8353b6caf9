"""What the spend ledger costs per provider call: ``ResilientCaller`` over an adapter that answers at once,
without a ledger, with a ledger that only records spend (no cap: one write per call), and with caps (reserve
and settle: two writes per call), on the SQLite store and, when one answers on 127.0.0.1:5432, PostgreSQL
(a private database, dropped afterwards).

    .venv/bin/python bench/budget.py [--calls 3000]

Prints a Markdown table (median microseconds per call over interleaved batches of 100) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resources.providers.base import Completion, CompletionRequest  # noqa: E402
from resources.resilience.breaker import CircuitBreaker  # noqa: E402
from resources.resilience.breaker_store import SQLiteBreakerStore  # noqa: E402
from resources.resilience.budget import BudgetCaps, SpendLedger, SpendStore, spend_store_from_url  # noqa: E402
from resources.resilience.executor import ResilientCaller  # noqa: E402
from tests.postgres import PostgresUnavailable, scratch_database  # noqa: E402

BATCH = 100
REQUEST = CompletionRequest(system="<task>normalize</task>", prompt='<input>{"text": "INT. ROOM - DAY"}</input>')


class CannedAdapter:
    """Answers at once with usage, so the ledger has a real cost to settle."""

    name = "anthropic"

    def __init__(self) -> None:
        self._completion = Completion(
            provider="anthropic", model="claude-sonnet-4-6", text='{"ok": true}', input_tokens=20, output_tokens=5
        )

    def complete(self, model: str, request: Any, *, timeout: float) -> Completion:
        return self._completion

    def close(self) -> None:
        pass


@contextmanager
def postgres_url() -> Iterator[str | None]:
    """A scratch database on the machine's PostgreSQL, or None where there is none."""
    try:
        with scratch_database("cineforge_bench", connect_timeout=3) as dsn:
            yield dsn
    except (ImportError, PostgresUnavailable):
        yield None

def caller(tmp: Path, label: str, ledger: SpendLedger | None) -> ResilientCaller:
    return ResilientCaller(
        {"anthropic": CannedAdapter()},
        CircuitBreaker(SQLiteBreakerStore(tmp / f"breakers-{label}.sqlite")),
        rng=random.Random(0),
        chains={"normalize": ["claude-sonnet-4-6"]},
        run_id="bench-run",
        ledger=ledger,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args(argv)
    stores: list[SpendStore] = []
    with tempfile.TemporaryDirectory(prefix="cineforge-budget-") as tmp_name, postgres_url() as pg:
        tmp = Path(tmp_name)
        sqlite_url = f"sqlite:///{tmp / 'spend.sqlite'}"
        caps = BudgetCaps(run_usd=1e9, daily_usd=1e9)
        variants: dict[str, ResilientCaller] = {"no ledger": caller(tmp, "none", None)}
        for store_name, url in (("SQLite", sqlite_url), ("PostgreSQL", pg)):
            if url is None:
                continue
            for cap_name, cap in (("spend recorded, no cap", BudgetCaps()), ("per-run + daily caps", caps)):
                store = spend_store_from_url(url)
                stores.append(store)
                label = f"{store_name}: {cap_name}"
                variants[label] = caller(tmp, f"{store_name}-{cap_name[:5]}", SpendLedger(store, cap, run_id="r"))
        calls: dict[str, Callable[[], object]] = {
            name: (lambda c=c: c.call("normalize", REQUEST, lambda text: text)) for name, c in variants.items()
        }
        for call in calls.values():  # open files and connections, create tables, prime the breaker
            for _ in range(100):
                call()
        timings: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(max(1, args.calls // BATCH)):
            for name, call in calls.items():
                start = time.perf_counter()
                for _ in range(BATCH):
                    call()
                timings[name].append((time.perf_counter() - start) / BATCH * 1e6)
        for store in stores:
            store.close()
    print(f"{args.calls} calls per variant, interleaved batches of {BATCH}; median us per call")
    print()
    print("| ledger | median us per call | IQR us |")
    print("|---|---|---|")
    for name, values in timings.items():
        q = statistics.quantiles(values, n=4)
        print(f"| {name} | {statistics.median(values):.1f} | {q[0]:.1f}-{q[2]:.1f} |")
    if pg is None:
        print("\n(PostgreSQL not reachable on 127.0.0.1:5432: its rows are left out)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
