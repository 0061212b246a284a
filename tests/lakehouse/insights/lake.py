"""The built demo city with the tables the medicine pages read, for the access-layer and app
tests of the insights: ``platform_lake`` (the apps' tables, empty ledgers) plus the claims'
statements, prescriptions and dispensings, and the citizens whose records show the rules at
work."""

from __future__ import annotations

import shutil
from datetime import timedelta

import polars as pl

from lakehouse.access import Access, Principal
from tests.pipelines.conftest import Lake

MEDICINE_TABLES = ("silver/claims", "silver/prescriptions", "silver/dispensings")


def with_medicine_tables(platform: Lake, built: Lake) -> Lake:
    """``platform`` with the medicine tables copied from ``built`` (once per lake)."""
    for name in MEDICINE_TABLES:
        if not (platform.root / name).exists():
            shutil.copytree(built.root / name, platform.root / name)
    return platform


def candidates(lake: Lake, limit: int = 40) -> list[str]:
    """Citizens most likely to have a cross-clinic duplicate near the extract's end: the most
    distinct prescribers of one ingredient dispensed in its last 90 days (a cheap screen; the
    rules decide)."""
    dispensed = lake.frame("silver.dispensings")
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
    """A citizen whose insights include a cross-clinic duplicate of one ingredient."""
    for key in candidates(lake):
        found = Access(Principal("finder", "citizen", citizen_key=key)).insights(key)
        if any(i.rule == "same_ingredient" for i in found.items):
            return key
    raise AssertionError("no citizen of the demo city has a cross-clinic duplicate")
