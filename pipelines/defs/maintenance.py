"""Table upkeep: compact small files and remove files no recent version needs, once a week,
and drop access-log months past their retention (``lakehouse.audit.expire_audit``).

Every partition rerun and merge adds files and leaves replaced ones behind; without upkeep reads
slow down and storage grows. Compaction keeps the data as it is (same rows, a new version);
vacuum keeps a week of history so a reader of a recent version, or a look back in time, still
works. It runs in the lakehouse pool, so it never races a pipeline's write.
"""

from typing import Final

import dagster as dg

from lakehouse import audit, delta
from lakehouse.catalog import TABLES
from pipelines.defs.gold import TIMEZONE
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
        metrics = delta.optimize(name)
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
