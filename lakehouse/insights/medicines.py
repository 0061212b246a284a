"""What a citizen is taking: medication periods from prescriptions and dispensings, and which
of them are current on a day.

A prescription (the claims' T530: issued by a clinic for a pharmacy to fill) and its dispensing
(the pharmacy's claim) describe one supply of one drug. When a dispensing is linked to its
prescription (the same prescriber, issue number and ingredient), the dispensing supersedes it:
its day and days supplied are what the citizen actually received. A prescription never filled
(or filled outside the extract) stands for itself, from the day it was issued.

A period covers ``start`` to ``until``, both inclusive: ``until = start + covered days - 1``,
where the covered days are the days supplied, or 7 per dose for a once-weekly drug
(``lakehouse/reference/insights/medicines.toml``).

``current`` is the one definition of "taking it now"; the emergency summary (IPS) reads it too.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import polars as pl

from lakehouse.insights import rules

PRESCRIPTIONS: Final = "silver.prescriptions"
DISPENSINGS: Final = "silver.dispensings"
LINK: Final = ("prescriber", "prescription_no", "ingredient_code")
PERIOD_SCHEMA: Final[dict[str, pl.DataType]] = {
    "source": pl.Utf8(),
    "source_ref": pl.Utf8(),
    "ingredient_code": pl.Utf8(),
    "product_code": pl.Utf8(),
    "product_name": pl.Utf8(),
    "dose": pl.Float64(),
    "per_day": pl.Int64(),
    "days": pl.Int64(),
    "start": pl.Date(),
    "until": pl.Date(),
    "prescriber": pl.Utf8(),
    "pharmacy": pl.Utf8(),
    "prescription_no": pl.Utf8(),
    "issued_on": pl.Date(),
    "prescription_ref": pl.Utf8(),
}


def _ref(table: str) -> pl.Expr:
    """The silver row's reference, as ``gold.citizen_timeline.source_ref`` spells it."""
    return pl.concat_str(
        pl.lit(table),
        pl.col("spec_id"),
        pl.col("delivery_id"),
        pl.col("line_no").cast(pl.Utf8),
        separator=":",
    )


def _supplies(
    rows: pl.DataFrame, table: str, start: str, prescriber: str, pharmacy: pl.Expr
) -> pl.DataFrame:
    """Prescription or dispensing rows as supplies: what, how much, from when, from whom."""
    return rows.select(
        pl.lit("prescription" if table == PRESCRIPTIONS else "dispensing").alias("source"),
        _ref(table).alias("source_ref"),
        "ingredient_code",
        "product_code",
        pl.col("name").alias("product_name"),
        "dose",
        "per_day",
        "days",
        pl.col(start).alias("start"),
        pl.col(prescriber).alias("prescriber"),
        pharmacy.alias("pharmacy"),
        "prescription_no",
    )


def periods(prescriptions: pl.DataFrame, dispensings: pl.DataFrame) -> pl.DataFrame:
    """Every medication period of one citizen: each dispensing, and each prescription no
    dispensing supersedes, with the days its supply covers (``PERIOD_SCHEMA``), oldest first.

    Args:
        prescriptions: ``silver.prescriptions`` rows in use (the statement version in use), with
            at least spec_id, delivery_id, line_no, ykiho, prescription_no, issued_on,
            ingredient_code, product_code, name, dose, per_day and days.
        dispensings: ``silver.dispensings`` rows in use, with at least spec_id, delivery_id,
            line_no, pharmacy_ykiho, dispensed_on, prescriber_ykiho, prescription_no,
            ingredient_code, product_code, name, dose, per_day and days.
    """
    issued = _supplies(
        prescriptions, PRESCRIPTIONS, "issued_on", "ykiho", pl.lit(None, pl.Utf8)
    ).with_columns(issued_on=pl.col("start"), prescription_ref=pl.lit(None, pl.Utf8))
    links = (
        issued.select(*LINK, "issued_on", pl.col("source_ref").alias("prescription_ref"))
        .sort("prescription_ref")
        .unique(subset=list(LINK), keep="first")
    )
    dispensed = _supplies(
        dispensings, DISPENSINGS, "dispensed_on", "prescriber_ykiho", pl.col("pharmacy_ykiho")
    ).join(links, on=list(LINK), how="left")
    unfilled = issued.join(dispensed.select(LINK).unique(), on=list(LINK), how="anti")
    weekly = pl.col("ingredient_code").is_in(sorted(rules.weekly()))
    covered = pl.when(weekly).then(pl.col("days") * 7).otherwise(pl.col("days"))
    return (
        pl.concat([unfilled, dispensed.select(unfilled.columns)], how="vertical_relaxed")
        .with_columns(until=pl.col("start") + pl.duration(days=covered - 1))
        .select(list(PERIOD_SCHEMA))
        .cast(PERIOD_SCHEMA)  # type: ignore[arg-type]
        .sort("start", "source_ref")
    )


def current(prescriptions: pl.DataFrame, dispensings: pl.DataFrame, on: date) -> pl.DataFrame:
    """What the citizen is taking on ``on``: the periods covering that day (``periods``), one
    per drug and prescriber (a refill from the same clinic before the last supply ran out
    replaces it; the same drug from two clinics stays twice, as it is taken), the one ending
    soonest first.

    Args:
        prescriptions: As for ``periods``.
        dispensings: As for ``periods``.
        on: The day (inclusive at both ends of a period).
    """
    return (
        periods(prescriptions, dispensings)
        .filter((pl.col("start") <= on) & (pl.col("until") >= on))
        .sort("start", "source_ref", descending=True)
        .unique(subset=["ingredient_code", "prescriber"], keep="first")
        .sort("until", "ingredient_code", "prescriber")
    )
