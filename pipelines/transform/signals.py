"""``gold.ade_signals``: the adverse drug event signals as officials and researchers may see them.

``lakehouse.omop.signals`` computes the sequence symmetry analysis and the disproportionality
2x2 for the city and each district, for the pairs screened by count and the prespecified pairs
(``lakehouse/reference/signal_pairs.csv``). This module publishes them: every count of 1-10 is
hidden (``lakehouse.disclosure``'s rule), with complements, one count column at a time along the
districts with the city as their margin, since a district's count is the city's minus the other
districts'. A ratio (and its interval and the signal flag) from a hidden count is not shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from lakehouse.catalog import table
from lakehouse.disclosure import suppress
from lakehouse.omop.signals import CITY, DEFAULTS, Settings, signals

TABLE: Final = "gold.ade_signals"
PAIRS_FILE: Final = Path(__file__).parents[2] / "lakehouse" / "reference" / "signal_pairs.csv"
# The published count columns, and the ratios each hides when it is hidden.
COUNTS: Final = {
    "drug_persons": (),
    "event_persons": (),
    "drug_first": ("crude_sr", "adjusted_sr", "sr_low", "sr_high", "signal"),
    "event_first": ("crude_sr", "adjusted_sr", "sr_low", "sr_high", "signal"),
    "exposed_with_event": ("prr", "prr_low", "prr_high", "ror", "ror_low", "ror_high"),
    "exposed_without_event": ("prr", "prr_low", "prr_high", "ror", "ror_low", "ror_high"),
    "others_with_event": ("prr", "prr_low", "prr_high", "ror", "ror_low", "ror_high"),
    "others_without_event": ("prr", "prr_low", "prr_high", "ror", "ror_low", "ror_high"),
}
# The 2x2 cells as lakehouse.omop.signals names them, and as the table does.
CELLS: Final = {
    "a": "exposed_with_event",
    "b": "exposed_without_event",
    "c": "others_with_event",
    "d": "others_without_event",
}


def prespecified() -> list[tuple[str, str]]:
    """The (drug, event) pairs always computed: the known effects and the negative controls."""
    pairs = pl.read_csv(PAIRS_FILE, comment_prefix="#", infer_schema=False)
    return [(d, e) for d, e in pairs.select("drug", "event").iter_rows()]


def hidden_counts(rows: pl.DataFrame, count: str) -> pl.Series:
    """Which values of ``count`` are suppressed: per pair, the districts' counts with the city
    as their margin go through the minimum-frequency rule and its complements."""
    scopes = [*sorted(s for s in rows["scope"].unique().to_list() if s != CITY), CITY]
    position = {s: i for i, s in enumerate(scopes)}
    hidden = np.zeros(rows.height, dtype=np.bool_)
    indexed = rows.select("drug", "event", "scope", count).with_row_index("_row")
    for group in indexed.partition_by("drug", "event"):
        values = np.zeros(len(scopes), dtype=np.int64)
        where = np.array([position[s] for s in group["scope"].to_list()], dtype=np.int64)
        values[where] = group[count].to_numpy()
        _, suppressed = suppress(values)
        hidden[group["_row"].to_numpy()] = suppressed[where]
    return pl.Series(count, hidden)


def publish(rows: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """The ``gold.ade_signals`` rows of ``lakehouse.omop.signals.signals``' output."""
    rows = rows.rename(CELLS).drop("same_day")
    if not rows.height:
        return pl.DataFrame(schema=table(TABLE).polars_schema())
    flags = {count: hidden_counts(rows, count) for count in COUNTS}
    ratios: dict[str, pl.Series] = {}
    for count, hides in COUNTS.items():
        for ratio in hides:
            ratios[ratio] = ratios.get(ratio, pl.Series(ratio, np.zeros(rows.height, bool)))
            ratios[ratio] = ratios[ratio] | flags[count]
    published = rows.with_columns(
        *(pl.when(flags[c]).then(None).otherwise(pl.col(c)).alias(c) for c in COUNTS),
        *(pl.when(mask).then(None).otherwise(pl.col(r)).alias(r) for r, mask in ratios.items()),
        pl.lit(settings.window_days, pl.Int64).alias("window_days"),
        pl.any_horizontal(*flags.values()).alias("suppressed"),
    )
    return published.select(c.name for c in table(TABLE).columns)


def ade_signals(
    drug_exposure: pl.DataFrame,
    condition_occurrence: pl.DataFrame,
    person: pl.DataFrame,
    location: pl.DataFrame,
    settings: Settings = DEFAULTS,
) -> pl.DataFrame:
    """``gold.ade_signals`` from the OMOP tables (``lakehouse.omop.signals.signals``' inputs)."""
    rows = signals(drug_exposure, condition_occurrence, person, location, settings, prespecified())
    return publish(rows, settings)


def first_days(records: pl.LazyFrame, columns: Sequence[str]) -> pl.LazyFrame:
    """Each person's first day of each code in a record table (``columns``: person, code,
    day), in its own columns: all that ``lakehouse.omop.signals.incident`` takes of it (the
    person's first record of any code too, a null code being a group of its own). Aggregated
    while scanned, a year of the city's records is a fraction of its rows."""
    person, code, day = columns
    return records.group_by(person, code).agg(pl.col(day).min())
