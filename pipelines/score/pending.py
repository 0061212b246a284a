"""What is left to score: routed, complete studies without a finding for a service's current
model version, as ``Job``s for ``pipelines.score.scoring`` (kept apart from it so that the scoring
processes never import Polars)."""

from __future__ import annotations

import polars as pl

from models.runtime.registry import Service
from pipelines.score.scoring import Job


def pending(
    service: Service,
    routing: pl.DataFrame,
    instances: pl.DataFrame,
    studies: pl.DataFrame,
    findings: pl.DataFrame,
) -> list[Job]:
    """Studies routed to ``service`` that have no finding for its current version."""
    routed = routing.filter(
        (pl.col("outcome") == "routed") & (pl.col("service") == service.service)
    ).select("study_instance_uid", "series_instance_uid")
    done = findings.filter(
        (pl.col("service") == service.service) & (pl.col("algorithm_version") == service.version)
    ).select("study_instance_uid")
    todo = routed.join(done, on="study_instance_uid", how="anti")
    if todo.is_empty():
        return []
    chosen = instances.join(todo, on=["study_instance_uid", "series_instance_uid"]).sort(
        "study_instance_uid", "series_number", "instance_number", "sop_instance_uid"
    )
    by_study = {row["study_instance_uid"]: row for row in studies.iter_rows(named=True)}
    jobs = []
    for (study_uid,), rows in chosen.group_by("study_instance_uid", maintain_order=True):
        if study_uid in by_study:
            jobs.append(Job(by_study[study_uid], rows.to_dicts()))
    return jobs
