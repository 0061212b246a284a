"""Data health for officials and the admin: how fresh and how trustworthy each figure is.

Per source (the national extracts, the centre's devices, the registries, the programme's app,
imaging), what the officials' figures stand on: the last successful pipeline run that wrote its
tables and the delivery period it covered (Dagster's run records), the deliveries taken in and
their rows (``bronze.deliveries``), and the rows its silver tables hold (their Delta logs,
``delta.state``). Then the quality checks whose latest evaluation failed (Dagster's asset check
evaluations, ``pipelines/defs/checks.py``) and the quarantine counted by source, stage and
reason (``quarantine.records``). And the OHDSI data-quality report over the OMOP tables
(``gold.omop_dq_results``, ``lakehouse.omop.dq``): its latest run's counts by Kahn category and
level, the failed checks with their explanations, and why the others did not apply.

Everything here is a count, a time or a code: no record key, payload or check sample (which may
hold a citizen key) leaves this module, so officials may see it whole.

The runs and checks are read from the Dagster instance the pipelines record into
(``config.dagster_home``, its ``dagster.yaml``: SQLite by default, PostgreSQL in production).
Dagster is imported only here and only when asked, so the apps that never show data health do
not load it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from lakehouse import config, delta, quality, queries
from lakehouse import read as lake
from lakehouse.access.aggregates import PUBLISHED
from lakehouse.access.gate import Gate
from lakehouse.catalog import table as catalog_table
from lakehouse.catalog.dq import RESULTS
from lakehouse.catalog.partners import PARTNERS
from lakehouse.omop.dq import summary

if TYPE_CHECKING:
    import dagster as dg

DELIVERIES: Final = "bronze.deliveries"
QUARANTINE: Final = "quarantine.records"
# The tables each source feeds, by the source's code (the first part of ``source`` in the
# delivery ledger and the quarantine: ``centre/gait`` is the centre's). Its runs are the runs
# that materialised any of them; its size is its silver tables' (tests/apps/test_data_health.py
# checks that every bronze and silver asset of the pipelines is here exactly once).
SOURCES: Final[dict[str, tuple[str, ...]]] = {
    "registry": (
        "bronze.resident_register",
        "bronze.institutions",
        "bronze.ai_enrolment",
        "silver.citizens",
        "silver.institutions",
    ),
    "claims": (
        "bronze.claims_t200",
        "bronze.claims_t300",
        "bronze.claims_t400",
        "bronze.claims_t530",
        "silver.claims",
        "silver.claim_lines",
        "silver.diagnoses",
        "silver.prescriptions",
    ),
    "pharmacy": ("bronze.pharmacy_t200", "bronze.pharmacy_t300", "silver.dispensings"),
    "centre": (
        "bronze.centre_members",
        "bronze.centre_balance",
        "bronze.centre_body",
        "bronze.centre_checkup",
        "bronze.centre_emg",
        "bronze.centre_foot",
        "bronze.centre_gait",
        "bronze.centre_mobility",
        "bronze.centre_posture",
        "silver.centre_members",
        "silver.centre_measurements",
    ),
    "programme": ("bronze.app_events", "silver.app_users", "silver.programme_events"),
    "imaging": (
        "silver.imaging_instances",
        "silver.imaging_series",
        "silver.imaging_studies",
        "silver.imaging_routing",
    ),
    # Hospital partners' OMOP extracts (``partners/<partner>/``): every bronze and silver table
    # the catalogue declares for them.
    "partners": tuple(t.name for t in PARTNERS if t.layer in ("bronze", "silver")),
}
# How many of an asset's latest materialisations are looked at to find its last successful run
# (a run can write a table and fail afterwards, on a blocking check).
RECENT_RUNS: Final = 20
# The tags a run's delivery window is read from (``pipelines.build.Stage.tags``).
RANGE_TAGS: Final = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
PARTITION_TAG: Final = "dagster/partition"

SOURCE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "source": pl.Utf8(),
    "last_run_at": pl.Datetime("us", "UTC"),
    "run_window": pl.Utf8(),
    "failed_since": pl.Boolean(),
    "first_period": pl.Utf8(),
    "last_period": pl.Utf8(),
    "last_delivered_at": pl.Datetime("us", "UTC"),
    "files": pl.Int64(),
    "files_rejected": pl.Int64(),
    "rows_read": pl.Int64(),
    "rows_accepted": pl.Int64(),
    "rows_quarantined": pl.Int64(),
    "silver_rows": pl.Int64(),
    "silver_updated": pl.Datetime("us", "UTC"),
}
CHECK_SCHEMA: Final[dict[str, pl.DataType]] = {
    "table": pl.Utf8(),
    "check": pl.Utf8(),
    "dqd_check": pl.Utf8(),
    "severity": pl.Utf8(),
    "violations": pl.Int64(),
    "rows": pl.Int64(),
    "share_pct": pl.Float64(),
    "threshold_pct": pl.Float64(),
    "evaluated_at": pl.Datetime("us", "UTC"),
}
QUARANTINE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "source": pl.Utf8(),
    "stage": pl.Utf8(),
    "reason": pl.Utf8(),
    "records": pl.Int64(),
    "rows": pl.Int64(),
    "last_period": pl.Utf8(),
}

UPTAKE_TABLES: Final = ("gold.programme_uptake_daily", PUBLISHED)
"""What officials' figures come from: the published table (its build) and the daily table it is
published from (the newest day it covers: the published table keeps months only)."""


@dataclass(frozen=True)
class Health:
    """The data-health view (``DataHealth.data_health``), aggregates only.

    Attributes:
        sources: One row per source (``SOURCES``): the last successful run's end
            (``last_run_at``, None when no run is recorded) and delivery window
            (``run_window``: ``2025-03..2025-05``, one period, or None when the run covered
            everything delivered), whether a later run that wrote its tables failed
            (``failed_since``); its deliveries' periods, newest delivery, files (and files
            rejected whole) and rows read, accepted and quarantined; its silver tables' rows
            and their newest commit.
        checks: The quality checks whose latest evaluation failed, worst first: the table,
            the check's name and type (``DATA_QUALITY.md``), ``fatal`` or ``warning``, the
            violating and checked rows, their share and the threshold (per cent), and when.
        quarantine: Records quarantined by source, stage (``bronze`` parsing, ``silver``
            conforming) and reason code: records, the rows they stand for, the newest period.
        recorded: Whether the Dagster instance holds any run record; False when it holds
            none or its home does not exist (run and check columns are then empty, which
            does not mean "all passed").
    """

    sources: pl.DataFrame
    checks: pl.DataFrame
    quarantine: pl.DataFrame
    recorded: bool


@dataclass(frozen=True)
class Freshness:
    """How fresh figures are: a page's (``DataHealth.freshness``) or a KPI card's
    (``Programme.kpis``), from their tables' Delta logs alone (``fresh``).

    Attributes:
        built_at: The newest commit among the tables the figures come from (their last build).
        data_until: The newest day of data they cover (a date column's largest value, from the
            Delta log's file statistics).
    """

    built_at: datetime | None
    data_until: date | None


FAILURE_COLUMNS: Final = (
    "check_name",
    "level",
    "cdm_table",
    "cdm_field",
    "concept_id",
    "category",
    "severity",
    "rows_failing",
    "rows_checked",
    "pct_failing",
    "threshold_pct",
    "explanation",
)


@dataclass(frozen=True)
class Quality:
    """The latest data-quality report over the OMOP tables (``DataHealth.data_quality``).

    Attributes:
        run_at: When the run started; None when no run is recorded.
        source_release: The source release date of the data it checked (``cdm_source``).
        summary: Checks run, passed, failed (``failed_fatal`` of them fatal) and not applicable
            per Kahn category and level (``lakehouse.omop.dq.summary``).
        failures: The failed checks, fatal first, then by failing share: the check type,
            level, table, field, concept, category, severity, failing and checked rows, the
            failing share and the threshold (per cent), and the explanation code (null: not
            expected).
        not_applicable: The checks not applied, counted by check type and reason code.
    """

    run_at: datetime | None
    source_release: date | None
    summary: pl.DataFrame
    failures: pl.DataFrame
    not_applicable: pl.DataFrame


class DataHealth(Gate):
    """The data-health methods of ``Access``: officials and the admin."""

    def data_health(self) -> Health:
        """Per source, its last successful run, delivery period and row counts; the failed
        quality checks; the quarantine by reason (``Health``). No person in any of them."""
        self._require("read:data_health", "official", "admin")
        runs = _instance()
        found = Health(
            sources=_sources(runs),
            checks=_failed_checks(runs),
            quarantine=_quarantine(),
            recorded=runs is not None and bool(runs.get_run_records(limit=1)),
        )
        self._audit(
            "read:data_health",
            "monitoring",
            rows=found.sources.height + found.checks.height + found.quarantine.height,
        )
        return found

    def data_quality(self) -> Quality:
        """The latest OMOP data-quality run (``Quality``): counts, check types, table and field
        names and codes only, no record of any person."""
        self._require("read:data_health", "official", "admin")
        latest = lake.frame(RESULTS)  # one run: each replaces the one before
        run = latest.row(0, named=True) if latest.height else {}
        failed = latest.filter(pl.col("passed").not_()).sort(
            pl.col("severity") != "fatal", pl.col("pct_failing"), "check_id",
            descending=[False, True, False],
        )  # fmt: skip
        found = Quality(
            run_at=run.get("run_at"),
            source_release=run.get("cdm_source_release"),
            summary=summary(latest),
            failures=failed.select(FAILURE_COLUMNS),
            not_applicable=latest.filter(pl.col("passed").is_null())
            .group_by("check_name", "not_applicable_reason")
            .agg(pl.len().cast(pl.Int64).alias("checks"))
            .sort("not_applicable_reason", "check_name"),
        )
        self._audit("read:data_quality", "monitoring", rows=latest.height)
        return found

    def freshness(self, tables: Sequence[str] = UPTAKE_TABLES) -> Freshness:
        """The last build of ``tables`` (gold tables a page reads; by default the uptake tables)
        and the newest day of data they cover, from their Delta logs alone (no data read).
        Like ``uptake_months``, a fact about the tables, not a read of figures: not audited."""
        self._require("read:aggregate", "official", "admin")
        return fresh(tables)


def fresh(tables: Sequence[str], days: Sequence[tuple[str, str | None]] | None = None) -> Freshness:
    """How fresh figures from ``tables`` are: their newest commit, and the newest day of data
    (``day_range``) of ``days`` (table and date column pairs, for figures that take their days
    from a column of their own choosing or from another table), by default of each table's
    first required date column. The one reckoning of freshness: the pages' line and the KPI
    cards both use it.

    Reckoned once per version of the tables it looks at: a page drawn again asks only for
    their versions from the logs this process keeps open (``queries.version_of``), where
    reading each log's file statistics anew took most of the KPI page's time (issue 23's
    profile, docs/performance.md)."""
    pairs = tuple(days) if days is not None else tuple((t, None) for t in tables)
    names = sorted({*tables, *(t for t, _ in pairs)})
    versions = tuple(queries.version_of(name) for name in names)
    if None in versions:  # a table not built yet, or not readable as it is: nothing to key by
        return _reckoned(tuple(tables), pairs)
    return _reckoned_at(tuple(tables), pairs, versions)


@lru_cache(maxsize=256)
def _reckoned_at(
    tables: tuple[str, ...],
    pairs: tuple[tuple[str, str | None], ...],
    versions: tuple[tuple[str, int] | None, ...],
) -> Freshness:
    """``_reckoned`` for the tables at ``versions`` (part of the key only)."""
    return _reckoned(tables, pairs)


def _reckoned(tables: tuple[str, ...], pairs: tuple[tuple[str, str | None], ...]) -> Freshness:
    """The newest commit of ``tables`` and the newest day of ``pairs`` (``fresh``)."""
    built = [s.updated for s in map(delta.state, tables) if s.updated is not None]
    newest = [d for t, c in pairs if (d := day_range(t, c)[1]) is not None]
    return Freshness(max(built, default=None), max(newest, default=None))


def day_range(name: str, column: str | None = None) -> tuple[date | None, date | None]:
    """The smallest and largest value of a date or timestamp ``column`` of a table (by default
    its first required date column), as days, from the file statistics of its Delta log, so no
    data is read; (None, None) when it has no such column or statistics, is empty or not yet
    written. A partition column's range is that of its files' partition values."""
    table = catalog_table(name)
    column = column or next(
        (c.name for c in table.columns if c.type == "date" and c.required), None
    )
    snap = lake.snapshot(name) if column is not None else None
    if column is None or snap is None:
        return None, None
    actions = snap.files  # the log this process keeps, listed once per version
    low, high = f"min.{column}", f"max.{column}"
    if f"partition.{column}" in actions.columns:  # a partition column has values, no statistics
        low = high = f"partition.{column}"
    if not actions.height or low not in actions.columns or high not in actions.columns:
        return None, None
    ends = actions.select(pl.col(low).min().alias("low"), pl.col(high).max().alias("high")).row(0)
    return _day(ends[0]), _day(ends[1])


def _day(value: object) -> date | None:
    """A statistic as a day (a timestamp's date)."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


@cache
def _instance_at(home: str) -> dg.DagsterInstance:
    """The Dagster instance under ``home``, opened once per process (it holds a connection)."""
    import dagster as dg

    return dg.DagsterInstance.from_config(home)


def _instance() -> dg.DagsterInstance | None:
    """The pipelines' Dagster instance (``config.dagster_home``), or None when its home does
    not exist: a lakehouse built without recording runs. Never created from here."""
    home = config.dagster_home()
    if not home.is_dir():
        return None
    return _instance_at(str(home))


def _key(table: str) -> dg.AssetKey:
    import dagster as dg

    return dg.AssetKey(table.split("."))


def _runs(instance: dg.DagsterInstance, tables: Iterable[str]) -> dict[str, Any]:
    """The last successful run that materialised any of ``tables``: its end, its delivery
    window, and whether a run that materialised one of them since failed."""
    import dagster as dg

    run_ids: set[str] = set()
    for table in tables:
        found = instance.fetch_materializations(_key(table), limit=RECENT_RUNS)
        run_ids |= {r.run_id for r in found.records}
    records = instance.get_run_records(dg.RunsFilter(run_ids=sorted(run_ids))) if run_ids else []
    ended = sorted((r for r in records if r.end_time is not None), key=lambda r: r.end_time or 0.0)
    success = [r for r in ended if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS]
    if not success:
        return {"last_run_at": None, "run_window": None, "failed_since": bool(ended)}
    last = success[-1]
    failed = any(
        r.dagster_run.status == dg.DagsterRunStatus.FAILURE
        and (r.end_time or 0.0) > (last.end_time or 0.0)
        for r in ended
    )
    return {
        "last_run_at": datetime.fromtimestamp(last.end_time or 0.0, UTC),
        "run_window": _window(last.dagster_run.tags),
        "failed_since": failed,
    }


def _window(tags: dict[str, str] | Any) -> str | None:
    """A run's delivery window from its tags: ``first..last``, one partition, or None."""
    first, last = (tags.get(t) for t in RANGE_TAGS)
    if first and last:
        return first if first == last else f"{first}..{last}"
    partition = tags.get(PARTITION_TAG)
    return str(partition) if partition else None


def _sources(instance: dg.DagsterInstance | None) -> pl.DataFrame:
    """One row per source: its runs, its deliveries and its silver tables' sizes."""
    ledger = (
        lake.scan(DELIVERIES)
        .with_columns(pl.col("source").str.split("/").list.first().alias("source"))
        .group_by("source")
        .agg(
            pl.col("period").filter(pl.col("status") == "ingested").min().alias("first_period"),
            pl.col("period").filter(pl.col("status") == "ingested").max().alias("last_period"),
            pl.col("delivered_at").max().dt.convert_time_zone("UTC").alias("last_delivered_at"),
            pl.len().cast(pl.Int64).alias("files"),
            (pl.col("status") == "rejected").sum().cast(pl.Int64).alias("files_rejected"),
            *(
                pl.col(c).sum().cast(pl.Int64)
                for c in ("rows_read", "rows_accepted", "rows_quarantined")
            ),
        )
        .collect()
    )
    rows = []
    for source, tables in SOURCES.items():
        silver = [delta.state(t) for t in tables if t.startswith("silver.")]
        updated = [s.updated for s in silver if s.updated is not None]
        runs = (
            _runs(instance, tables)
            if instance is not None
            else {"last_run_at": None, "run_window": None, "failed_since": None}
        )
        rows.append(
            {
                "source": source,
                **runs,
                "silver_rows": sum(s.rows or 0 for s in silver),
                "silver_updated": max(updated, default=None),
            }
        )
    found = pl.DataFrame(rows, schema={k: SOURCE_SCHEMA[k] for k in rows[0]})
    return found.join(ledger, on="source", how="left").select(
        pl.col(c).cast(SOURCE_SCHEMA[c]) for c in SOURCE_SCHEMA
    )


def _failed_checks(instance: dg.DagsterInstance | None) -> pl.DataFrame:
    """The catalogue's checks (``lakehouse.quality``) whose latest evaluation in the instance
    failed, fatal ones first, then by share of rows violating. Only the evaluation's counts are
    kept: its samples may hold record keys."""
    if instance is None:
        return pl.DataFrame(schema=CHECK_SCHEMA)
    import dagster as dg

    keys = [
        dg.AssetCheckKey(_key(c.table), c.dagster_name)
        for found in quality.all_checks().values()
        for c in found
    ]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    rows = []
    for key, record in latest.items():
        evaluation = record.event.asset_check_evaluation if record.event else None
        if evaluation is None or evaluation.passed:
            continue
        meta = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        rows.append(
            {
                "table": ".".join(key.asset_key.path),
                "check": key.name,
                "dqd_check": meta.get("dqd_check"),
                "severity": meta.get("severity"),
                "violations": meta.get("violations"),
                "rows": meta.get("rows"),
                "share_pct": meta.get("share_pct"),
                "threshold_pct": meta.get("threshold_pct"),
                "evaluated_at": datetime.fromtimestamp(record.create_timestamp, UTC),
            }
        )
    return pl.DataFrame(rows, schema=CHECK_SCHEMA).sort(
        pl.col("severity") != "fatal", pl.col("share_pct"), "table", "check",
        descending=[False, True, False, False],
    )  # fmt: skip


def _quarantine() -> pl.DataFrame:
    """The quarantine counted by source, stage and reason: codes and counts only."""
    return (
        lake.scan(QUARANTINE)
        .with_columns(pl.col("source").str.split("/").list.first().alias("source"))
        .group_by("source", "stage", "reason")
        .agg(
            pl.len().cast(pl.Int64).alias("records"),
            pl.col("rows").sum().cast(pl.Int64).alias("rows"),
            pl.col("period").max().alias("last_period"),
        )
        .sort("source", "stage", pl.col("records"), descending=[False, False, True])
        .collect()
        .cast(QUARANTINE_SCHEMA)  # type: ignore[arg-type]
    )
