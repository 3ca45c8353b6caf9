from cineforge_assets.assets import ingest

__all__ = ["ingest"]
