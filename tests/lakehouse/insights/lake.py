"""The citizens of the built demo city (``platform_lake``: the apps' tables, claims and
medicines included, empty ledgers) whose records show the insight rules at work: citizens whose
record link stands, since only theirs show the national extracts (the consent rule)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from lakehouse.access import Access, Principal
from tests.lakehouse.test_access import consent_states
from tests.pipelines.conftest import Lake


def candidates(lake: Lake, limit: int = 40) -> list[str]:
    """Linked citizens most likely to have a cross-clinic duplicate near the extract's end: the
    most distinct prescribers of one ingredient dispensed in its last 90 days (a cheap screen;
    the rules decide)."""
    linked = consent_states(lake).filter(pl.col("state") == "linked")["citizen_key"]
    dispensed = lake.frame("silver.dispensings", pl.col("citizen_key").is_in(linked.implode()))
    end = dispensed["dispensed_on"].max()
    assert end is not None
    recent = dispensed.filter(pl.col("dispensed_on") >= end - timedelta(days=90))  # type: ignore[operator]
    return (
        recent.group_by("citizen_key", pl.col("ingredient_code").str.slice(0, 4))
        .agg(pl.col("prescriber_ykiho").n_unique().alias("prescribers"))
        .filter(pl.col("prescribers") > 1)
        .group_by("citizen_key")
        .agg(pl.col("prescribers").sum())
        .sort("prescribers", "citizen_key", descending=True)
        .head(limit)["citizen_key"]
        .to_list()
    )


def with_duplicate(lake: Lake) -> str:
    """A citizen taking medicines now whose insights include a cross-clinic duplicate of one
    ingredient."""
    for key in candidates(lake):
        finder = Access(Principal("finder", "citizen", citizen_key=key))
        found = finder.insights(key)
        if (
            any(i.rule == "same_ingredient" for i in found.items)
            and finder.medicines_now(key).medicines.height
        ):
            return key
    raise AssertionError("no linked citizen of the demo city has a cross-clinic duplicate")
