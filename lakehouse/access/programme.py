"""The programme's key figures against its targets, for officials: the KPI cards, their monthly
series (the trends) and the monthly report read them here.

Every figure about people comes from what may be published, never from raw counts:

* **The citizen app and the seniors' centre** from ``uptake`` (the access methods contract:
  the published, suppressed table), one whole month at a time and no breakdown, so a card shows
  nothing the uptake page could not: residents signed up, daily active users and centre visits
  per day, each with its share of the residents where that means something.
* **The AI reading services** from ``gold.ai_services_published``, the service x month table
  of studies scored, flagged by the AI and flagged and accepted by a clinician that the gold
  job suppresses once and audits by linear programming with the counts' relations
  (docs/disclosure.md), never from ``ai.findings``: every view of it is a row of that table. A
  median turnaround shows only beside a shown count.
* **Institutions** are not persons: the enrolment register (``silver.institutions``) is counted
  as it is, per enrolment round.

Targets come from ``lakehouse/reference/programme_targets.toml``, each either set by the city
(the seed article's sentence) or a deployment's own setting, which the apps must say.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Final, Literal, Protocol, cast

import polars as pl

from lakehouse import disclosure
from lakehouse import read as lake
from lakehouse.access.gate import Gate
from lakehouse.access.health import Freshness, day_range, fresh
from lakehouse.catalog.gold import SERVICE_COUNTS
from lakehouse.reference import ROOT

TARGETS_FILE: Final = ROOT / "programme_targets.toml"
UPTAKE: Final = "gold.programme_uptake_daily"
INSTITUTIONS: Final = "silver.institutions"
FINDINGS: Final = "ai.findings"
SERVICES: Final = "gold.ai_services_published"
STUDIES: Final = "silver.imaging_studies"
# The KPIs in the cards' order. ``institutions_round_<n>`` follow ``institutions``, one per
# enrolment round the register holds.
UPTAKE_KPIS: Final = ("app_users", "active_users", "centre_visits")
# The published uptake measures they are made of (``Access.uptake``, no breakdown).
MEASURES: Final = ("residents", "app_users", "active_users", "centre_visitors")
AI_KPIS: Final = ("ai_services", "ai_studies")
ROUND: Final = "institutions_round_"
Unit = Literal["institutions", "services", "per_day", "share", "people", "studies"]


@dataclass(frozen=True)
class Target:
    """One target, as ``programme_targets.toml`` gives it.

    Attributes:
        kpi: The KPI it is set for.
        value: The target, in ``unit``.
        unit: ``share`` (a fraction of the residents), ``per_day``, or what it counts.
        sourced: Set by the city (the seed article); otherwise this deployment's own setting.
        quote: The source's sentence (sourced targets only).
    """

    kpi: str
    value: float
    unit: Unit
    sourced: bool
    quote: str | None


@dataclass(frozen=True)
class Kpi:
    """One KPI card's figures for one month.

    Attributes:
        kpi: Which (``UPTAKE_KPIS``, ``institutions``, ``institutions_round_<n>``, ``AI_KPIS``).
        month: ``YYYY-MM``.
        value: The figure (a count, or visits per day); None when suppressed or not measured.
        share: The value as a fraction of the residents (citizen-app KPIs), when shown.
        suppressed: The published count behind it is hidden (1-10, or its complement).
        target: Its target, or None where none is set.
        change: Since the previous month, in the value's unit; None when either is missing.
        source: The table it is counted from (``UPTAKE``, ``INSTITUTIONS``, ``FINDINGS``).
        freshness: Its source's last commit and newest day (``health.fresh``).
    """

    kpi: str
    month: str
    value: float | None
    share: float | None
    suppressed: bool
    target: Target | None
    change: float | None
    source: str
    freshness: Freshness

    @property
    def compared(self) -> float | None:
        """The figure set against the target: the share for a share target, else the value."""
        if self.target is not None and self.target.unit == "share":
            return self.share
        return self.value


@cache
def targets() -> dict[str, Target]:
    """The programme's targets by KPI (``programme_targets.toml``)."""
    doc = tomllib.loads(TARGETS_FILE.read_text(encoding="utf-8"))
    return {
        kpi: Target(
            kpi,
            float(entry["value"]),
            entry["unit"],
            entry["kind"] == "source",
            entry.get("quote"),
        )
        for kpi, entry in doc["target"].items()
    }


def source() -> dict[str, str]:
    """The article the sourced targets quote: its title, publisher and the notices' addresses."""
    doc = tomllib.loads(TARGETS_FILE.read_text(encoding="utf-8"))
    return {k: str(v) for k, v in doc["source"].items()}


