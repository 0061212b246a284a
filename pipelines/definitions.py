"""The Dagster entry point: every source's definitions, one environment's resources.

``dagster dev -m pipelines.definitions``, ``gjh build`` and ``gjh serve`` all load this.
"""

from __future__ import annotations

import dagster as dg

from pipelines.defs import claims, registry
from pipelines.defs.resources import from_environment

defs = dg.Definitions(
    assets=[
        registry.bronze_registry,
        registry.silver_registry,
        claims.bronze_claims,
        claims.bronze_pharmacy,
        claims.silver_claims,
    ],
    resources=from_environment(),
)
