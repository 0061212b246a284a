"""Imaging: the DICOM drop folder into the index, and complete studies routed to the AI services.

``imaging_index`` takes every file that landed since the last pass (``pipelines.ingest.imaging``),
stores the originals and indexes the instances, then rebuilds the series and studies they touch.
``imaging_routing`` routes each complete study's series by the rule file
(``pipelines/transform/routing.toml``). Both are unpartitioned: a drop is "whatever arrived", not
a period, and each pass only adds.

The ``imaging_drop`` sensor launches ``imaging_job`` when the folder's settled files change and
the ledger lacks one of them (so the files ``gjh build`` indexed launch nothing), and again
when a study that was still receiving has been quiet for the quiet period, so studies are routed
unattended, part uploads included.
"""

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import dagster as dg
import polars as pl

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from pipelines.defs import checks
from pipelines.defs.resources import Imaging, Lakehouse
from pipelines.defs.specs import key, spec, within
from pipelines.ingest.dicom import SOURCE, landed
from pipelines.ingest.imaging import Drop, ingest, unindexed
from pipelines.ingest.parse import quarantine_frame
from pipelines.transform.imaging import series_of, studies_of, to_route
from pipelines.transform.routing import load_rules, route

INSTANCES: Final = "silver.imaging_instances"
SERIES: Final = "silver.imaging_series"
STUDIES: Final = "silver.imaging_studies"
ROUTING: Final = "silver.imaging_routing"
GROUP: Final = "imaging"
INTERVAL_S: Final = 60
# What a routing pass left waiting (its materialisation's metadata; ``gjh build`` reports it).
WAITING: Final = "studies_waiting"
ROUTABLE_FROM: Final = "first_routable_at"
ROUTABLE_BY: Final = "last_routable_at"
QUIET_PERIOD: Final = "quiet_period_s"


def write(drop: Drop) -> dict[str, int]:
    """Write one drop: instances (insert-only by SOP Instance UID), the series and studies it
    touched (rebuilt from all their instances), then the quarantine and the ledger."""
    if drop.instances:
        delta.merge(INSTANCES, drop.frame(), insert_only=True)
    touched = sorted(drop.studies)
    series = studies = 0
    if touched:
        instances = lake.frame(INSTANCES, pl.col("study_instance_uid").is_in(touched))
        flagged = lake.frame(STUDIES, pl.col("patient_conflict"))["study_instance_uid"]
        conflicted = drop.conflicted | set(flagged.to_list())
        if instances.height:
            built_series = series_of(instances)
            built_studies = studies_of(instances, conflicted)
            delta.merge(SERIES, built_series)
            delta.merge(STUDIES, built_studies)
            series, studies = built_series.height, built_studies.height
    if drop.quarantined:
        delta.append("quarantine.records", quarantine_frame(drop.quarantined))
    if drop.ledger:
        ledger = pl.DataFrame(
            drop.ledger, schema=catalog_table("bronze.deliveries").polars_schema()
        )
        delta.append("bronze.deliveries", ledger)
    return {
        "files": len(drop.ledger),
        "instances": len(drop.instances),
        "quarantined": len(drop.quarantined),
        "series": series,
        "studies": studies,
    }


@dg.multi_asset(
    name="imaging_index",
    specs=[spec(INSTANCES, GROUP), spec(SERIES, GROUP), spec(STUDIES, GROUP)],
    check_specs=checks.specs((INSTANCES, SERIES, STUDIES)),
    pool="lakehouse",
)
@checks.evaluated
def imaging_index(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse, imaging: Imaging
) -> Iterator[dg.MaterializeResult[None]]:
    """New DICOM files indexed (headers only), originals stored encrypted and unmodified,
    duplicates and bad files quarantined, touched series and studies rebuilt."""
    drop = ingest(lakehouse.sources, imaging.processes, imaging.settle_s)
    counts = write(drop)
    context.log.info(
        f"{drop.drop_id}: {counts['files']} files = {counts['instances']} instances indexed + "
        f"{counts['quarantined']} quarantined; {counts['studies']} studies touched"
        + (f"; {len(drop.changed)} still changing" if drop.changed else "")
    )
    yield dg.MaterializeResult(
        asset_key=key(INSTANCES),
        metadata={
            "dagster/row_count": counts["instances"],
            "drop": drop.drop_id,
            "files": counts["files"],
            "quarantined": counts["quarantined"],
        },
    )
    yield dg.MaterializeResult(asset_key=key(SERIES), metadata={"series": counts["series"]})
    yield dg.MaterializeResult(asset_key=key(STUDIES), metadata={"studies": counts["studies"]})


def decide(now: datetime, quiet: timedelta) -> tuple[int, int, str]:
    """Route the studies that became complete, withdraw the decisions of reopened ones;
    returns (studies routed, studies reopened, rules version)."""
    rules = load_rules()
    studies = lake.frame(STUDIES)
    routing = lake.scan(ROUTING).select("study_instance_uid", "received_until").collect()
    ready, reopened = to_route(studies, routing, now, quiet)
    if reopened:
        delta.delete(ROUTING, within("study_instance_uid", reopened))
    if ready:
        series = lake.frame(SERIES, pl.col("study_instance_uid").is_in(ready))
        chosen = studies.filter(pl.col("study_instance_uid").is_in(ready))
        delta.merge(ROUTING, route(series, chosen, rules, now))
    return len(ready), len(reopened), rules.version


