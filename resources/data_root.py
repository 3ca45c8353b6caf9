"""Where the resources keep their files when their config names no place: under the data root.

Everything lives under one data root (``CINEFORGE_DATA``, default ``./data``) so a deployment can point
every worker at the same shared volume with one variable. The root is read when a resource uses it, not
when the code location is loaded: a run (or a test) that sets ``CINEFORGE_DATA`` gets its own files even
though the ``Definitions`` were built before. ``cineforge_assets.paths`` builds the pipeline's own places
(sources, inbox) on the same root. Standard library only, so ``resources/`` never imports
``cineforge_assets`` to find a path.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    return Path(os.environ.get("CINEFORGE_DATA", "data")).expanduser().resolve()


def artifacts_dir(root: Path | None = None) -> Path:
    """The IO manager's artifacts (``ArtifactIOManager``)."""
    return (root or data_root()) / "artifacts"


def telemetry_path(root: Path | None = None) -> Path:
    """The attempt log the AI resource appends to (``AIProviderResource.telemetry_file``)."""
    return (root or data_root()) / "telemetry" / "events.jsonl"


def response_cache_dir(root: Path | None = None) -> Path:
    """Answers of split stages' parts (``AIProviderResource.response_cache``)."""
    return (root or data_root()) / "cache" / "responses"
