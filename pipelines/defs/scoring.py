"""AI scoring: every routed, complete study through its service's model into ``ai.findings``.

``ai_findings`` runs after routing in ``imaging_job`` (so the imaging sensor's runs score what
they route) and on its own in ``scoring_job`` (after a model is added or retrained: a new
version in ``models/registry.toml`` rescores its service's studies; the old version's rows stay).
Each scored study's heatmap and DICOM SR go to the object store beside the study.
Where the scoring runs is the ``Scoring`` resource's ``engine`` (``pipelines.defs.engine``):
this machine's worker processes by default, an actor pool on a Ray cluster when configured
(``pipelines.score.ray_engine``, with Daft reading the inputs); the rows are written here,
through ``lakehouse.delta``, either way.
"""

import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import dagster as dg
import polars as pl

from lakehouse import delta, dicom_store
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from models.runtime.registry import active
from pipelines.defs import checks
from pipelines.defs.engine import Engine
from pipelines.defs.resources import Lakehouse, Scoring
from pipelines.defs.specs import key
from pipelines.score.pending import pending
from pipelines.score.scoring import Scorers

if TYPE_CHECKING:
    from pipelines.score.ray_engine import RayScorers

FINDINGS: Final = "ai.findings"
ROUTING: Final = "silver.imaging_routing"
INSTANCES: Final = "silver.imaging_instances"
STUDIES: Final = "silver.imaging_studies"
DONE_COLUMNS: Final = ("study_instance_uid", "service", "algorithm_version")
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


Inputs = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]


def _read_local() -> Inputs:
    """Routing, instances, studies and the findings so far, read by Polars."""
    routing = lake.frame(ROUTING, pl.col("outcome") == "routed")
    instances = lake.scan(INSTANCES).select(*INSTANCE_COLUMNS).collect()
    studies = lake.frame(STUDIES)
    findings = lake.scan(FINDINGS).select(*DONE_COLUMNS).collect()
    return routing, instances, studies, findings


def _read_daft() -> Inputs:
    """The same inputs read by Daft (``daft.read_deltalake``), for the Ray engine."""
    from pipelines.score.ray_engine import read

    return (
        read(ROUTING, equal=("outcome", "routed")),
        read(INSTANCES, INSTANCE_COLUMNS),
        read(STUDIES),
        read(FINDINGS, DONE_COLUMNS),
    )


def _engine(
    engine: Engine | None, workers: int, threads: int
) -> tuple[AbstractContextManager["Scorers | RayScorers"], Any]:
    """The scorers the engine names, and the reader of their inputs."""
    if engine is None or not engine.distributed:
        return Scorers(workers, threads), _read_local
    from pipelines.score.ray_engine import RayScorers

    return RayScorers(engine.address, engine.actors), _read_daft


def run_scoring(
    batch: int, threads: int, workers: int, engine: Engine | None = None
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Score what is pending for every active service; counts per service, and the Ray nodes
    each actor ran on (none on the local engine).

    The scorers start first, so that their imports overlap the reading of what is pending.
    Rows are written every ``WRITE_EVERY`` findings, each after its heatmap and SR are
    stored: a run that stops leaves no row pointing at a missing object.
    """
    dicom_store.check_key()
    manager, read_inputs = _engine(engine, workers, threads)
    with manager as scorers:
        routing, instances, studies, findings = read_inputs()
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
    return counts, list(getattr(scorers, "nodes", []))


@dg.asset(
    key=key(FINDINGS),
    description=catalog_table(FINDINGS).description,
    group_name=GROUP,
    owners=["team:data-platform"],
    kinds={"delta", "onnx"},
    deps=[key("silver.imaging_routing")],
    check_specs=checks.specs((FINDINGS,)),
    pool="lakehouse",
)
@checks.evaluated
def ai_findings(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse, scoring: Scoring
) -> dg.MaterializeResult[None]:
    """Routed, complete studies without a finding for the current model version, scored by
    the reference models (trained on synthetic data); findings, heatmaps and SRs written back."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    began = time.perf_counter()
    counts, nodes = run_scoring(scoring.batch, scoring.threads, scoring.processes, scoring.engine)
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
            "engine": scoring.engine.kind if scoring.engine else "local",
            "engine_nodes": dg.MetadataValue.json(nodes),
            "studies_per_hour": round(total["studies"] * 3600 / seconds) if seconds else 0,
            "models": "reference models trained on synthetic data, not for clinical use",
        }
    )


scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Score routed studies that have no finding for the current model versions.",
)
