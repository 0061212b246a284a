"""The drop-folder sensor and the jobs it launches: new deliveries become runs, unattended.

Every source family has one asset job. The sensor reads the delivery manifests in the drop
folder; a delivery it has not seen yet asks for a run of its family's job for the delivery's
period (the partition), so a month's claims resent after review simply rerun that month, and
the partition rerun replaces exactly its window. Several new deliveries for one partition make
one run. The cursor is the set of deliveries already launched, so a restart launches nothing
twice, and the run key makes a launch idempotent even if the cursor were lost.

A delivery the ingestion ledger (``bronze.deliveries``) already holds counts as seen too: after
``gjh build`` took in the whole drop folder, a served demo's first tick launches nothing (it
used to launch a run for every delivery, hundreds of them, each re-ingesting what the build had
ingested), and only a delivery that arrives later launches its run.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import dagster as dg
import polars as pl
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition as AssetJob,  # what define_asset_job returns (no public alias)
)

from lakehouse import read as lake
from pipelines.defs.partitions import DAYS, MONTHS
from pipelines.defs.resources import Lakehouse
from pipelines.ingest.deliveries import MANIFEST

INTERVAL_S: Final = 60


@dataclass(frozen=True)
class Family:
    """Sources whose deliveries one job ingests."""

    job: str
    sources: tuple[str, ...]  # a source, or a "<prefix>/" for every source under it
    groups: tuple[str, ...]  # the asset groups the job materialises
    partitions: dg.PartitionsDefinition | None

    def takes(self, source: str) -> bool:
        return any(source == s or (s.endswith("/") and source.startswith(s)) for s in self.sources)


FAMILIES: Final = (
    Family("registry_job", ("registry/",), ("registry_bronze", "registry_silver"), None),
    Family(
        "claims_job",
        ("claims", "pharmacy"),
        ("claims_bronze", "pharmacy_bronze", "claims_silver"),
        MONTHS,
    ),
    Family("centre_members_job", ("centre/members",), ("centre_members",), None),
    Family("centre_job", ("centre/",), ("centre_bronze", "centre_silver"), DAYS),
    Family("programme_job", ("programme/",), ("programme_bronze", "programme_silver"), DAYS),
    Family("partners_job", ("partners/",), ("partners_bronze", "partners_silver"), None),
)


def family(source: str) -> Family | None:
    """The family that ingests ``source`` (the most specific one), if any."""
    matches = sorted(
        (f for f in FAMILIES if f.takes(source)), key=lambda f: source not in f.sources
    )
    return matches[0] if matches else None


def jobs(defs_groups: set[str]) -> list[AssetJob]:
    """One job per family whose asset groups are defined."""
    return [
        dg.define_asset_job(
            f.job,
            selection=dg.AssetSelection.groups(*f.groups),
            description=f"Ingest the deliveries of {', '.join(f.sources)}.",
        )
        for f in FAMILIES
        if set(f.groups) <= defs_groups
    ]


def deliveries(root: Path) -> dict[str, tuple[str, str]]:
    """Every delivery in the drop folder: ``"<source>/<delivery_id>"`` -> (source, period)."""
    found: dict[str, tuple[str, str]] = {}
    for pattern in (f"*/*/{MANIFEST}", f"*/*/*/{MANIFEST}"):
        for manifest in sorted(root.glob(pattern)):
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            if {"source", "delivery_id", "period"} <= doc.keys():
                found[f"{doc['source']}/{doc['delivery_id']}"] = (doc["source"], doc["period"])
    return found


def ingested() -> set[str]:
    """Every delivery (``"<source>/<delivery_id>"``) the ledger holds, whatever became of its
    files (ingested, duplicate or rejected): the pipelines have taken it in."""
    ledger = lake.scan("bronze.deliveries").select(
        pl.concat_str("source", pl.lit("/"), "delivery_id").unique().alias("delivery")
    )
    return set(ledger.collect()["delivery"].to_list())


def run_requests(
    root: Path, seen: set[str], available: set[str]
) -> tuple[list[dg.RunRequest], set[str]]:
    """The runs the deliveries under ``root`` not yet ``seen`` need, and the deliveries they
    launch.

    Deliveries of a source no available job ingests stay unseen, so they are launched once the
    job exists.
    """
    todo: dict[tuple[str, str | None], list[str]] = {}
    taken: set[str] = set()
    for delivery, (source, period) in deliveries(root).items():
        if delivery in seen:
            continue
        fam = family(source)
        if fam is None or fam.job not in available:
            continue
        todo.setdefault((fam.job, period if fam.partitions else None), []).append(delivery)
        taken.add(delivery)
    requests = []
    for (job, partition), batch in sorted(todo.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        digest = hashlib.sha256("\n".join(sorted(batch)).encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                run_key=f"{job}:{partition or '-'}:{digest}",
                job_name=job,
                partition_key=partition,
                tags={"gjh/deliveries": ",".join(sorted(batch))[:4000]},
            )
        )
    return requests, taken


def drop_folder_sensor(available: list[AssetJob]) -> dg.SensorDefinition:
    """The sensor that watches ``GJH_SOURCES`` (through the lakehouse resource)."""
    names = {j.name for j in available}

    @dg.sensor(
        name="drop_folder",
        jobs=available,
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches ingestion runs for deliveries that arrive in the drop folder.",
    )
    def sensor(context: dg.SensorEvaluationContext, lakehouse: Lakehouse) -> dg.SensorResult:
        root = lakehouse.sources
        launched = set(json.loads(context.cursor)) if context.cursor else set()
        requests, taken = run_requests(root, launched | ingested(), names)
        if not requests:
            return dg.SensorResult(skip_reason=f"no new deliveries in {root}")
        # The cursor keeps what this sensor launched; the ledger is read again on every tick.
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(sorted(launched | taken)))

    return sensor
