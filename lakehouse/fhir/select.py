"""What a summary holds, chosen from a citizen's rows (pure functions of frames): the problems
coded recently, the latest value of each measure, the newest studies.

"Recent" is a window back from the day the summary is made, not from the last record, so an old
record never passes for a current one."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

import polars as pl

from lakehouse.fhir import results

PROBLEM_DAYS: Final = 365  # a diagnosis coded within a year is an active problem to show
MEASURE_DAYS: Final = 365  # a measurement within a year is a recent result
STUDY_DAYS: Final = 730  # studies within two years ...
STUDIES_MAX: Final = 5  # ... and at most five of them, newest first


def problems(diagnoses: pl.DataFrame, today: date, days: int | None = PROBLEM_DAYS) -> pl.DataFrame:
    """One row per KCD code coded within ``days`` (None: ever): ``kcd``, ``first_on`` (its
    first claim ever), ``last_on``, ``times`` (statements that coded it); most recent first.

    Args:
        diagnoses: The citizen's diagnoses in use: ``kcd``, ``diagnosed_on``, ``spec_id``.
        today: The day the summary is made.
        days: The window back from ``today``.
    """
    since = date.min if days is None else today - timedelta(days=days)
    return (
        diagnoses.filter(pl.col("diagnosed_on") <= today)
        .group_by("kcd")
        .agg(
            pl.col("diagnosed_on").min().alias("first_on"),
            pl.col("diagnosed_on").max().alias("last_on"),
            pl.col("spec_id").n_unique().alias("times"),
        )
        .filter(pl.col("last_on") > since)
        .sort("last_on", "kcd", descending=[True, False])
    )


def measurements(rows: pl.DataFrame, today: date) -> pl.DataFrame:
    """The latest value of each summary measure (``centre_measures.csv``: ``summary`` 1) and context
    within ``MEASURE_DAYS``, by device and measure.

    Args:
        rows: ``silver.centre_measurements`` rows of the citizen.
        today: The day the summary is made.
    """
    shown = [m for m, row in results.measures().items() if row["summary"] == "1"]
    return (
        rows.filter(
            pl.col("measured_on").is_between(today - timedelta(days=MEASURE_DAYS - 1), today)
            & pl.col("measure").is_in(shown)
        )
        .sort("measured_at", descending=True)
        .unique(["measure", "context"], keep="first", maintain_order=True)
        .sort("device", "measure", "context", nulls_last=True)
    )


def studies(rows: pl.DataFrame, today: date) -> pl.DataFrame:
    """The newest ``STUDIES_MAX`` studies within ``STUDY_DAYS``, newest first.

    Args:
        rows: ``silver.imaging_studies`` rows of the citizen.
        today: The day the summary is made.
    """
    return (
        rows.filter(pl.col("study_date").is_between(today - timedelta(days=STUDY_DAYS - 1), today))
        .sort("study_date", "study_datetime", descending=True, nulls_last=True)
        .head(STUDIES_MAX)
    )
