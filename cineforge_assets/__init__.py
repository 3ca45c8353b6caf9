"""CineForge Pipeline: a Dagster code location that turns a screenplay into production assets.

``dagster ... -m cineforge_assets`` finds ``defs`` here. (Dagster's module autodiscovery scans module
attributes, so ``defs`` cannot be loaded lazily; the domain modules under ``screenplay/`` themselves
never import Dagster.)
"""

from cineforge_assets.definitions import defs

__all__ = ["defs"]
