"""The pipeline partitions, in one place.

Claims and pharmacy extracts arrive monthly; centre exports and app events daily. A partition is
the period a delivery covers (its manifest's ``period``), so a partition rerun reads and replaces
exactly that window. Ranges run as one run (``BackfillPolicy.single_run``): a year of daily
partitions is one pass, not 365.
"""

from __future__ import annotations

from typing import Final

import dagster as dg

# The first period the platform handles; the synthetic city's calendar starts in 2024.
START: Final = "2024-01-01"

MONTHS: Final = dg.MonthlyPartitionsDefinition(start_date=START[:7], fmt="%Y-%m", end_offset=1)
DAYS: Final = dg.DailyPartitionsDefinition(start_date=START, fmt="%Y-%m-%d", end_offset=1)
ONE_RUN: Final = dg.BackfillPolicy.single_run()


def periods(context: dg.AssetExecutionContext) -> list[str]:
    """The partitions this run covers (one key, or a range run's keys)."""
    return list(context.partition_keys)
