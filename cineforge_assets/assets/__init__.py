from cineforge_assets.assets import ingest, reliability

__all__ = ["ingest", "reliability"]
