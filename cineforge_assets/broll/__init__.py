"""B-roll for a screenplay: Veo jobs per scene and the await gate that sees them through (no Dagster here)."""
