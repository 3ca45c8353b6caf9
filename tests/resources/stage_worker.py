"""Runs one AI stage in its own process (a stand-in for another Dagster step process or host).

Usage: python tests/resources/stage_worker.py SIM_URL STORE_URL NOW [STAGE]
Prints one JSON line: who served the call and the attempt decisions. ``NOW`` is the epoch the process's
clock reads, so tests move time across processes without sleeping.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    sim_url, store_url, now = sys.argv[1], sys.argv[2], float(sys.argv[3])
    stage = sys.argv[4] if len(sys.argv) > 4 else "project_config"
    from resources.ai import AIProviderResource

    ai = AIProviderResource(
        mode="simulated",
        simulator_url=sim_url,
        breaker_store_url=store_url,
        breaker_failure_threshold=2,
        breaker_cooldown_seconds=30.0,
        breaker_first_cooldown_seconds=30.0,  # a fixed open period: the test times its calls by it
        breaker_half_open_probes=1,
        backoff_base_seconds=0.001,
        backoff_cap_seconds=0.002,
        telemetry_path=sys.argv[5] if len(sys.argv) > 5 else "/dev/null",
        seed=1,
    )
    result = ai.run_task(
        stage=stage,
        task="project_insights",
        payload={"title": "Worker", "characters": ["ANA"], "excerpt": "INT. ROOM - DAY", "scene_count": 1},
        clock=lambda: now,
    )
    print(
        json.dumps(
            {
                "provider": result.provider,
                "model": result.model,
                "decisions": [[a.provider, a.outcome, a.decision, a.error_code] for a in result.attempts],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
