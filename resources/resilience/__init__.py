"""Retry, backoff, circuit breaking and fallback for provider calls; knows nothing of Dagster."""
