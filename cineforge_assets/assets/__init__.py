"""The code location's assets, one module per group; ``definitions.py`` loads every asset of the package."""
