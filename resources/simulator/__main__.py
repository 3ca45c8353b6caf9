"""``python -m resources.simulator --port P --faults PROFILE``: serve the simulator standalone.

The first stdout line is the base URL (scripts read it to find a port chosen with ``--port 0``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from resources.simulator.faults import PROFILES
from resources.simulator.server import ProviderSimulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m resources.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument(
        "--faults",
        "--profile",
        dest="faults",
        default="none",
        help="profile spec, e.g. 'overload-storm:duration=5', 'flaky+safety', JSON, or a .json path",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="simulated seconds per provider call")
    parser.add_argument("--list-profiles", action="store_true")
    parser.add_argument(
        "--output-tokens-per-s",
        type=float,
        default=None,
        help="pace answers: each output token adds 1/N s to --latency (e.g. 70, a real model's speed)",
    )
    parser.add_argument("--log-requests", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_profiles:
        for name, (description, _) in PROFILES.items():
            print(f"{name:16} {description}")
        return 0
    try:
        simulator = ProviderSimulator(
            args.host,
            args.port,
            profile=args.faults,
            seed=args.seed,
            latency_s=args.latency,
            output_tokens_per_s=args.output_tokens_per_s,
            log_requests=args.log_requests,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(simulator.base_url, flush=True)
    print(
        f"provider simulator on {simulator.base_url} profile={simulator.faults.profile.name!r} "
        f"seed={args.seed} latency={args.latency}s\n"
        f"  anthropic: {simulator.anthropic_url}\n  openai:    {simulator.openai_url}\n"
        f"  gemini:    {simulator.gemini_url}",
        file=sys.stderr,
        flush=True,
    )

    simulator.serve_until_signalled()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
