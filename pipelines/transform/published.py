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
audits it by linear programming and repairs it (docs/disclosure.md gives the criterion). A
month's stocks are audited together, under what they are by construction: each is a subset of
that day's residents in the same cell, and the linked of the consented (``STOCK_RELATIONS``).

``gold.ai_services_published`` is the AI reading services' table made the same way: service x
month (both with their margins) of studies scored, flagged by the AI and flagged and accepted
by a clinician, the three audited together under ``studies >= flagged >= accepted``, and the
median turnaround beside each shown, non-zero ``studies``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

import numpy as np
import polars as pl

from lakehouse import disclosure
from lakehouse.catalog import table as catalog_table
from lakehouse.catalog.gold import SERVICE_COUNTS
from lakehouse.disclosure_audit import Linked, Relation, publish_together
from pipelines.transform.gold import STOCKS

PUBLISHED: Final = catalog_table("gold.programme_uptake_published")
SERVICES: Final = catalog_table("gold.ai_services_published")
# What the officials' app shows, and how a period's figure is formed: a flow is summed over
# its months, a stock is the last month's. ``active_users`` is a flow of person-days (a
# resident's login day counts once): summed, never read as a month's distinct users.
PUBLISHED_FLOWS: Final = ("signups", "active_users", "centre_visitors")
PUBLISHED_STOCKS: Final = STOCKS
CUBE: Final = ("month", "district_code", "age_group", "sex")
PARENT: Final = "district_code"
CHILD: Final = "dong_code"
# ``(smaller, larger)``: on one day, in one cell, every person counted in the first stock is
# counted in the second (pipelines.transform.gold: each stock is residence cut to its spans;
# lakehouse.consent: a link stands only under the consent in force, and a consent is given in
# the app, by an account holder).
STOCK_RELATIONS: Final = (
    ("app_users", "residents"),
    ("consented", "app_users"),
    ("consented", "residents"),
    ("linked", "consented"),
    ("ai_users", "residents"),
    ("centre_users", "residents"),
)
# The AI services' table's dimensions; its counts (``SERVICE_COUNTS``) are each a subset of the
# one before it (a flag is a scored study's, an accepted flag a flag's).
SERVICE_DIMS: Final = ("service", "month")


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
    for family, whole, relations in _families(months):
        found, left = _publish(family, whole, relations, low, high)
        frames.append(found)
        unresolved += left
    rows = pl.concat(frames).select(PUBLISHED.names)
    return rows.sort(PUBLISHED.key, nulls_last=True), unresolved


Family = list[tuple[str, pl.DataFrame]]


def _families(months: pl.DataFrame) -> Iterator[tuple[Family, bool, list[Relation]]]:
    """Each family of sets suppressed together: a flow's months alone, a month's stocks
    together (each measure's finest cells, with ``month``, the dong and the count as
    ``value``); whether the family holds the whole period (its dongs are published); and the
    relations between its sets (indices into the family)."""
    dims = [*CUBE, CHILD]
    for measure in PUBLISHED_FLOWS:
        cells = months.group_by(dims).agg(pl.col(measure).sum().alias("value"))
        yield [(measure, cells)], True, []
    last_days = months.group_by("month").agg(pl.col("day").max())
    at_month_end = months.join(last_days, on=["month", "day"])
    last = at_month_end["month"].max()
    order = list(PUBLISHED_STOCKS)
    for (month,), of_month in sorted(at_month_end.partition_by("month", as_dict=True).items()):
        family = [(m, of_month.select(*dims, pl.col(m).alias("value"))) for m in order]
        # A relation the month's counts break (an account register behind the event log) is
        # nothing an attacker could rely on, and no feasible program would hold it.
        relations = [
            (order.index(a), order.index(b))
            for a, b in STOCK_RELATIONS
            if (of_month[a] <= of_month[b]).all()
        ]
        yield family, month == last, relations


def _publish(
    family: Family, whole: bool, relations: Sequence[Relation], low: int, high: int
) -> tuple[pl.DataFrame, int]:
    """One family's published rows: each set's cube (a single month has no month margin) and,
    where it holds the whole period, its dongs."""
    flow = family[0][0] in PUBLISHED_FLOWS
    dims = list(CUBE) if flow else list(CUBE[1:])
    sets, shapes = [], []
    for _, cells in family:
        finest = cells.group_by(dims).agg(pl.col("value").sum().cast(pl.Int64))
        levels, values = disclosure.cube(finest, dims, "value")
        dongs = cells.group_by(PARENT, CHILD).agg(pl.col("value").sum().cast(pl.Int64))
        kids = [dongs.filter(pl.col(PARENT) == p).sort(CHILD) for p in levels[dims.index(PARENT)]]
        shapes.append((levels, values, kids))
        sets.append(
            Linked(
                values,
                [k["value"].to_numpy().astype(np.int64) for k in kids] if whole else [],
                dims.index(PARENT),
                low,
                high,
                ranges=flow,  # a flow's runs of months are answers too
            )
        )
    publish_together(sets, relations)
    frames = []
    for (measure, cells), linked, (levels, values, kids) in zip(family, sets, shapes, strict=True):
        month = None if flow else cells["month"][0]
        cube_rows = _cube_rows(dims, levels, values, linked.hidden)
        child_rows = (
            pl.concat(kids).with_columns(
                pl.Series("suppressed", np.concatenate(linked.hidden_children), dtype=pl.Boolean)
            )
            if linked.hidden_children
            else None
        )
        empty = pl.DataFrame(schema=PUBLISHED.polars_schema())  # columns a set does not have
        parts = [empty, cube_rows] if child_rows is None else [empty, cube_rows, child_rows]
        rows = pl.concat(parts, how="diagonal_relaxed").with_columns(
            pl.lit(measure).alias("measure"),
            *([] if flow else [pl.lit(month).alias("month")]),
            pl.when(~pl.col("suppressed")).then(pl.col("value")).cast(pl.Int64).alias("value"),
        )
        frames.append(rows.select(PUBLISHED.names))
    return pl.concat(frames), sum(s.unresolved for s in sets)


