"""The pipeline partitions, in one place.

Claims and pharmacy extracts arrive monthly (the record-link history extract too, one delivery
per month of history); centre exports and app events daily. A partition is
the period a delivery covers (its manifest's ``period``), so a partition rerun reads and replaces
exactly that window. Ranges run as one run (``BackfillPolicy.single_run``): a year of daily
partitions is one pass, not 365.
"""

from __future__ import annotations

from typing import Final

import dagster as dg

# The first month of claims the platform handles: the record-link history extract reaches back
# to 2010 (synth.history), in monthly deliveries like the regular extract, so a history is more
# months of the same partitions (a range run takes them in one pass), not a second grain.
HISTORY_START: Final = "2010-01"
# The first day of the daily exports (centre devices, app events): the programme began in 2024.
START: Final = "2024-01-01"

MONTHS: Final = dg.MonthlyPartitionsDefinition(start_date=HISTORY_START, fmt="%Y-%m", end_offset=1)
DAYS: Final = dg.DailyPartitionsDefinition(start_date=START, fmt="%Y-%m-%d", end_offset=1)
ONE_RUN: Final = dg.BackfillPolicy.single_run()


def periods(context: dg.AssetExecutionContext) -> list[str]:
    """The partitions this run covers (one key, or a range run's keys)."""
    return list(context.partition_keys)
