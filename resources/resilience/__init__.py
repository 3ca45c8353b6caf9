"""Retry, backoff, circuit breaking and fallback for provider calls; knows nothing of Dagster.

Public API (import from the modules; this package imports nothing so adapters can import ``errors``
without pulling in the executor):

* ``errors``    - the taxonomy (``TransientProviderError``, ``PermanentProviderError``,
  ``ProviderUnavailableError``, ``InvalidModelOutputError``) and the layer's own outcomes
  (``BreakerOpenError``, ``ProviderWarmingError``, ``AllProvidersOpenError``,
  ``ChainExhaustedError``).
* ``backoff``   - ``BackoffPolicy``, ``full_jitter_delay``, ``delay_for``.
* ``breaker``   - ``BreakerPolicy``, ``CircuitBreaker``, ``Permit``, ``BreakerTransition``, ``BreakerStore``
  (``SQLiteBreakerStore``, ``PostgresBreakerStore``, ``MemoryBreakerStore``, ``BreakerStore.from_url``).
* ``chain``     - ``DEFAULT_CHAINS``, ``ModelRef``, ``provider_for``, ``fallback_chain_for``, ``StagePolicy``.
* ``executor``  - ``ResilientCaller``, ``CallOutcome``.
* ``telemetry`` - ``AttemptRecord``, ``TelemetryListener``, ``JsonlTelemetrySink``.
"""