class _Published(Protocol):
    """The officials' published uptake (the city's monthly totals as ``Access.uptake`` answers
    them, unaudited, and its months), which this module builds on and never re-derives; its
    public methods audit their answer once."""

    def _monthly_totals(
        self, measures: Sequence[str], months: Sequence[str]
    ) -> dict[tuple[str, str], float | None]: ...

    def uptake_months(self) -> list[str]: ...


class Programme(Gate):
    """The programme-KPI methods of ``Access`` (officials)."""

    def kpis(self, month: str) -> list[Kpi]:
        """Every KPI card's figures for ``month`` (``YYYY-MM``, one of the uptake months),
        with the change since the month before."""
        self._require("read:aggregate", "official")
        months = cast(_Published, self).uptake_months()
        if month not in months:
            raise ValueError(f"{month!r} is not one of the programme's months")
        at = months.index(month)
        series = self._series(months[max(at - 1, 0) : at + 1])
        now = series.filter(pl.col("month") == month)
        fresh = self._freshness()
        cards = [
            Kpi(
                row["kpi"],
                month,
                row["value"],
                row["share"],
                row["suppressed"],
                targets().get(row["kpi"]),
                row["change"],
                _source_of(row["kpi"]),
                fresh[_source_of(row["kpi"])],
            )
            for row in now.iter_rows(named=True)
        ]
        self._audit("read:aggregate", "monitoring", rows=len(cards), detail=f"kpis {month}")
        return cards

    def kpi_series(self) -> pl.DataFrame:
        """Every KPI by month over the programme's months (the trends): ``kpi``, ``month``,
        ``value``, ``share``, ``suppressed``, ``change``, ``compared`` (what the target is set
        against: the share for a share target) and ``target`` (null where none is set)."""
        self._require("read:aggregate", "official")
        series = self._series(cast(_Published, self).uptake_months())
        self._audit("read:aggregate", "monitoring", rows=series.height, detail="kpi series")
        return series

    def service_table(self) -> pl.DataFrame:
        """The AI reading services' published service x month table: ``service`` and ``month``
        (each with the ``disclosure.TOTAL`` margin), the counts ``SERVICE_COUNTS`` (null where
        hidden), a ``<count>_suppressed`` flag each, and ``median_hours`` (from the study's
        arrival to its scoring; only beside a shown, non-zero ``studies``). Months are those
        the studies were acquired in; the counts are as of the last gold build (a clinician's
        decision since shows after the next)."""
        self._require("read:aggregate", "official")
        table = self._services()
        self._audit("read:aggregate", "monitoring", rows=table.height, detail="ai services")
        return table

    # --- the figures, unaudited (each public method audits once) -----------------------------

    def _series(self, months: list[str]) -> pl.DataFrame:
        """The KPIs of every month in ``months`` (consecutive), with their changes."""
        rows = [*self._uptake_rows(months), *_institution_rows(months)]
        services = self._services()
        rows += _service_rows(services, months)
        frame = pl.DataFrame(
            rows,
            schema={
                "kpi": pl.Utf8,
                "month": pl.Utf8,
                "value": pl.Float64,
                "share": pl.Float64,
                "suppressed": pl.Boolean,
            },
            orient="row",
        )
        goal = pl.DataFrame(
            {
                "kpi": list(targets()),
                "target": [t.value for t in targets().values()],
                "share_target": [t.unit == "share" for t in targets().values()],
            }
        )
        return (
            frame.sort("kpi", "month")
            .with_columns((pl.col("value") - pl.col("value").shift(1).over("kpi")).alias("change"))
            .join(goal, on="kpi", how="left")
            .with_columns(
                pl.when(pl.col("share_target"))
                .then(pl.col("share"))
                .otherwise(pl.col("value"))
                .alias("compared")
            )
            .drop("share_target")
            .sort(pl.col("kpi").replace_strict(_order(frame), return_dtype=pl.Int64), "month")
        )

    def _uptake_rows(self, months: list[str]) -> list[tuple[object, ...]]:
        """The citizen-app and centre KPIs of each month, from the published uptake."""
        totals = cast(_Published, self)._monthly_totals(MEASURES, months)
        first, last = day_range(UPTAKE)
        rows: list[tuple[object, ...]] = []
        for month in months:
            got = {m: totals[m, month] for m in MEASURES}
            residents = got["residents"]
            covered = _covered_days(month, first, last)
            figures = {
                "app_users": got["app_users"],
                "active_users": None
                if got["active_users"] is None
                else got["active_users"] / covered,
                "centre_visits": (
                    None if got["centre_visitors"] is None else got["centre_visitors"] / covered
                ),
            }
            for kpi in UPTAKE_KPIS:
                value = figures[kpi]
                share = (
                    value / residents
                    if value is not None and residents and kpi != "centre_visits"
                    else None
                )
                rows.append((kpi, month, value, share, value is None))
        return rows

    def _services(self) -> pl.DataFrame:
        """The published service x month table (``service_table``), margins as
        ``disclosure.TOTAL``; empty before the gold job has published it."""
        dims = ["service", "month"]
        return (
            lake.current(SERVICES)
            .lazy()
            .select(
                *(pl.col(d).fill_null(disclosure.TOTAL) for d in dims),
                *SERVICE_COUNTS,
                *(f"{c}_suppressed" for c in SERVICE_COUNTS),
                "median_hours",
            )
            .collect()
        )

    def _freshness(self) -> dict[str, Freshness]:
        """Each source table's last commit and newest day."""
        return {
            UPTAKE: fresh([UPTAKE]),
            INSTITUTIONS: fresh([INSTITUTIONS], [(INSTITUTIONS, "enrolled_on")]),
            # Months of the AI services are the studies' (``_studies``), so is their newest day:
            # the newest acquisition date (file statistics hold no coalesce; a study with no
            # DICOM date is counted in its arrival's month and does not move this day).
            FINDINGS: fresh([FINDINGS], [(STUDIES, "study_datetime")]),
        }


