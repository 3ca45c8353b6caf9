"""Instructions the layer executes per call (valgrind callgrind): a per-call cost no other process can disturb.

    .venv/bin/python bench/layer_instructions.py            # this checkout
    .venv/bin/python bench/layer_instructions.py --tree DIR # another checkout (e.g. a `git worktree` of a base)

Why beside ``hedge_overhead.py``: its microseconds move with the machine (the same commit measured 34 us on
one machine and 84 us on another) and with whatever else the shared machine runs; callgrind counts the
instructions executed, the same for the same code, inputs and interpreter whatever the load. The figure is
``ResilientCaller.call`` over an in-process adapter that answers at once, with the retry budget and hedging
compiled in (this stage not opted in) and, separately, hedging this very stage: (instructions of 1,300
calls - instructions of 300 calls) / 1,000, so start-up and imports cancel out. Needs valgrind (Debian's
package); prints, writes nothing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Run by the interpreter under callgrind: ``argv``: tree, calls, stage to hedge ("-" for none).
_WORKLOAD = """
import random, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from resources.providers.base import Completion, CompletionRequest
from resources.resilience.breaker import CircuitBreaker
from resources.resilience.breaker_store import SQLiteBreakerStore
from resources.resilience.executor import ResilientCaller
from resources.resilience.hedge import CancellableClients, HedgePolicy, HedgeQuota, Hedger, LatencyTracker
from resources.resilience.retry_budget import RetryBudget, SQLiteBudgetStore

class Canned:
    name = "anthropic"
    answer = Completion(text="INT. ROOM - DAY", model="claude-sonnet-4-6", provider="anthropic",
                        input_tokens=40, output_tokens=8)
    def complete(self, model, request, *, timeout):
        return self.answer
    def close(self):
        pass

request = CompletionRequest(system="<task>normalize</task>", prompt='<input>{"text": "INT. ROOM - DAY"}</input>')
store = Path(tempfile.mkdtemp()) / "b.sqlite"
hedged = frozenset() if sys.argv[3] == "-" else frozenset({sys.argv[3]})
hedger = Hedger(HedgePolicy(min_samples=20), CancellableClients(lambda provider, client: Canned()),
                stages=hedged or frozenset({"project_config"}), tracker=LatencyTracker(), quota=HedgeQuota(0.1))
caller = ResilientCaller({"anthropic": Canned()}, CircuitBreaker(SQLiteBreakerStore(store)), rng=random.Random(0),
                         chains={"normalize": ["claude-sonnet-4-6", "gpt-4.1"]},
                         retry_budget=RetryBudget(SQLiteBudgetStore(store)), hedger=hedger)
for _ in range(int(sys.argv[2])):
    caller.call("normalize", request, lambda text: text)
"""


def instructions(tree: Path, calls: int, hedge_stage: str) -> int:
    with tempfile.TemporaryDirectory(prefix="cineforge-callgrind-") as tmp:
        script = Path(tmp) / "workload.py"
        script.write_text(_WORKLOAD, encoding="utf-8")
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={Path(tmp) / 'out'}",
                sys.executable,
                str(script),
                str(tree),
                str(calls),
                hedge_stage,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_call(tree: Path, hedge_stage: str) -> float:
    return (instructions(tree, 1300, hedge_stage) - instructions(tree, 300, hedge_stage)) / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="checkout whose resources/ to measure")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    tree = args.tree.resolve()
    print(f"{tree}: retry budget + hedging compiled in: {per_call(tree, '-'):,.0f} instructions per call")
    print(f"{tree}: retry budget + hedging of this stage: {per_call(tree, 'normalize'):,.0f} instructions per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
