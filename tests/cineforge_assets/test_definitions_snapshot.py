"""The code location's graph matches the checked-in snapshot, so every change to it is a reviewed diff."""

from __future__ import annotations

import difflib

from dagster import AssetCheckResult, AssetKey, Definitions, asset, asset_check, define_asset_job

from cineforge_assets.definitions import defs
from tests.cineforge_assets.definitions_snapshot import (
    SNAPSHOT_PATH,
    UPDATE_COMMAND,
    describe_definitions,
    render,
)


def test_definitions_match_the_checked_in_snapshot() -> None:
    expected = SNAPSHOT_PATH.read_text(encoding="utf-8")
    actual = render(describe_definitions(defs))
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True), "snapshot", "definitions"
        )
    )
    assert actual == expected, (
        f"The Dagster definitions changed:\n{diff}\n"
        f"If the change is intended, update the snapshot and commit it:\n    {UPDATE_COMMAND}"
    )


def test_description_names_each_kind_of_definition_and_their_edges() -> None:
    @asset(group_name="g")
    def upstream() -> int:
        return 1

    @asset(group_name="g")
    def downstream(upstream: int) -> int:
        return upstream + 1

    @asset_check(asset=downstream)
    def positive() -> AssetCheckResult:
        return AssetCheckResult(passed=True)

    description = describe_definitions(
        Definitions(
            assets=[upstream, downstream],
            asset_checks=[positive],
            jobs=[define_asset_job("both", selection=[AssetKey("upstream"), AssetKey("downstream")])],
        )
    )
    assert description["assets"]["downstream"] == {"group": "g", "deps": ["upstream"], "partitions": None}
    assert description["asset_checks"] == ["downstream:positive"]
    assert description["jobs"] == {"both": ["downstream", "downstream_positive", "upstream"]}
    assert description["schedules"] == {} and description["sensors"] == {} and description["resources"] == {}
