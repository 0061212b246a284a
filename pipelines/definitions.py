"""The Dagster entry point: every source's assets and their data-quality checks, the ingestion
jobs and the drop-folder sensors (deliveries, DICOM uploads), the nightly gold refresh, the
weekly table upkeep, research copies on request, one environment's resources.

``dagster dev -m pipelines.definitions``, ``gjh build`` and ``gjh serve`` all load this.
"""

from __future__ import annotations

import dagster as dg

from pipelines.defs import (
    centre,
    checks,
    claims,
    gold,
    imaging,
    maintenance,
    programme,
    registry,
    research,
    scoring,
    sensors,
)
from pipelines.defs.resources import from_environment

ASSETS: list[dg.AssetsDefinition] = [
    registry.bronze_registry,
    registry.silver_registry,
    claims.bronze_claims,
    claims.bronze_pharmacy,
    claims.silver_claims,
    centre.centre_members,
    centre.bronze_centre,
    centre.silver_centre,
    programme.bronze_programme,
    programme.silver_programme,
    imaging.imaging_index,
    imaging.imaging_routing,
    scoring.ai_findings,
    *gold.GOLD_ASSETS,
]
GROUPS = {spec.group_name for a in ASSETS for spec in a.specs if spec.group_name}
JOBS = sensors.jobs(GROUPS)

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=checks.checks_for(ASSETS),
    jobs=[
        *JOBS,
        imaging.imaging_job,
        research.research_copy_job,
        scoring.scoring_job,
        gold.gold_job,
        maintenance.upkeep_job,
    ],
    sensors=[sensors.drop_folder_sensor(JOBS), imaging.imaging_drop],
    schedules=[gold.nightly_gold, maintenance.weekly_upkeep],
    resources=from_environment(),
)
