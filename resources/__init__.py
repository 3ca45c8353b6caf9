"""Dagster resources for CineForge: provider adapters, the resilience layer, IO managers."""
