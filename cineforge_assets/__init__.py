"""CineForge Pipeline. The code location is ``cineforge_assets.definitions`` (``defs``).

Kept empty so importing a parser does not build the pipeline.
"""
