"""Gold: the uptake tables officials may see, suppressed once for everything the app can show.

Suppressing each query's answer on its own fails: an official who asks for a district by sex,
by age, and by both, or for March and for March to April, can combine the answers and work a
hidden count out (issue 20: every hidden ``centre_visitors`` cell of three months was derived).
So each measure is published once, at the finest cross-classification the app shows, with
every margin, and every view is a slice or a sum of it (``lakehouse.access.aggregates``):

* **Flows** (sign-ups, centre visits): month x district x age group x sex, each dimension with
  its margin, the month's margin being the whole period (the months add up to it).
* **Stocks** (residents, app users, consented, linked, AI service users, centre users): the same
  cube per month, on the month's last day in the data, with no month margin (stocks do not add
  up over months); each month is its own table.
* **Dongs:** for the whole period only (a flow's sum, a stock's last month), dong within
  district within city. Monthly dong counts would be mostly small cells.

``lakehouse.disclosure_audit`` suppresses each measure's set (cube and dongs together),
audits it by linear programming and repairs it (docs/disclosure.md gives the criterion).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np
import polars as pl

from lakehouse import disclosure
from lakehouse.catalog import table as catalog_table
from lakehouse.disclosure_audit import Linked, publish
from pipelines.transform.gold import STOCKS

PUBLISHED: Final = catalog_table("gold.programme_uptake_published")
# What the officials' app shows, and how a period's figure is formed: a flow is summed over
# its months, a stock is the last month's. ``active_users`` is a flow of person-days (a
# resident's login day counts once): summed, never read as a month's distinct users.
PUBLISHED_FLOWS: Final = ("signups", "active_users", "centre_visitors")
PUBLISHED_STOCKS: Final = STOCKS
CUBE: Final = ("month", "district_code", "age_group", "sex")
PARENT: Final = "district_code"
CHILD: Final = "dong_code"


def published(daily: pl.DataFrame, low: int = 1, high: int = 10) -> tuple[pl.DataFrame, int]:
    """``gold.programme_uptake_published`` from ``gold.programme_uptake_daily``, and how many
    hidden cells the audit could not widen (0 unless the data leave nothing to hide).

    Args:
        daily: The daily table (every cell of every day, zeros included).
        low: The smallest count that is suppressed.
        high: The largest.
    """
    if daily.is_empty():
        return pl.DataFrame(schema=PUBLISHED.polars_schema()), 0
    months = daily.with_columns(pl.col("day").dt.strftime("%Y-%m").alias("month"))
    frames, unresolved = [], 0
    for measure, cells, dongs in _families(months):
        found, left = _publish(measure, cells, dongs, low, high)
        frames.append(found)
        unresolved += left
    rows = pl.concat(frames).select(PUBLISHED.names)
    return rows.sort(PUBLISHED.key, nulls_last=True), unresolved


def _families(months: pl.DataFrame) -> Iterator[tuple[str, pl.DataFrame, bool]]:
    """Each set of cells suppressed together: a flow's months, a stock's single month (the
    finest cells, with ``month``, the dong and the count as ``value``), and whether the set
    holds the whole period (its dongs are published)."""
    dims = [*CUBE, CHILD]
    for measure in PUBLISHED_FLOWS:
        yield measure, months.group_by(dims).agg(pl.col(measure).sum().alias("value")), True
    last_days = months.group_by("month").agg(pl.col("day").max())
    at_month_end = months.join(last_days, on=["month", "day"])
    last = at_month_end["month"].max()
    for measure in PUBLISHED_STOCKS:
        for (month,), of_month in sorted(at_month_end.partition_by("month", as_dict=True).items()):
            yield measure, of_month.select(*dims, pl.col(measure).alias("value")), month == last


def _publish(
    measure: str, cells: pl.DataFrame, whole: bool, low: int, high: int
) -> tuple[pl.DataFrame, int]:
    """One set's published rows: its cube (a single month has no month margin) and, where it
    holds the whole period, its dongs."""
    flow = measure in PUBLISHED_FLOWS
    dims = list(CUBE) if flow else list(CUBE[1:])
    finest = cells.group_by(dims).agg(pl.col("value").sum().cast(pl.Int64))
    levels, values = disclosure.cube(finest, dims, "value")
    dongs = cells.group_by(PARENT, CHILD).agg(pl.col("value").sum().cast(pl.Int64))
    kids = [dongs.filter(pl.col(PARENT) == p).sort(CHILD) for p in levels[dims.index(PARENT)]]
    linked = publish(
        Linked(
            values,
            [k["value"].to_numpy().astype(np.int64) for k in kids] if whole else [],
            dims.index(PARENT),
            low,
            high,
            ranges=flow,  # a flow's runs of months are answers too
        )
    )
    month = None if flow else cells["month"][0]
    index = np.indices(values.shape).reshape(values.ndim, -1)
    cube_rows = pl.DataFrame(
        {
            **{
                d: pl.Series([*level, None], dtype=pl.String).gather(index[axis])
                for axis, (d, level) in enumerate(zip(dims, levels, strict=True))
            },
            "value": values.ravel(),
            "suppressed": linked.hidden.ravel(),
        }
    )
    child_rows = (
        pl.concat(kids).with_columns(
            pl.Series("suppressed", np.concatenate(linked.hidden_children), dtype=pl.Boolean)
        )
        if linked.hidden_children
        else None
    )
    empty = pl.DataFrame(schema=PUBLISHED.polars_schema())  # the columns a set does not have
    frames = [empty, cube_rows] if child_rows is None else [empty, cube_rows, child_rows]
    rows = pl.concat(frames, how="diagonal_relaxed").with_columns(
        pl.lit(measure).alias("measure"),
        *([] if flow else [pl.lit(month).alias("month")]),
        pl.when(~pl.col("suppressed")).then(pl.col("value")).cast(pl.Int64).alias("value"),
    )
    return rows.select(PUBLISHED.names), linked.unresolved
