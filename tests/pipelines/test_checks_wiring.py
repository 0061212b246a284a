"""How the data-quality checks are wired into the definitions, without running them: every
checked table's checks are declared on the asset that writes it, and every table a check reads
is written before that asset's step (in the same run, or in an earlier stage of the build)."""

from __future__ import annotations

import dagster as dg
import pytest

from lakehouse import quality
from lakehouse.catalog import TABLES
from pipelines.build import GRAINS, grain
from pipelines.defs import checks


def test_every_catalogued_check_is_declared_on_the_asset_that_writes_its_table() -> None:
    from pipelines.definitions import ASSETS, defs

    assert checks.unwired(ASSETS) == {}
    graph = defs.resolve_asset_graph()
    declared = set(graph.asset_check_keys)
    expected = {
        dg.AssetCheckKey(checks.asset_key(c.table), c.dagster_name)
        for key in graph.materializable_asset_keys
        for c in quality.checks(checks.table_name(key))
        if checks.table_name(key) in TABLES
    }
    assert declared == expected
    # No check is an op of its own: each belongs to the asset definition of its table.
    for assets_def in ASSETS:
        assert {k.asset_key for k in assets_def.check_keys} <= set(assets_def.keys)


def test_definitions_with_an_unwired_checked_table_do_not_load() -> None:
    @dg.asset(key=["silver", "citizens"])
    def bare() -> None:
        """silver.citizens written without its checks."""

    with pytest.raises(ValueError, match=r"silver\.citizens: isPrimaryKey_citizen_key"):
        checks.require_wired([bare])


def test_every_table_a_check_reads_is_written_before_the_check_runs() -> None:
    """A check runs in its asset's step, so Dagster orders it only by the asset's own deps: a
    table it reads (a foreign key's, the citizens of a life check) must be written by the same
    asset, be upstream of it, or come from an earlier stage of ``gjh build``."""
    from pipelines.definitions import ASSETS, defs

    graph = defs.resolve_asset_graph()
    for assets_def in ASSETS:
        for spec in assets_def.check_specs:
            upstream = graph.get_ancestor_asset_keys(spec.asset_key)
            for dep in (d.asset_key for d in spec.additional_deps):
                if dep in assets_def.keys or dep in upstream or not graph.has(dep):
                    continue
                assert GRAINS.index(grain(graph, dep)) < GRAINS.index(
                    grain(graph, spec.asset_key)
                ), f"{spec.key.to_user_string()} reads {dep.to_user_string()}"
