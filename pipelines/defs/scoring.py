"""AI scoring: every routed, complete study through its service's model into ``ai.findings``.

``ai_findings`` runs after routing in ``imaging_job`` (so the imaging sensor's runs score what
they route) and on its own in ``scoring_job`` (after a model is added or retrained: a new
version in ``models/registry.toml`` rescores its service's studies; the old version's rows stay).
Each scored study's heatmap and DICOM SR go to the object store beside the study.
"""

import time
from datetime import UTC, datetime
from typing import Any, Final

import dagster as dg
import polars as pl

from lakehouse import delta, dicom_store
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from models.runtime.registry import active
from pipelines.defs.resources import Lakehouse, Scoring
from pipelines.defs.specs import key
from pipelines.score.pending import pending
from pipelines.score.scoring import Scorers

FINDINGS: Final = "ai.findings"
GROUP: Final = "ai"
WRITE_EVERY: Final = 2000  # finding rows per Delta commit: a long run's memory stays bounded
INSTANCE_COLUMNS: Final = (
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "series_number",
    "instance_number",
    "file_uri",
)


def _write(rows: list[dict[str, Any]]) -> None:
    if rows:
        spec = catalog_table(FINDINGS)
        frame = spec.conform(pl.DataFrame(rows, schema=spec.polars_schema()))
        delta.merge(FINDINGS, frame, insert_only=True)


def run_scoring(batch: int, threads: int, workers: int) -> dict[str, dict[str, int]]:
    """Score what is pending for every active service; counts per service.

    The scoring processes start first, so that their imports overlap the reading of what is
    pending. Rows are written every ``WRITE_EVERY`` findings, each after its heatmap and SR
    are stored: a run that stops leaves no row pointing at a missing object.
    """
    dicom_store.check_key()
    with Scorers(workers, threads) as scorers:
        routing = lake.frame("silver.imaging_routing", pl.col("outcome") == "routed")
        instances = lake.scan("silver.imaging_instances").select(*INSTANCE_COLUMNS).collect()
        studies = lake.frame("silver.imaging_studies")
        findings = (
            lake.scan(FINDINGS)
            .select("study_instance_uid", "service", "algorithm_version")
            .collect()
        )
        work = [(s, pending(s, routing, instances, studies, findings)) for s in active()]
        counts = {
            s.service: {"studies": len(jobs), "scored": 0, "failed": 0, "positive": 0}
            for s, jobs in work
        }
        rows: list[dict[str, Any]] = []
        for row in scorers.score(work, datetime.now(UTC), batch):
            tally = counts[row["service"]]
            tally[str(row["status"])] += 1
            tally["positive"] += bool(row["positive"])
            rows.append(row)
            if len(rows) >= WRITE_EVERY:
                _write(rows)
                rows = []
        _write(rows)
    return counts


@dg.asset(
    key=key(FINDINGS),
    description=catalog_table(FINDINGS).description,
    group_name=GROUP,
    owners=["team:data-platform"],
    kinds={"delta", "onnx"},
    deps=[key("silver.imaging_routing")],
    pool="lakehouse",
)
def ai_findings(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse, scoring: Scoring
) -> dg.MaterializeResult[None]:
    """Routed, complete studies without a finding for the current model version, scored by
    the reference models (trained on synthetic data); findings, heatmaps and SRs written back."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    began = time.perf_counter()
    counts = run_scoring(scoring.batch, scoring.threads, scoring.processes)
    seconds = time.perf_counter() - began
    for service, tally in counts.items():
        if tally["studies"]:
            context.log.info(f"{service}: {tally}")
    total = {k: sum(t[k] for t in counts.values()) for k in ("studies", "scored", "failed")}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total["scored"] + total["failed"],
            "scored": total["scored"],
            "failed": total["failed"],
            "per_service": dg.MetadataValue.json(counts),
            "scoring_seconds": round(seconds, 2),
            "studies_per_hour": round(total["studies"] * 3600 / seconds) if seconds else 0,
            "models": "reference models trained on synthetic data, not for clinical use",
        }
    )


scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Score routed studies that have no finding for the current model versions.",
)
