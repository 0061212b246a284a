"""The Dagster entry point: every source's assets with their data-quality checks, the ingestion
jobs and the drop-folder sensors (deliveries, DICOM uploads), the nightly gold refresh, the
OMOP tables after it with their data-quality report and the adverse drug event signals, the
weekly table upkeep, research copies on request, one environment's resources.

``dagster dev -m pipelines.definitions``, ``gjh build`` and ``gjh serve`` all load this.

Loading checks first that the AI services agree everywhere: every service the registry lists
(``models/registry.toml``, the one list) has its names and model there, its routing rule in
``routing.toml`` and its triage policy in ``triage.toml``. Each file's reader checks itself
against the registry and names the file and the service it lacks; calling them here makes a gap
stop the definitions from loading instead of surfacing at the first run or worklist.
"""

from __future__ import annotations

import dagster as dg

from lakehouse.triage import policy
from models.runtime.registry import registry as model_registry
from pipelines.defs import (
    centre,
    checks,
    claims,
    dq,
    gold,
    imaging,
    maintenance,
    omop,
    partners,
    programme,
    registry,
    research,
    scoring,
    sensors,
    signals,
)
from pipelines.defs.resources import from_environment
from pipelines.transform.routing import load_rules

model_registry()
load_rules()
policy()

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
    *partners.PARTNER_ASSETS,
    *gold.GOLD_ASSETS,
    omop.omop_tables,
    dq.omop_dq_results,
    *signals.SIGNALS_ASSETS,
]
# Each table's checks run in the step of the asset that writes it: refuse to load with a gap.
checks.require_wired(ASSETS)
GROUPS = {spec.group_name for a in ASSETS for spec in a.specs if spec.group_name}
JOBS = sensors.jobs(GROUPS)

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[
        *JOBS,
        imaging.imaging_job,
        imaging.imaging_intake_job,
        research.research_copy_job,
        scoring.scoring_job,
        gold.gold_job,
        omop.omop_job,
        maintenance.upkeep_job,
    ],
    sensors=[sensors.drop_folder_sensor(JOBS), imaging.imaging_drop],
    schedules=[gold.nightly_gold, omop.nightly_omop, maintenance.weekly_upkeep],
    resources=from_environment(),
)
