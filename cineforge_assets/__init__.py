"""CineForge Pipeline: a Dagster code location that turns a screenplay into production assets.

``dagster ... -m cineforge_assets`` finds ``defs`` here.
"""

from cineforge_assets.definitions import defs

__all__ = ["defs"]
