"""Reference ranges of the seniors' centre measurements, from published norms, and the lookup.

The ranges are data: ``lakehouse/reference/centre_norms.csv`` (bands by measure, sex and age)
and ``centre_norm_sources.csv`` (each band's source, and what the source says). A measurement
is judged by the band its value falls in for the person's age and sex on the day it was taken;
a measure with no published band is left unjudged rather than given an invented one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

import polars as pl

from lakehouse.reference import ROOT

NORMS: Final = ROOT / "centre_norms.csv"
SOURCES: Final = ROOT / "centre_norm_sources.csv"
JUDGED: Final[dict[str, pl.DataType]] = {
    "band": pl.Utf8(),
    "in_reference": pl.Boolean(),
    "ref_low": pl.Float64(),
    "ref_high": pl.Float64(),
    "source": pl.Utf8(),
}


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, comment_prefix="#", infer_schema=False)


@cache
def norms() -> pl.DataFrame:
    """Every band, typed: code, sex (M, F or *), age_min, age_max (null: no limit), band, low,
    high (null: unbounded), reference, source."""
    return _read(NORMS).with_columns(
        pl.col("age_min", "age_max").cast(pl.Int64),
        pl.col("low", "high").cast(pl.Float64),
        (pl.col("reference") == "1").alias("reference"),
    )


@cache
def sources() -> pl.DataFrame:
    """The sources: source id, citation, and what it says that the bands use."""
    return _read(SOURCES)


def bands(code: str, age: int, sex: str) -> pl.DataFrame:
    """The bands of one measure for a person of ``age`` (whole years) and ``sex`` (M or F),
    lowest first; empty when no published norm covers them."""
    return (
        _applicable(norms(), age, sex).filter(pl.col("code") == code).sort("low", nulls_last=False)
    )


def _applicable(frame: pl.DataFrame, age: int, sex: str) -> pl.DataFrame:
    return frame.filter(
        pl.col("sex").is_in(["*", sex])
        & (pl.col("age_min") <= age)
        & (pl.col("age_max").is_null() | (pl.col("age_max") >= age))
    )


def _within(value: pl.Expr, low: str, high: str) -> pl.Expr:
    return (pl.col(low).is_null() | (value >= pl.col(low))) & (
        pl.col(high).is_null() | (value < pl.col(high))
    )


def judge(readings: pl.DataFrame, age: int, sex: str) -> pl.DataFrame:
    """``readings`` (with ``measure`` and ``value``) with the band each value falls in for a
    person of ``age`` and ``sex``: ``band``, ``in_reference`` (the value is in the reference
    band), the reference band's ``ref_low`` and ``ref_high`` (null: unbounded on that side) and
    the ``source`` id. All null where no published norm covers the measure for that person."""
    here = _applicable(norms(), age, sex)
    reference = here.filter(pl.col("reference")).select(
        pl.col("code").alias("measure"),
        pl.col("low").alias("ref_low"),
        pl.col("high").alias("ref_high"),
    )
    indexed = readings.with_row_index("_row")
    found = (
        indexed.select("_row", "measure", "value")
        .join(here.rename({"code": "measure"}), on="measure", how="inner")
        .filter(_within(pl.col("value"), "low", "high"))
        .select("_row", "band", pl.col("reference").alias("in_reference"), "source")
        .unique("_row", keep="first")
    )
    return (
        indexed.join(found, on="_row", how="left")
        .join(reference, on="measure", how="left")
        .drop("_row")
        .cast(JUDGED)  # type: ignore[arg-type]
    )