def _source_of(kpi: str) -> str:
    """The table a KPI is counted from."""
    if kpi in UPTAKE_KPIS:
        return UPTAKE
    return FINDINGS if kpi in AI_KPIS else INSTITUTIONS


def _order(frame: pl.DataFrame) -> dict[str, int]:
    """The cards' order of the KPIs present."""
    rounds = sorted(k for k in frame["kpi"].unique().to_list() if k.startswith(ROUND))
    order = [*UPTAKE_KPIS, "institutions", *rounds, *AI_KPIS]
    return {k: i for i, k in enumerate(order)}


def _month_bounds(month: str) -> tuple[date, date]:
    """The first and last day of ``YYYY-MM``."""
    first = date(int(month[:4]), int(month[5:7]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _covered_days(month: str, first: date | None, last: date | None) -> int:
    """How many of the month's days the uptake table holds (a first or last month may be
    partial): the divisor of a per-day figure."""
    start, end = _month_bounds(month)
    if first is not None:
        start = max(start, first)
    if last is not None:
        end = min(end, last)
    return max((end - start).days + 1, 1)


def _institution_rows(months: list[str]) -> list[tuple[object, ...]]:
    """Institutions enrolled by each month's end, in all and per round."""
    enrolled = lake.current(INSTITUTIONS).lazy().filter(pl.col("enrolment_round").is_not_null())
    found = enrolled.select("enrolment_round", "enrolled_on").collect()
    rounds = sorted(found["enrolment_round"].unique().to_list())
    rows: list[tuple[object, ...]] = []
    for month in months:
        _, end = _month_bounds(month)
        by_then = found.filter(pl.col("enrolled_on") <= end)
        rows.append(("institutions", month, float(by_then.height), None, False))
        for number in rounds:
            count = by_then.filter(pl.col("enrolment_round") == number).height
            rows.append((f"{ROUND}{number}", month, float(count), None, False))
    return rows


def _service_rows(services: pl.DataFrame, months: list[str]) -> list[tuple[object, ...]]:
    """The services in use (any study scored: a hidden count is 1 or more, zeros show) and
    the studies scored over all services, per month, from the published table."""
    rows: list[tuple[object, ...]] = []
    for month in months:
        of_month = services.filter(pl.col("month") == month)
        inner = of_month.filter(pl.col("service") != disclosure.TOTAL)
        used = inner.filter(pl.col("studies_suppressed") | (pl.col("studies") > 0)).height
        total = of_month.filter(pl.col("service") == disclosure.TOTAL)
        # A month with no study scored is not in the table: none, and nothing hidden.
        hidden, studies = False, cast(float | None, 0.0)
        if total.height:
            hidden = bool(total["studies_suppressed"][0])
            studies = None if hidden else float(total["studies"][0])
        rows.append(("ai_services", month, float(used), None, False))
        rows.append(("ai_studies", month, studies, None, hidden))
    return rows
