"""A loopback simulator with Veo per test, a Veo client on it, and a hand-moved clock for the gate."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from cineforge_assets.broll.jobs import BrollJob, BrollJobsFile, save_jobs
from resources.adapters.veo import VeoClient
from resources.simulator import ManualClock, ProviderSimulator
from resources.simulator.veo import VeoSimulator, extension, veo_simulator

TEST_KEY = "AIzaSyTEST-veo-key-0123456789abcdef"  # Google-key-shaped so redaction is exercised


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(clock=ManualClock(), extensions=[extension(polls_to_complete=2)]) as simulator:
        yield simulator


@pytest.fixture
def veo(sim: ProviderSimulator) -> VeoSimulator:
    return veo_simulator(sim)


@pytest.fixture
def client(sim: ProviderSimulator) -> Iterator[VeoClient]:
    with VeoClient(TEST_KEY, sim.gemini_url, timeout_s=10) as veo_client:
        yield veo_client


@pytest.fixture
def gate_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_jobs(tmp_path: Path) -> Callable[..., Path]:
    """``make_jobs(n)`` or ``make_jobs(prompts=[...])``: a jobs.json of pending jobs, scenes 1..n."""

    def make(count: int = 3, *, prompts: Sequence[str] | None = None) -> Path:
        texts = list(prompts) if prompts is not None else [f"A quiet harbour at dawn, shot {i}" for i in range(count)]
        path = tmp_path / "broll" / "demo" / "jobs.json"
        jobs = [BrollJob(scene=i + 1, prompt=text) for i, text in enumerate(texts)]
        save_jobs(path, BrollJobsFile(partition="demo", model="veo-3.0-generate-001", jobs=jobs))
        return path

    return make
