"""The Dagster entry point: every source's assets, their jobs, the sensor, one environment's
resources.

``dagster dev -m pipelines.definitions``, ``gjh build`` and ``gjh serve`` all load this.
"""

from __future__ import annotations

import dagster as dg

from pipelines.defs import claims, registry, sensors
from pipelines.defs.resources import from_environment

ASSETS: list[dg.AssetsDefinition] = [
    registry.bronze_registry,
    registry.silver_registry,
    claims.bronze_claims,
    claims.bronze_pharmacy,
    claims.silver_claims,
]
GROUPS = {spec.group_name for a in ASSETS for spec in a.specs if spec.group_name}
JOBS = sensors.jobs(GROUPS)

defs = dg.Definitions(
    assets=ASSETS,
    jobs=JOBS,
    sensors=[sensors.drop_folder_sensor(JOBS)],
    resources=from_environment(),
)
