"""Aggregates with no person in them: officials' uptake, triage turnaround, the access log.

Officials see the programme's uptake only as it may be published: small cells suppressed and
complemented here (``lakehouse.disclosure``), so no page can forget to. Clinicians see their
institution's turnaround and the admin the whole city's (the model monitoring view); the admin
alone reads the access log, and reading it is logged too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Final, Literal

import duckdb
import polars as pl

from lakehouse import disclosure
from lakehouse import read as lake
from lakehouse.access.gate import Gate
from lakehouse.access.imaging import FINDINGS, TRIAGE
from lakehouse.audit import AUDIT

UPTAKE: Final = "gold.programme_uptake_daily"
UPTAKE_DIMENSIONS: Final = ("district_code", "age_group", "sex")
# How a measure of the daily table adds up over a period: flows are summed over the days,
# stocks are taken on the period's last day.
UPTAKE_MEASURES: Final[dict[str, Literal["sum", "last"]]] = {
    "signups": "sum",
    "centre_visitors": "sum",
    "active_users": "sum",  # person-days: the programme's KPIs divide by the month's days
    "residents": "last",
    "app_users": "last",
}


class Aggregates(Gate):
    """The aggregate and oversight methods of ``Access``."""

    def uptake(
        self, measure: str, dims: Sequence[str], first_month: str, last_month: str
    ) -> pl.DataFrame:
        """Programme uptake over whole months, by any of district, age group and sex, as it may
        be published: cells of 1-10 suppressed and complemented (``lakehouse.disclosure``), every
        margin included (``disclosure.TOTAL`` in a dimension), hidden values null and flagged in
        ``suppressed``.

        Args:
            measure: ``signups`` or ``centre_visitors`` (summed over the days), ``residents`` or
                ``app_users`` (on the period's last day).
            dims: Which of ``UPTAKE_DIMENSIONS`` to break down by (none: the city's total).
            first_month: ``YYYY-MM``; periods are whole months, so two queries cannot be
                differenced into a single day.
            last_month: ``YYYY-MM``, inclusive.
        """
        self._require("read:aggregate", "official")
        if measure not in UPTAKE_MEASURES:
            raise ValueError(f"unknown measure {measure!r}; one of {sorted(UPTAKE_MEASURES)}")
        unknown = [d for d in dims if d not in UPTAKE_DIMENSIONS]
        if unknown or len(set(dims)) != len(dims):
            raise ValueError(f"dimensions are distinct ones of {UPTAKE_DIMENSIONS}")
        start, end = _month(first_month), _month(last_month, end=True)
        if end < start:
            raise ValueError("the period ends before it starts")
        daily = lake.scan(UPTAKE).filter(pl.col("day").is_between(start, end))
        if UPTAKE_MEASURES[measure] == "last":
            daily = daily.filter(pl.col("day") == pl.col("day").max())
        cells = (
            daily.group_by(*dims).agg(pl.col(measure).sum().cast(pl.Int64)).collect()
            if dims
            else daily.select(pl.col(measure).sum().cast(pl.Int64)).collect()
        )
        protected = disclosure.protect(cells, list(dims), measure)
        # One flag for every hidden cell: which were 1-10 (primary) and which were hidden to
        # protect them (complementary) would bound the hidden counts, so that stays here.
        published = protected.with_columns(
            (pl.col(disclosure.STATUS) != disclosure.SHOWN).alias("suppressed")
        ).drop(disclosure.STATUS)
        self._audit(
            "read:aggregate",
            "monitoring",
            rows=published.height,
            detail=f"{measure} by {','.join(dims) or '-'} {first_month}..{last_month}",
        )
        return published

    def uptake_months(self) -> list[str]:
        """The whole months the uptake table covers (``YYYY-MM``), for choosing a period."""
        self._require("read:aggregate", "official")
        bounds = (
            lake.scan(UPTAKE)
            .select(pl.col("day").min().alias("a"), pl.col("day").max().alias("b"))
            .collect()
        )
        first, last = bounds["a"][0], bounds["b"][0]
        if first is None or last is None:
            return []
        months, year, month = [], first.year, first.month
        while (year, month) <= (last.year, last.month):
            months.append(f"{year:04d}-{month:02d}")
            year, month = year + month // 12, month % 12 + 1
        return months

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
        rows = lake.scan(AUDIT).filter(where).sort("at", descending=True).collect()
        self._audit("read:audit_log", "oversight", rows=rows.height)
        return rows


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
