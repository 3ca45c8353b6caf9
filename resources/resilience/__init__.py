"""Retry, backoff, circuit breaking and fallback for provider calls; knows nothing of Dagster.

Public API (import from the modules; this package imports nothing so adapters can import ``errors``
without pulling in the executor):

* ``errors``    - the taxonomy (``TransientProviderError``, ``PermanentProviderError``,
  ``ProviderUnavailableError``, ``InvalidModelOutputError``) and the layer's own outcomes
  (``BreakerOpenError``, ``ProviderWarmingError``, ``AllProvidersOpenError``,
  ``ChainExhaustedError``).
* ``backoff``   - ``BackoffPolicy``, ``full_jitter_delay``, ``delay_for``.
* ``breaker``   - ``BreakerPolicy``, ``CircuitBreaker`` (the state machine: every transition decided there).
* ``breaker_state`` - what a breaker's state is: ``BreakerRecord``, ``Permit``, ``BreakerTransition``,
  ``BreakerSnapshot`` (types only, so ``telemetry`` can name them without importing the breaker).
* ``breaker_store`` - where it is stored: ``BreakerStore`` (``SQLiteBreakerStore``, ``PostgresBreakerStore``,
  ``MemoryBreakerStore``, ``store_from_url``, ``default_store_url``).
* ``chain``     - ``DEFAULT_CHAINS``, ``ModelRef``, ``provider_for``, ``fallback_chain_for``, ``StagePolicy``.
* ``executor``  - ``ResilientCaller``, ``CallOutcome``.
* ``telemetry`` - ``AttemptRecord``, ``TelemetryListener``, ``JsonlTelemetrySink``.
* ``health_probe`` - ``plan_probes``, ``probe_model_for``, ``probe_provider``: the provider health probe's
  decisions and its one call (the Dagster job around them is ``cineforge_assets/health.py``).
"""
