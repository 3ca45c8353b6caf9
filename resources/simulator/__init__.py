"""Loopback simulator of the Anthropic, OpenAI and Gemini APIs with injectable faults."""

from resources.simulator.faults import (
    FAULT_KINDS,
    PROFILES,
    FaultInjector,
    FaultKind,
    FaultProfile,
    FaultRule,
    ManualClock,
    profile_from_spec,
)
from resources.simulator.routing import Route, RouteHandler, Router, SimRequest, SimResponse
from resources.simulator.server import ProviderSimulator, SimulatorStats

__all__ = [
    "FAULT_KINDS",
    "PROFILES",
    "FaultInjector",
    "FaultKind",
    "FaultProfile",
    "FaultRule",
    "ManualClock",
    "ProviderSimulator",
    "Route",
    "RouteHandler",
    "Router",
    "SimRequest",
    "SimResponse",
    "SimulatorStats",
    "profile_from_spec",
]