def receiving(now: datetime, quiet: timedelta) -> list[datetime]:
    """When each study still receiving becomes complete, earliest first: the studies not routed
    for their latest instance because it arrived less than ``quiet`` ago."""
    studies = lake.scan(STUDIES).select("study_instance_uid", "last_received_at")
    decided = lake.scan(ROUTING).group_by("study_instance_uid").agg(pl.col("received_until").max())
    due = (
        studies.join(decided, on="study_instance_uid", how="left")
        .filter(
            (pl.col("last_received_at") > now - quiet)
            & (
                pl.col("received_until").is_null()
                | (pl.col("received_until") < pl.col("last_received_at"))
            )
        )
        .select((pl.col("last_received_at") + quiet).alias("due"))
        .collect()
    )
    return sorted(due["due"].to_list())


@dg.asset(
    key=key(ROUTING),
    description=catalog_table(ROUTING).description,
    group_name=GROUP,
    owners=["team:data-platform"],
    kinds={"delta", "polars"},
    deps=[key(SERIES), key(STUDIES)],
    check_specs=checks.specs((ROUTING,)),
    pool="lakehouse",
)
@checks.evaluated
def imaging_routing(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse, imaging: Imaging
) -> dg.MaterializeResult[None]:
    """Each complete study's series routed to an AI reading service, held back or left
    unrouted, with the rule that fired and why."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    now, quiet = datetime.now(UTC), timedelta(seconds=imaging.quiet_period_s)
    routed, reopened, version = decide(now, quiet)
    due = receiving(now, quiet)
    context.log.info(
        f"routed {routed} complete studies, reopened {reopened} (rules {version}); "
        f"{len(due)} still receiving"
    )
    metadata: dict[str, Any] = {
        "studies_routed": routed,
        "studies_reopened": reopened,
        "rules": version,
        WAITING: len(due),
        QUIET_PERIOD: imaging.quiet_period_s,
    }
    if due:
        metadata[ROUTABLE_FROM] = dg.MetadataValue.timestamp(due[0])
        metadata[ROUTABLE_BY] = dg.MetadataValue.timestamp(due[-1])
    return dg.MaterializeResult(metadata=metadata)


# In one process (the in-process executor): the run loads the definitions once, not once per
# step, and the checks of each table run right after it is written (issue 23 measured about
# 25 s of start-up in a process per step, whatever the size of the drop).
imaging_job = dg.define_asset_job(
    "imaging_job",
    selection=dg.AssetSelection.groups(GROUP, "ai"),
    description="Index the DICOM drop folder, route complete studies and score them.",
    executor_def=dg.in_process_executor,
)
imaging_intake_job = dg.define_asset_job(
    "imaging_intake",
    selection=dg.AssetSelection.assets(imaging_index),
    description="Index the DICOM drop folder and check its tables (gjh intake).",
    executor_def=dg.in_process_executor,
)


def listing_digest(files: list[tuple[str, int, int]]) -> str:
    """A fingerprint of the settled files (path, size, modification time)."""
    text = "\n".join(f"{rel}\t{size}\t{mtime}" for rel, size, mtime in files)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def waiting(now: datetime, quiet: timedelta) -> list[str]:
    """Studies that have become complete but are not routed for their latest instance."""
    studies = lake.scan(STUDIES).select("study_instance_uid", "last_received_at").collect()
    routing = lake.scan(ROUTING).select("study_instance_uid", "received_until").collect()
    return to_route(studies, routing, now, quiet)[0]


@dg.sensor(
    name="imaging_drop",
    job=imaging_job,
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs the imaging job when DICOM files land, and when a study becomes complete.",
)
def imaging_drop(
    context: dg.SensorEvaluationContext, lakehouse: Lakehouse, imaging: Imaging
) -> dg.SensorResult:
    now = datetime.now(UTC)
    files = landed(lakehouse.sources, imaging.settle_s, now)
    digest = listing_digest([(f.rel, f.size, f.mtime_ns) for f in files])
    if not files and context.cursor is None:
        return dg.SensorResult(skip_reason=f"no files in {lakehouse.sources / SOURCE}")
    requests = []
    # A changed listing launches a pass only when the ledger lacks one of its files: the files
    # gjh build indexed launch nothing when gjh serve starts, nor do files taken away.
    if digest != context.cursor and unindexed(files):
        requests.append(dg.RunRequest(run_key=f"{SOURCE}:files:{digest}"))
    ready = waiting(now, timedelta(seconds=imaging.quiet_period_s))
    if ready and not requests:
        stamp = hashlib.sha256("\n".join(sorted(ready)).encode()).hexdigest()[:16]
        requests.append(dg.RunRequest(run_key=f"{SOURCE}:complete:{stamp}"))
    if not requests:
        return dg.SensorResult(
            skip_reason="no new files and no study newly complete", cursor=digest
        )
    return dg.SensorResult(run_requests=requests, cursor=digest)
