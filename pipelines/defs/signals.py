"""``gold.ade_signals``: adverse drug event signals from the OMOP tables, published suppressed.

The asset reads ``omop.drug_exposure``, ``omop.condition_occurrence``, ``omop.person`` and
``omop.location`` (the columns ``lakehouse.omop.signals`` needs), computes the sequence symmetry
analysis and the disproportionality for the city and each district, hides small counts
(``pipelines.transform.signals``) and replaces the table whole in one commit: it is small (a
row per scope and pair) and is recomputed from the whole OMOP layer whenever one of the four
tables changed since it was last computed (``pipelines.defs.since``), else kept as it stands. It
runs in the OMOP tables' job (group ``omop``), right after them, so it never reads a day-old
layer.
"""

from typing import Final

import dagster as dg
import polars as pl

from lakehouse import delta
from lakehouse import read as lake

# The gold tables' one asset decorator (key, description, group, owners, kinds, deps, pool).
from pipelines.defs.gold import _asset as gold_asset
from pipelines.defs.omop import GROUP as OMOP_GROUP
from pipelines.defs.resources import Lakehouse
from pipelines.defs.since import WHOLE, since
from pipelines.transform.signals import TABLE, ade_signals, first_days

# The OMOP tables read, and the columns of each.
SOURCES: Final = {
    "omop.drug_exposure": ("person_id", "drug_source_value", "drug_exposure_start_date"),
    "omop.condition_occurrence": (
        "person_id",
        "condition_source_value",
        "condition_start_date",
    ),
    "omop.person": ("person_id", "location_id"),
    "omop.location": ("location_id", "location_source_value"),
}


# The record tables: only each person's first day of each code is used (``incident``), so they
# are read as those, aggregated while scanned. Read whole, a year of the city's drug exposures
# and conditions held 10.2 GiB (measured alone; 3.9 GiB read as first days).
FIRSTS: Final = ("omop.drug_exposure", "omop.condition_occurrence")


def _firsts(name: str) -> pl.DataFrame:
    """A record table as each person's first day of each code (``first_days``)."""
    return first_days(lake.scan(name), SOURCES[name]).collect(engine="streaming")


@gold_asset(TABLE, tuple(SOURCES), OMOP_GROUP)
def gold_ade_signals(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """Sequence symmetry and disproportionality per scope and pair, small counts hidden."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    found = since(TABLE, dict.fromkeys(SOURCES, WHOLE))
    if not found.whole:
        # The drugs and conditions come from the claims (monthly): most nights change none of
        # the four tables, and the signals of the whole history stand as they are.
        context.log.info("ADE signals: no OMOP table they read changed since, kept")
        # The rows as they stand, from the log's counts: the UI's row count stays true.
        rows = delta.state(TABLE).rows or 0
        return dg.MaterializeResult(metadata={"dagster/row_count": rows, "recomputed": False})
    drugs, conditions = (_firsts(name) for name in FIRSTS)
    person, location = (
        lake.scan(name).select(SOURCES[name]).collect() for name in ("omop.person", "omop.location")
    )
    frame = ade_signals(drugs, conditions, person, location)
    delta.replace(TABLE, frame, "scope IS NOT NULL")
    found.record(TABLE)
    signals = int(frame["signal"].fill_null(False).sum()) if frame.height else 0
    hidden = int(frame["suppressed"].sum()) if frame.height else 0
    context.log.info(f"ADE signals: {frame.height} rows, {signals} signals, {hidden} suppressed")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "signals": signals,
            "suppressed": hidden,
            "pairs": frame.select("drug", "event").unique().height if frame.height else 0,
            "recomputed": True,
        }
    )


SIGNALS_ASSETS: Final = (gold_ade_signals,)
