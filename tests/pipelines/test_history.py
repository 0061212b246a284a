"""The record-link history extract through the claims pipelines: the build plans its months with
the window's as one range run, bronze and silver take them in, and their faults are quarantined
at the file and line faults.json names, like any month's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import polars as pl
import pytest

from pipelines.build import plan
from pipelines.defs import claims, registry
from tests.conftest import City
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REGISTRY = [registry.bronze_registry, registry.silver_registry]
CLAIMS = [claims.bronze_claims, claims.bronze_pharmacy, claims.silver_claims]


@pytest.fixture(scope="module")
def loaded(history_city: City, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    lake = Lake(tmp_path_factory.mktemp("history") / "lakehouse", history_city.out)
    runs = [
        lake.materialise(REGISTRY),
        lake.materialise(CLAIMS, ("2014-01", "2025-02")),
    ]
    assert all(r.success for r in runs)
    yield lake


def test_the_build_plans_history_and_window_as_one_monthly_range(history_city: City) -> None:
    from pipelines.definitions import defs

    months = [s for s in plan(defs, history_city.out) if s.name == "monthly extracts"]
    assert [s.partitions for s in months] == [("2014-01", "2025-02")]


def test_history_reaches_silver(loaded: Lake, history_city: City) -> None:
    t200 = history_city.table("claims", "T200_")
    pharmacy = history_city.table("pharmacy", "PHARM_T200_")
    past = {
        *t200.filter(pl.col("_delivery").str.starts_with("history-"))["SPEC_ID_SNO"].to_list(),
        *pharmacy.filter(pl.col("_delivery").str.starts_with("history-"))["SPEC_ID_SNO"].to_list(),
    }
    silver = loaded.frame("silver.claims", pl.col("start_date") < date(2025, 1, 1))
    assert set(silver["spec_id"].to_list()) == past
    assert silver.select(pl.col("start_date").min()).item() < date(2014, 3, 1)
    assert silver["delivery_id"].str.starts_with("history-").all()
    for table, column in (
        ("silver.prescriptions", "issued_on"),
        ("silver.dispensings", "dispensed_on"),
    ):
        rows = loaded.frame(table, pl.col(column) < date(2025, 1, 1))
        assert rows.height > 100
        assert rows.select(pl.col(column).dt.year().n_unique()).item() == 11  # 2014..2024


def test_history_faults_are_quarantined_like_any_months(loaded: Lake, history_city: City) -> None:
    injected = {
        (f["path"], f["line"], f["kind"])
        for f in history_city.faults["faults"]
        if "/history-" in f["path"] and f["line"] is not None
    }
    assert injected, "faults are injected into the history's files too"
    quarantine = loaded.frame("quarantine.records", pl.col("file").str.contains("/history-"))
    lines = quarantine.filter(pl.col("line").is_not_null())
    assert set(zip(lines["file"], lines["line"], lines["reason"], strict=True)) == injected
