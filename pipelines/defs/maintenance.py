"""Table upkeep: compact small files and remove files no recent version needs, once a week,
and drop access-log months past their retention (``lakehouse.audit.expire_audit``).

Every partition rerun and merge adds files and leaves replaced ones behind; without upkeep reads
slow down and storage grows. Compaction keeps the data as it is (same rows, a new version); a
table laid out for lookups by citizen (``Table.sort_by``) is z-ordered by that column instead,
partition by partition where a partition has more than one file, with the gold writer's row
groups, so the days appended since the last upkeep rejoin their citizens' row groups.

Vacuum keeps a week of history (``RETENTION_HOURS``, the run's default; a shorter one is an
operator's explicit choice), the time travel the platform promises:

* any version of the last week reads as it was (docs/data-layout.md);
* the consent fast path reads ``silver.programme_events`` at the version the last nightly
  ``gold.citizen_consent`` folded (``lakehouse.queries._events_since``): a day old at most;
* an app reading the published tables at the version it opened (``lakehouse.access.aggregates``)
  while a rebuild commits a newer one;
* the access log keeps only an hour of commit files (``lakehouse.audit.LOG_RETENTION``), so its
  time travel is shorter than the files vacuum keeps, never longer.

It runs in the lakehouse pool, so it never races a pipeline's write.
"""

from typing import Final

import dagster as dg

from lakehouse import audit, delta
from lakehouse.catalog import TABLES
from pipelines.defs.gold import ROW_GROUP_ROWS, TIMEZONE
from pipelines.defs.resources import Lakehouse

RETENTION_HOURS: Final = 7 * 24


class UpkeepConfig(dg.Config):
    retention_hours: int = RETENTION_HOURS


@dg.op(pool="lakehouse")
def compact_and_vacuum(
    context: dg.OpExecutionContext, config: UpkeepConfig, lakehouse: Lakehouse
) -> dg.Output[dict[str, int]]:
    """Optimize then vacuum every table that exists; report files compacted and removed."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    expired = audit.expire_audit()  # before compaction, so the deleted months' files go too
    compacted = removed = tables = 0
    for name in sorted(TABLES):
        if not delta.exists(name):
            continue
        metrics = delta.optimize(name, ROW_GROUP_ROWS)
        compacted += int(str(metrics.get("numFilesRemoved", 0)))
        removed += len(delta.vacuum(name, config.retention_hours))
        tables += 1
    context.log.info(f"{tables} tables: {compacted} files compacted, {removed} files removed")
    summary = {
        "tables": tables,
        "files_compacted": compacted,
        "files_removed": removed,
        "audit_entries_expired": expired,
    }
    return dg.Output(summary, metadata=summary)


@dg.job(description="Compact and vacuum every lakehouse table.")
def upkeep_job() -> None:
    compact_and_vacuum()


weekly_upkeep = dg.ScheduleDefinition(
    name="weekly_upkeep",
    job=upkeep_job,
    cron_schedule="0 4 * * 0",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Compact and vacuum every table on Sundays at 04:00 KST, after the nightly gold.",
)
