"""Screenplay domain logic: format readers, Fountain parsing and writing, scene splitting.

Nothing in this package knows about Dagster; the assets are a thin shell over it.
"""
