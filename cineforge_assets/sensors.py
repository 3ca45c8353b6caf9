"""Sensors of the code location."""

from __future__ import annotations

from dagster import SensorDefinition

sensors: list[SensorDefinition] = []
