"""Fixtures for the scale-out profile tests: one private ``Fleet`` per test (see fleet.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.fleet import Fleet, fleet_at, services_unavailable


@pytest.fixture(scope="session")
def services() -> None:
    reason = services_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def fleet(services: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    """A fleet whose environment this test process shares (for its own view of the instance)."""
    with fleet_at(tmp_path) as fleet:
        for key, value in fleet.env().items():
            if key.startswith(("CINEFORGE_", "DAGSTER_")):
                monkeypatch.setenv(key, value)
        yield fleet


@pytest.fixture
def pg_instance(fleet: Fleet) -> Iterator[Any]:
    """The fleet's PostgreSQL-backed Dagster instance, created (schema included) before any worker
    starts, so workers and orchestrators never race to create the tables."""
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        yield instance
