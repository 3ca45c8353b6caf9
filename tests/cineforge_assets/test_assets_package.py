"""``cineforge_assets.assets`` holds assets only: ``definitions.py`` loads every asset of the package from it."""

from __future__ import annotations

import importlib
import pkgutil

from dagster import load_assets_from_modules

from cineforge_assets import assets


def test_every_module_under_assets_defines_an_asset() -> None:
    names = [info.name for info in pkgutil.iter_modules(assets.__path__, f"{assets.__name__}.")]
    modules = [importlib.import_module(name) for name in names]
    assert len(modules) >= 3  # ingest, broll, reliability
    helpers = [module.__name__ for module in modules if not load_assets_from_modules([module])]
    assert helpers == [], "a module without assets belongs outside assets/ (step_failures.py, run_events.py, ...)"