def _cube_rows(
    dims: Sequence[str], levels: list[list[str]], values: np.ndarray, hidden: np.ndarray
) -> pl.DataFrame:
    """A cube's cells as rows: the dimensions (null at a margin), ``value`` and
    ``suppressed``."""
    index = np.indices(values.shape).reshape(values.ndim, -1)
    return pl.DataFrame(
        {
            **{
                d: pl.Series([*level, None], dtype=pl.String).gather(index[axis])
                for axis, (d, level) in enumerate(zip(dims, levels, strict=True))
            },
            "value": values.ravel(),
            "suppressed": hidden.ravel(),
        }
    )


def service_studies(
    findings: pl.LazyFrame, instances: pl.LazyFrame, studies: pl.LazyFrame
) -> pl.LazyFrame:
    """One row per study an AI service scored (its latest scoring of each finding): the
    ``service``, the ``month`` it was acquired (its DICOM date, else its first arrival, as
    ``Access.triage_stats`` counts months: a first build scores a whole year at once),
    ``studies`` (1), ``flagged`` (a positive finding), ``accepted`` (a positive finding a
    clinician accepted: ``verification`` follows the latest decision in ``ops.triage_events``,
    as of this build) and ``hours`` from its arrival (its last instance taken in before the
    scoring) to the scoring.

    Args:
        findings: ``ai.findings``.
        instances: ``silver.imaging_instances``.
        studies: ``silver.imaging_studies``.
    """
    latest = findings.filter(pl.col("status") == "scored").filter(
        pl.col("scored_at")
        == pl.col("scored_at").max().over("study_instance_uid", "service", "finding_code")
    )
    positive = pl.col("positive").fill_null(False)
    scored = latest.group_by("service", "study_instance_uid").agg(
        pl.col("scored_at").max(),
        positive.any().alias("flagged"),
        (positive & (pl.col("verification") == "accepted"))
        .fill_null(False)
        .any()
        .alias("accepted"),
    )
    arrived = (
        scored.join(instances.select("study_instance_uid", "indexed_at"), on="study_instance_uid")
        .filter(pl.col("indexed_at") <= pl.col("scored_at"))
        .group_by("service", "study_instance_uid")
        .agg(pl.col("indexed_at").max().alias("arrived_at"))
    )
    acquired = pl.coalesce("study_datetime", "first_received_at")
    return (
        scored.join(
            studies.select("study_instance_uid", acquired.dt.strftime("%Y-%m").alias("month")),
            on="study_instance_uid",
        )
        .join(arrived, on=["service", "study_instance_uid"], how="left")
        .select(
            "service",
            "month",
            pl.lit(1, pl.Int64).alias("studies"),
            pl.col("flagged").cast(pl.Int64),
            pl.col("accepted").cast(pl.Int64),
            ((pl.col("scored_at") - pl.col("arrived_at")).dt.total_microseconds() / 3.6e9).alias(
                "hours"
            ),
        )
    )


def services_published(
    studies: pl.DataFrame, low: int = 1, high: int = 10
) -> tuple[pl.DataFrame, int]:
    """``gold.ai_services_published`` from ``service_studies``, and how many hidden cells the
    audit could not widen.

    The three counts are suppressed as one family under ``studies >= flagged >= accepted``
    (cell by cell), so no shown count of one bounds a hidden count of another to within the
    suppression range; every view of the services (the table, a month's city total) is a row of
    it. A median turnaround shows only beside a shown, non-zero ``studies``: the median of a
    handful of studies is close to one person's.
    """
    if studies.is_empty():
        return pl.DataFrame(schema=SERVICES.polars_schema()), 0
    dims = list(SERVICE_DIMS)
    finest = studies.group_by(dims).agg(pl.col(c).sum().cast(pl.Int64) for c in SERVICE_COUNTS)
    cubes = [disclosure.cube(finest, dims, c) for c in SERVICE_COUNTS]
    sets = [Linked(values, low=low, high=high) for _, values in cubes]
    chain = [(i + 1, i) for i in range(len(SERVICE_COUNTS) - 1)]
    publish_together(sets, chain)
    levels = cubes[0][0]
    rows = _cube_rows(dims, levels, cubes[0][1], sets[0].hidden).select(dims)
    for count, (_, values), linked in zip(SERVICE_COUNTS, cubes, sets, strict=True):
        hidden = pl.Series(f"{count}_suppressed", linked.hidden.ravel(), dtype=pl.Boolean)
        rows = rows.with_columns(
            pl.when(~hidden).then(pl.Series(values.ravel(), dtype=pl.Int64)).alias(count), hidden
        )
    medians = pl.concat(
        [
            studies.group_by(
                *(pl.col(d) if d in by else pl.lit(None, pl.String).alias(d) for d in dims)
            ).agg(pl.col("hours").median().alias("median_hours"))
            for by in (dims, ["service"], ["month"], [])
        ]
    )
    table = rows.join(medians, on=dims, how="left", nulls_equal=True).with_columns(
        pl.when(pl.col("studies") > 0).then(pl.col("median_hours")).alias("median_hours")
    )
    return table.select(SERVICES.names).sort(SERVICES.key, nulls_last=True), sum(
        s.unresolved for s in sets
    )
