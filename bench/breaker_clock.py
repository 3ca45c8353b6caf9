"""What reading the database's clock costs the PostgreSQL breaker store.

Since issue 14 every breaker transaction on PostgreSQL reads ``clock_timestamp()`` after taking the row
lock (one more statement per transaction), and a breaker's store read asks the database's time with the
record. This measures both against the same store taking the caller's clock (``database_clock=False``),
on the local PostgreSQL, in a private database created and dropped by the run. The two variants run in
interleaved batches, so load on the shared machine falls on both alike.

    .venv/bin/python -m bench.breaker_clock [--calls 2000] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from bench.harness import machine, percentile, write_section
from resources.resilience.breaker_state import BreakerRecord
from resources.resilience.breaker_store import PostgresBreakerStore
from tests.postgres import scratch_database

START, END = "<!-- breaker-clock:start -->", "<!-- breaker-clock:end -->"
BATCH = 50


@contextmanager
def private_database() -> Iterator[str]:
    with scratch_database("cineforge_bench") as dsn:
        yield dsn

def _bump(record: BreakerRecord, now: float) -> tuple[BreakerRecord, None]:
    # A write every time (a failure streak growing), as a failing provider's records are.
    return replace(record, consecutive_failures=record.consecutive_failures + 1), None


def measure(calls: int) -> dict[str, dict[str, list[float]]]:
    """Per-operation latencies in microseconds, by variant."""
    samples: dict[str, dict[str, list[float]]] = {
        op: {"database clock": [], "caller clock": []} for op in ("update", "read")
    }
    with private_database() as dsn:
        stores = {
            "database clock": PostgresBreakerStore(dsn, database_clock=True),
            "caller clock": PostgresBreakerStore(dsn, database_clock=False),
        }
        ops: dict[str, Callable[[PostgresBreakerStore], object]] = {
            "update": lambda store: store.update_at("anthropic", _bump, time.time()),
            "read": lambda store: store.read_at("anthropic", time.time()),
        }
        for store in stores.values():  # connect and warm up outside the timing
            for op in ops.values():
                for _ in range(BATCH):
                    op(store)
        for _ in range(max(1, calls // BATCH)):
            for variant, store in stores.items():
                for name, op in ops.items():
                    for _ in range(BATCH):
                        started = time.perf_counter()
                        op(store)
                        samples[name][variant].append((time.perf_counter() - started) * 1e6)
        for store in stores.values():
            store.close()
    return samples


def render(samples: dict[str, dict[str, list[float]]], calls: int) -> str:
    rows = ["| operation | clock | median us | p95 us |", "|---|---|---|---|"]
    for op, variants in samples.items():
        for variant, values in variants.items():
            rows.append(
                f"| `{op}_at` | {variant} | {statistics.median(values):.0f} | {percentile(values, 95):.0f} |"
            )
    def cost(op: str) -> str:
        database = statistics.median(samples[op]["database clock"])
        caller = statistics.median(samples[op]["caller clock"])
        difference = database - caller
        if abs(difference) < 0.1 * caller:  # smaller than this run's batch-to-batch noise on a shared machine
            return f"no measurable cost ({difference:+.0f} us on a median of {caller:.0f} us)"
        return f"{difference:+.0f} us on a median of {caller:.0f} us"

    return "\n".join(
        [
            START,
            "## Breaker store: the database's clock on PostgreSQL (`bench/breaker_clock.py`)",
            "",
            f"Machine: {machine()}. {calls} calls per operation and variant, interleaved in batches of {BATCH}, "
            "against the local PostgreSQL over TCP loopback (private database, dropped afterwards).",
            "",
            *rows,
            "",
            f"Reading `clock_timestamp()` inside the transaction (one more statement after the row lock): "
            f"{cost('update')} per breaker write, whose time is mostly the commit. The database's time on a "
            f"read comes with the record in one statement: {cost('read')}. Writes happen on state changes and "
            "failures only; the closed, healthy hot path stays in process (see the pipeline section).",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    args = parser.parse_args(argv)
    section = render(measure(args.calls), args.calls)
    if args.no_write:
        print(section)
    else:
        write_section(section, START, END)
        print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
