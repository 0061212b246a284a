"""Aggregates with no person in them: officials' uptake, triage turnaround, the access log.

Officials see the programme's uptake only as it is published: the gold job suppresses it once
for every view (``gold.programme_uptake_published``, docs/disclosure.md), and every answer here
is a slice or a sum of that table, never of the raw counts, so no page can undo it. The table
(some 13,000 cells at the city's size) is read once per Delta version and kept (``published``).
Clinicians see their institution's turnaround and the admin the whole city's (the model
monitoring view); the admin alone reads the access log, and reading it is logged too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Final, Literal

import duckdb
import polars as pl

from lakehouse import audit, delta, disclosure, queries
from lakehouse import read as lake
from lakehouse.access.gate import Gate
from lakehouse.access.imaging import FINDINGS, TRIAGE
from lakehouse.config import storage_options

PUBLISHED: Final = "gold.programme_uptake_published"
UPTAKE_DIMENSIONS: Final = ("district_code", "age_group", "sex")
# How a measure adds up over a period of months: flows are summed over the months, stocks are
# taken in the period's last month (pipelines.transform.published makes the same split).
UPTAKE_MEASURES: Final[dict[str, Literal["sum", "last"]]] = {
    "signups": "sum",
    "centre_visitors": "sum",
    "active_users": "sum",  # person-days: the programme's KPIs divide by the month's days
    "residents": "last",
    "app_users": "last",
    "consented": "last",
    "linked": "last",
    "ai_users": "last",
    "centre_users": "last",
}


class Aggregates(Gate):
    """The aggregate and oversight methods of ``Access``."""

    def uptake(
        self, measure: str, dims: Sequence[str], first_month: str, last_month: str
    ) -> pl.DataFrame:
        """Programme uptake over whole months, by any of district, age group and sex, as it is
        published (``gold.programme_uptake_published``): every margin included
        (``disclosure.TOTAL`` in a dimension), hidden values null and flagged in ``suppressed``.

        Nothing is computed from raw counts here: the published table was suppressed once for
        every view the app offers and audited against their combination (docs/disclosure.md),
        and each answer is a slice of it or a sum of its shown cells. So no two answers can be
        combined into more than the published table already shows.

        Args:
            measure: A flow (``signups``, ``active_users`` as person-days, ``centre_visitors``):
                the whole period's published cell when the range is every month of the data,
                else the sum of the published months in the range, shown only where every one
                of them is shown. A stock
                (``residents``, ``app_users``, ``consented``, ``linked``, ``ai_users``,
                ``centre_users``): the published table of the range's last month.
            dims: Which of ``UPTAKE_DIMENSIONS`` to break down by (none: the city's total).
            first_month: ``YYYY-MM``; periods are whole months.
            last_month: ``YYYY-MM``, inclusive.
        """
        self._require("read:aggregate", "official")
        found = self._uptake(measure, dims, first_month, last_month)
        self._audit(
            "read:aggregate",
            "monitoring",
            rows=found.height,
            detail=f"{measure} by {','.join(dims) or '-'} {first_month}..{last_month}",
        )
        return found

    def _uptake(
        self, measure: str, dims: Sequence[str], first_month: str, last_month: str
    ) -> pl.DataFrame:
        """``uptake``'s answer, unaudited: for a method that builds its own answer from many of
        them and audits that once (the KPIs: one row, not one commit per month and measure)."""
        if measure not in UPTAKE_MEASURES:
            raise ValueError(f"unknown measure {measure!r}; one of {sorted(UPTAKE_MEASURES)}")
        unknown = [d for d in dims if d not in UPTAKE_DIMENSIONS]
        if unknown or len(set(dims)) != len(dims):
            raise ValueError(f"dimensions are distinct ones of {UPTAKE_DIMENSIONS}")
        months = self._months(measure, first_month, last_month)
        others = [d for d in UPTAKE_DIMENSIONS if d not in dims]
        rows = (
            published()
            .lazy()
            .filter(
                (pl.col("measure") == measure)
                & pl.col("dong_code").is_null()
                & pl.all_horizontal(True, *(pl.col(d).is_null() for d in others))
            )
        )
        summed = _sum_of_months(rows, list(dims), months, measure)
        return (summed.sort(*dims, nulls_last=True) if dims else summed).with_columns(
            pl.col(d).fill_null(disclosure.TOTAL) for d in dims
        )

    def _monthly_totals(
        self, measures: Sequence[str], months: Sequence[str]
    ) -> dict[tuple[str, str], float | None]:
        """The city's published total of each of ``measures`` in each of ``months`` (published
        months), None where hidden: what ``_uptake(measure, [], month, month)`` answers one at
        a time, from one slice of the table (the KPIs' trend reads 4 measures x 12 months)."""
        table = published()
        covered = table.get_column("month").drop_nulls().unique().to_list()
        # A flow over the data's only month is its whole-period cell (``_months``).
        whole = pl.lit(len(covered) == 1) & pl.col("measure").replace_strict(
            {m: UPTAKE_MEASURES[m] == "sum" for m in measures}, return_dtype=pl.Boolean
        )
        pairs = [(m, month) for m in measures for month in months]
        cell = pl.when(~whole).then(pl.col("month")).otherwise(pl.lit("")).alias("cell")
        wanted = pl.DataFrame(pairs, schema=["measure", "month"], orient="row").with_columns(cell)
        cells = table.filter(
            pl.col("measure").is_in(list(measures))
            & pl.all_horizontal(*(pl.col(d).is_null() for d in (*UPTAKE_DIMENSIONS, "dong_code")))
        ).select("measure", pl.col("month").fill_null("").alias("cell"), "value", "suppressed")
        found = wanted.join(cells, on=["measure", "cell"], how="left")
        return {
            (measure, month): None if hidden or value is None else float(value)
            for measure, month, value, hidden in found.select(
                "measure", "month", "value", "suppressed"
            ).iter_rows()
        }

    def uptake_dongs(self, measure: str, first_month: str, last_month: str) -> pl.DataFrame:
        """Programme uptake by dong within district, for the whole period only, as published:
        rows ``district_code``, ``dong_code``, the measure and ``suppressed``, each district's
        total (``dong_code`` is ``disclosure.TOTAL``) and the city's (both ``TOTAL``) included.

        Dong counts are published for the whole period alone (a flow's sum over every month, a
        stock's last month): monthly dong counts would be mostly small cells. Any other period
        is refused with a ``ValueError`` that says so, rather than answered for another period.

        Args:
            measure: One of ``UPTAKE_MEASURES``.
            first_month: The data's first month (``uptake_months()[0]``).
            last_month: The data's last month (``uptake_months()[-1]``).
        """
        self._require("read:aggregate", "official")
        if measure not in UPTAKE_MEASURES:
            raise ValueError(f"unknown measure {measure!r}; one of {sorted(UPTAKE_MEASURES)}")
        _month(first_month), _month(last_month)
        covered = self.uptake_months()
        if not covered or (first_month, last_month) != (covered[0], covered[-1]):
            raise ValueError(
                "dong figures are published for the whole period only: "
                f"{covered[0] if covered else '-'}..{covered[-1] if covered else '-'}"
            )
        month = (
            pl.col("month").is_null()
            if UPTAKE_MEASURES[measure] == "sum"
            else (pl.col("month") == covered[-1])
        )
        found = (
            published()
            .lazy()
            .filter(
                (pl.col("measure") == measure)
                & month
                & pl.col("age_group").is_null()
                & pl.col("sex").is_null()
                & (pl.col("district_code").is_not_null() | pl.col("dong_code").is_null())
            )
            .select("district_code", "dong_code", pl.col("value").alias(measure), "suppressed")
            .sort("district_code", "dong_code", nulls_last=True)
            .with_columns(pl.col("district_code", "dong_code").fill_null(disclosure.TOTAL))
            .collect()
        )
        self._audit(
            "read:aggregate",
            "monitoring",
            rows=found.height,
            detail=f"{measure} by district_code,dong_code {first_month}..{last_month}",
        )
        return found

    def uptake_months(self) -> list[str]:
        """The whole months the published uptake covers (``YYYY-MM``), for choosing a period."""
        self._require("read:aggregate", "official")
        return published().get_column("month").drop_nulls().unique().sort().to_list()

    def _months(self, measure: str, first_month: str, last_month: str) -> list[str] | None:
        """The published months a period reads: None for a flow's whole period (its published
        whole-period cells), the range's last published month for a stock, else the range's
        published months."""
        if _month(last_month) < _month(first_month):
            raise ValueError("the period ends before it starts")
        covered = self.uptake_months()
        inside = [m for m in covered if first_month <= m <= last_month]
        if UPTAKE_MEASURES[measure] == "last":
            return inside[-1:]
        if covered and inside == covered:
            return None
        return inside

    def triage_stats(self) -> pl.DataFrame:
        """Turnaround and agreement per AI service and month of acquisition: findings, median
        hours from the study's arrival to its scoring and to the first decision on the finding,
        AI flags (positive findings) decided and accepted, and disagreements (rejected or
        amended). A clinician sees their institution's studies; the admin sees the whole city
        (the model monitoring view). Aggregates only, with no person in them.

        A study arrives when the platform has taken in its last instance (the latest
        ``indexed_at`` of its instances, among those in before it was scored, so a late instance
        that reopened it afterwards does not count): the platform cannot act on a study before,
        and the acquisition time would count the weeks a study waited at the clinic, or the
        year a first build took in at once, as the service's delay."""
        self._require("read:triage_stats", "clinician", "admin")
        institution = self.principal.institution if self.principal.role == "clinician" else None
        rows = _triage_stats(self.readers.connect(), institution)
        self._audit("read:triage_stats", "monitoring", rows=rows.height, detail=institution)
        return rows

    def audit_log(
        self,
        since: datetime,
        until: datetime | None = None,
        account: str | None = None,
        emergency_only: bool = False,
    ) -> pl.DataFrame:
        """The access log for review (admin only), newest first; reading it is logged too."""
        self._require("read:audit_log", "admin")
        until = until or self.clock()
        where = pl.col("at").is_between(since, until)
        if account:
            where &= pl.col("account") == account
        if emergency_only:
            where &= pl.col("emergency")
        rows = audit.scan().filter(where).sort("at", descending=True).collect()
        self._audit("read:audit_log", "oversight", rows=rows.height)
        return rows


def published() -> pl.DataFrame:
    """The whole published uptake table (``PUBLISHED``: some 13,000 cells at Gwangju's size,
    one row per measure, month and cell of the cube or the dongs), read once per version of it
    and kept (``_published_at``): a table at a version never changes, so no time to live is
    needed and a new build is read on the next call. Its Delta log is the one
    ``lakehouse.queries`` keeps open for the process and brings up to date on each read (a
    fraction of a millisecond). Empty with the catalogue's schema before its first build. Every
    official's uptake read is a slice of it: a page's dozen reads were a dozen scans of the
    table (docs/benchmarks.md, issue 20). Callers must not mutate it."""
    key = queries.version_of(PUBLISHED)
    if key is None:  # not built yet, or files that cannot be read as they are
        return lake.scan(PUBLISHED).collect()
    return _published_at(delta.uri(PUBLISHED), *key)


@functools.lru_cache(maxsize=4)
def _published_at(location: str, table_id: str, version: int) -> pl.DataFrame:
    """The published table's rows at ``version`` (``published``)."""
    return pl.scan_delta(location, version=version, storage_options=storage_options()).collect()


STATS_SQL: Final = """
WITH f AS (
    SELECT * FROM ai.findings WHERE $institution IS NULL OR institution = $institution
    QUALIFY scored_at = max(scored_at) OVER (PARTITION BY study_instance_uid, service, finding_code)
), s AS (
    SELECT study_instance_uid, coalesce(study_datetime, first_received_at) AS acquired_at
    FROM silver.imaging_studies
), a AS (
    SELECT f.tracking_uid, max(i.indexed_at) AS arrived_at
    FROM f JOIN silver.imaging_instances i USING (study_instance_uid)
    WHERE i.indexed_at <= f.scored_at
    GROUP BY f.tracking_uid
), d AS (
    SELECT tracking_uid, min("at") AS first_decided_at, arg_max(decision, "at") AS decision
    FROM {events} WHERE decision <> 'review' GROUP BY tracking_uid
)
SELECT f.service,
       strftime(s.acquired_at, '%Y-%m') AS month,
       count(*) AS findings,
       count(*) FILTER (WHERE f.status = 'failed') AS failed,
       median(epoch(f.scored_at - a.arrived_at) / 3600) AS hours_to_score,
       median(epoch(d.first_decided_at - a.arrived_at) / 3600) AS hours_to_decision,
       count(d.decision) AS decided,
       count(*) FILTER (WHERE f.positive) AS flags,
       count(*) FILTER (WHERE f.positive AND d.decision IS NOT NULL) AS flags_decided,
       count(*) FILTER (WHERE f.positive AND d.decision = 'accepted') AS flags_accepted,
       count(*) FILTER (WHERE d.decision IN ('rejected', 'amended')) AS disagreements
FROM f JOIN s USING (study_instance_uid)
LEFT JOIN a USING (tracking_uid) LEFT JOIN d USING (tracking_uid)
GROUP BY ALL
ORDER BY f.service, month
"""
EMPTY_EVENTS: Final = (
    '(SELECT NULL::VARCHAR AS tracking_uid, NULL::TIMESTAMPTZ AS "at", '
    "NULL::VARCHAR AS decision WHERE false)"
)
STATS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "service": pl.Utf8(),
    "month": pl.Utf8(),
    "findings": pl.Int64(),
    "failed": pl.Int64(),
    "hours_to_score": pl.Float64(),
    "hours_to_decision": pl.Float64(),
    "decided": pl.Int64(),
    "flags": pl.Int64(),
    "flags_decided": pl.Int64(),
    "flags_accepted": pl.Int64(),
    "disagreements": pl.Int64(),
    "accepted_share": pl.Float64(),
}


