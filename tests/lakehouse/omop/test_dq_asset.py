"""The Dagster asset ``gold.omop_dq_results``: after every omop table by key, it runs the report
in process on hand-built omop tables and records the run, counted in its metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from lakehouse.catalog.dq import RESULTS
from lakehouse.catalog.omop import TABLES as OMOP_TABLES
from lakehouse.omop import spec
from pipelines.defs.dq import omop_dq_results
from tests.lakehouse.omop.test_dq import clean, write
from tests.pipelines.conftest import Lake


def test_the_asset_depends_on_every_omop_table_by_key() -> None:
    (asset_spec,) = omop_dq_results.specs
    assert asset_spec.key == dg.AssetKey(["gold", "omop_dq_results"])
    assert {d.asset_key for d in asset_spec.deps} == {dg.AssetKey(["omop", t]) for t in OMOP_TABLES}


def test_the_asset_records_a_run_of_every_check_type(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    with lake.active():
        rows = clean()
        rows["drug_exposure"][0]["drug_concept_id"] = 0  # an explained failure
        write(rows)
    result = lake.materialise([omop_dq_results])
    assert result.success
    (event,) = result.get_asset_materialization_events()
    meta = event.step_materialization_data.materialization.metadata
    recorded = lake.frame(RESULTS)
    assert meta["dagster/row_count"].value == recorded.height
    assert meta["checks_failed"].value == recorded.filter(pl.col("passed").not_()).height >= 1
    assert meta["checks_failed_fatal"].value == 0
    assert set(recorded["check_name"]) == {r["checkName"] for r in spec.check_types()}
    assert recorded["run_id"].n_unique() == 1
