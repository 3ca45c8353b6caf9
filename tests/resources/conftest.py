"""A fresh loopback simulator per test for the adapter and simulator tests (binding a port and a thread is
cheap)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from resources.simulator import ManualClock, ProviderSimulator


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def simulator(clock: ManualClock) -> Iterator[ProviderSimulator]:
    with ProviderSimulator(clock=clock, extensions=()) as sim:
        yield sim