def _triage_stats(con: duckdb.DuckDBPyConnection, institution: str | None) -> pl.DataFrame:
    """``Access.triage_stats``'s figures, computed by DuckDB over the Delta tables."""
    cursor = con.cursor()
    lake.ensure_views(
        cursor, (FINDINGS, "silver.imaging_studies", "silver.imaging_instances", TRIAGE)
    )
    if not lake.has_view(cursor, FINDINGS):
        return pl.DataFrame(schema=STATS_SCHEMA)
    events = TRIAGE if lake.has_view(cursor, TRIAGE) else EMPTY_EVENTS
    found = cursor.execute(STATS_SQL.format(events=events), {"institution": institution}).pl()
    return found.with_columns(
        (pl.col("flags_accepted") / pl.col("flags_decided")).alias("accepted_share")
    ).cast(STATS_SCHEMA)  # type: ignore[arg-type]


def _month(text: str, end: bool = False) -> date:
    """The first (or last) day of a ``YYYY-MM`` month; anything else is refused."""
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text or ""):
        raise ValueError(f"expected YYYY-MM, got {text!r}")
    first = date(int(text[:4]), int(text[5:]), 1)
    if not end:
        return first
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _sum_of_months(
    rows: pl.LazyFrame, dims: list[str], months: list[str] | None, measure: str
) -> pl.DataFrame:
    """The published cells of ``dims`` summed over ``months`` (None: the whole-period cells),
    hidden where any month's cell is hidden."""
    which = pl.col("month").is_null() if months is None else pl.col("month").is_in(months)
    sums = (pl.col("suppressed").any(), pl.col("value").sum().cast(pl.Int64).alias(measure))
    chosen = rows.filter(which)
    summed = chosen.group_by(dims).agg(*sums) if dims else chosen.select(*sums)
    return summed.select(
        *dims,
        pl.when(~pl.col("suppressed")).then(pl.col(measure)).alias(measure),
        "suppressed",
    ).collect()
