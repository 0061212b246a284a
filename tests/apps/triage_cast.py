"""Who the clinician-app tests play, chosen from the built demo city's data."""

from __future__ import annotations

import polars as pl

from gjh.bench.roster import busiest_clinic
from tests.pipelines.conftest import Lake


def triage_cast(lake: Lake) -> dict[str, str]:
    """The clinic that sent the most AI-scored studies; a study of another institution whose
    patient the clinic has never seen (no study there, no visit on the timeline); and a hospital
    that reads for clinics."""
    findings = lake.frame("ai.findings")
    clinic = busiest_clinic(findings)
    mine = set(findings.filter(pl.col("institution") == clinic)["patient_key"].to_list())
    visited = lake.frame("gold.citizen_timeline", pl.col("institution") == clinic)
    mine |= set(visited["citizen_key"].to_list())
    foreign = findings.filter(
        (pl.col("institution") != clinic) & ~pl.col("patient_key").is_in(list(mine))
    )["study_instance_uid"][0]
    hospital = (
        lake.frame("silver.institutions")
        .filter(pl.col("class_code").is_in(["01", "11"]) & (pl.col("ykiho") != clinic))
        .sort("ykiho")["ykiho"][0]
    )
    return {"clinic": clinic, "foreign": foreign, "hospital": hospital}
