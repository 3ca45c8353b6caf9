"""Schedules of the code location."""

from __future__ import annotations

from dagster import ScheduleDefinition

schedules: list[ScheduleDefinition] = []
