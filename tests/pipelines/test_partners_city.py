"""The synthetic city's partner extract (``synth/partners.py``) through the partners' pipeline:
the demo's citizens are linked, the province's patients are not, every file reconciles."""

from __future__ import annotations

import json

import polars as pl
import pytest

from lakehouse.pseudonym import citizen_key
from pipelines.defs import partners, registry
from tests.conftest import City
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def lake(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    built = Lake(tmp_path_factory.mktemp("partners_city") / "lakehouse", small_city.out)
    built.materialise([registry.bronze_registry])
    built.materialise(list(partners.PARTNER_ASSETS))
    return built


def test_the_demo_citizens_are_linked_and_strangers_are_not(lake: Lake, small_city: City) -> None:
    accounts = json.loads((small_city.out / "demo_accounts.json").read_text(encoding="utf-8"))
    demo = {
        citizen_key(a["resident_registration_number"])
        for a in accounts["accounts"]
        if a["role"] == "citizen"
    }
    persons = lake.frame("silver.partner_person", pl.col("partner") == "cnuh")
    linked = set(persons["citizen_key"].drop_nulls().to_list())
    assert demo and demo <= linked
    assert persons["citizen_key"].null_count() >= 1  # the province's patients: kept, unlinked
    counts = lake.frame("silver.partner_counts")
    assert counts.filter(
        pl.col("rows_delivered") != pl.col("rows_accepted") + pl.col("rows_quarantined")
    ).is_empty()
    assert counts.filter(pl.col("table") == "cdm_source")["status"].to_list() == ["skipped"]
    assert counts["rows_quarantined"].sum() == 0  # the generator's extract is clean
