"""Rates officials compare: crude rates per 1,000 residents, directly age-standardised rates,
both with exact 95% limits, and the Fingertips-style benchmark mark.

Every figure here is computed from tables as the access layer publishes them
(``Access.uptake``: the dimensions, the count, ``suppressed``), never from raw counts, so a rate
is hidden exactly where one of its counts is: a rate next to its denominator would give away
the hidden count. The methods are those of England's public-health profiles (Fingertips), as
the Public Health England "Technical Guide: Confidence Intervals" (2018) and APHO Technical
Briefing 3 (Eayres 2008) describe them:

* **Crude rate** ``O / n`` per 1,000, with exact Poisson limits for ``O`` (the chi-squared
  method: ``chi2(a/2, 2O) / 2`` and ``chi2(1 - a/2, 2O + 2) / 2``), divided by ``n``.
* **Directly age-standardised rate** (DSR): the age-specific rates weighted by a standard
  population, ``sum(w_i O_i / n_i) / sum(w_i)``, with Dobson's method for its limits (Dobson,
  Kuulasmaa, Eberle and Scherer, Stat Med 1991;10:457-462): with ``O = sum(O_i)`` and
  ``var = sum(w_i^2 O_i / n_i^2) / sum(w_i)^2``, the limits are
  ``DSR + sqrt(var / O) * (O_limit - O)`` for ``O``'s exact Poisson limits. PHE's tools use
  Byar's approximation of those limits; this module uses the exact ones, which Byar's method is
  within 0.2% of from 10 events on (the Technical Guide, Appendix 1).
  A DSR from fewer than ``MIN_EVENTS`` events is not given (PHE's rule, after Morris, Tan,
  Fryers and Bestwick, Popul Health Metr 2018;16:1), nor one with a hidden age cell.
* **Benchmark**: an area is ``higher`` or ``lower`` when its whole interval lies above or below
  the benchmark's value (the city's own rate, the point estimate), otherwise ``similar``.

The standard populations are reference files with their sources: Korea's registered population
of 2024 (``lakehouse/reference/standard_population_korea_2024.csv``, the default) and WHO's
World Standard Population (``standard_population_who_2000_2025.csv``), both by the uptake
table's age groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.stats import chi2

from lakehouse.reference import ROOT

PER: Final = 1000
CONFIDENCE: Final = 0.95
MIN_EVENTS: Final = 10
AGE: Final = "age_group"
STANDARDS: Final[dict[str, str]] = {
    "korea_2024": "standard_population_korea_2024.csv",
    "who_2000_2025": "standard_population_who_2000_2025.csv",
}
DEFAULT_STANDARD: Final = "korea_2024"
Benchmark = Literal["higher", "lower", "similar"]
# Why a DSR is or is not given: shown; an age cell of its counts is suppressed; fewer than
# MIN_EVENTS events; an age group without residents (no age-specific rate exists).
DsrStatus = Literal["shown", "suppressed", "few", "no_population"]
LIMITS: Final = ("rate", "lower", "upper")

Floats = npt.NDArray[np.float64]


def poisson_limits(
    observed: npt.ArrayLike, confidence: float = CONFIDENCE
) -> tuple[Floats, Floats]:
    """The exact (chi-squared) Poisson limits of observed counts: the lower limit of 0 is 0."""
    counts = np.asarray(observed, dtype=np.float64)
    alpha = 1 - confidence
    lower = np.where(counts > 0, chi2.ppf(alpha / 2, 2 * counts) / 2, 0.0)
    upper = chi2.ppf(1 - alpha / 2, 2 * counts + 2) / 2
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


@cache
def standard_population(name: str = DEFAULT_STANDARD) -> pl.DataFrame:
    """A standard population by age group (``age_group``, ``population``), from its reference
    file; ``name`` is one of ``STANDARDS``."""
    if name not in STANDARDS:
        raise ValueError(f"unknown standard population {name!r}; one of {sorted(STANDARDS)}")
    return pl.read_csv(
        ROOT / STANDARDS[name],
        comment_prefix="#",
        schema={AGE: pl.Utf8, "population": pl.Int64},
    )


def _paired(
    events: pl.DataFrame, population: pl.DataFrame, dims: Sequence[str], measure: str
) -> pl.DataFrame:
    """One row per cell of both published tables: the count, the residents, and whether either
    is hidden (``suppressed``)."""
    keys = list(dims)
    return (
        events.select(*keys, measure, pl.col("suppressed").alias("_a"))
        .join(
            population.select(*keys, "residents", pl.col("suppressed").alias("_b")),
            on=keys,
            how="inner",
        )
        .select(
            *keys,
            measure,
            "residents",
            (
                pl.col("_a")
                | pl.col("_b")
                | pl.col(measure).is_null()
                | pl.col("residents").is_null()
            ).alias("suppressed"),
        )
    )


def crude_rates(
    events: pl.DataFrame,
    population: pl.DataFrame,
    dims: Sequence[str],
    measure: str,
    per: int = PER,
    confidence: float = CONFIDENCE,
) -> pl.DataFrame:
    """Crude rates per ``per`` residents with exact Poisson limits, cell by cell.

    Args:
        events: ``Access.uptake(measure, dims, ...)``: the count by ``dims`` (margins
            included), null where hidden, and ``suppressed``.
        population: ``Access.uptake("residents", dims, ...)`` of the same period.
        dims: The dimensions both are broken down by.
        measure: The count column of ``events``.
        per: The rate's base (per 1,000 residents).
        confidence: The limits' confidence level.

    Returns:
        ``dims``, ``measure``, ``residents``, ``rate``, ``lower``, ``upper`` and ``suppressed``;
        a cell whose count or residents are hidden, or that has no residents, has no rate.
    """
    cells = _paired(events, population, dims, measure)
    counts = cells[measure].fill_null(0).to_numpy().astype(np.float64)
    lower, upper = poisson_limits(counts, confidence)
    shown = ~pl.col("suppressed") & (pl.col("residents") > 0)
    base = pl.col("residents").cast(pl.Float64) / per
    return cells.with_columns(
        pl.when(shown).then(pl.col(measure).cast(pl.Float64) / base).alias("rate"),
        pl.when(shown).then(pl.lit(pl.Series(lower)) / base).alias("lower"),
        pl.when(shown).then(pl.lit(pl.Series(upper)) / base).alias("upper"),
    ).select(*dims, measure, "residents", *LIMITS, "suppressed")


def standardised_rates(
    events: pl.DataFrame,
    population: pl.DataFrame,
    by: Sequence[str],
    measure: str,
    weights: pl.DataFrame,
    per: int = PER,
    confidence: float = CONFIDENCE,
) -> pl.DataFrame:
    """Directly age-standardised rates per ``per`` with Dobson's limits, one per group of
    ``by`` (say each district, and the city as the ``TOTAL`` margin).

    Args:
        events: ``Access.uptake(measure, [*by, "age_group"], ...)``: counts by the groups and
            age group (an ``age_group`` margin row, if present, is ignored).
        population: ``Access.uptake("residents", [*by, "age_group"], ...)``.
        by: The grouping dimensions (none: one rate for the whole table).
        measure: The count column of ``events``.
        weights: The standard population by age group (``age_group``, ``population``), as
            ``standard_population`` reads it.
        per: The rate's base.
        confidence: The limits' confidence level.

    Returns:
        ``by``, ``measure`` (the group's events), ``residents``, ``rate``, ``lower``, ``upper``
        and ``status`` (``DsrStatus``): no rate unless ``status`` is ``shown``.
    """
    keys = list(by)
    cells = _paired(events, population, [*keys, AGE], measure).join(
        weights.select(AGE, pl.col("population").alias("_w")), on=AGE, how="inner"
    )
    w, n = pl.col("_w").cast(pl.Float64), pl.col("residents").cast(pl.Float64)
    o = pl.col(measure).cast(pl.Float64)
    groups = (
        (cells.group_by(keys, maintain_order=True) if keys else cells.group_by(pl.lit(0)))
        .agg(
            pl.col(measure).sum().alias(measure),
            pl.col("residents").sum().alias("residents"),
            pl.col("suppressed").any().alias("_hidden"),
            (pl.col("residents") == 0).any().alias("_empty"),
            pl.len().alias("_ages"),
            ((w * o / n).sum() / w.sum()).alias("_dsr"),
            ((w**2 * o / n**2).sum() / w.sum() ** 2).alias("_var"),
        )
        .select(pl.exclude("literal"))
    )
    # Every age group of the standard must be there, shown and with residents.
    status = (
        pl.when(pl.col("_hidden") | (pl.col("_ages") < weights.height))
        .then(pl.lit("suppressed"))
        .when(pl.col("_empty"))
        .then(pl.lit("no_population"))
        .when(pl.col(measure) < MIN_EVENTS)
        .then(pl.lit("few"))
        .otherwise(pl.lit("shown"))
    )
    groups = groups.with_columns(status.alias("status"))
    total = groups[measure].fill_null(0).to_numpy().astype(np.float64)
    lower, upper = poisson_limits(total, confidence)
    shown = pl.col("status") == "shown"
    spread = (pl.col("_var") / pl.col(measure).cast(pl.Float64)).sqrt()
    observed = pl.col(measure).cast(pl.Float64)
    return groups.select(
        *keys,
        pl.when(shown).then(pl.col(measure)).alias(measure),
        pl.when(shown).then(pl.col("residents")).alias("residents"),
        pl.when(shown).then(pl.col("_dsr") * per).alias("rate"),
        pl.when(shown)
        .then((pl.col("_dsr") + spread * (pl.lit(pl.Series(lower)) - observed)) * per)
        .alias("lower"),
        pl.when(shown)
        .then((pl.col("_dsr") + spread * (pl.lit(pl.Series(upper)) - observed)) * per)
        .alias("upper"),
        "status",
    )


def benchmark(value: float | None, lower: str = "lower", upper: str = "upper") -> pl.Expr:
    """Fingertips' comparison with a benchmark ``value`` (the city's rate): ``higher`` when
    the interval lies wholly above it, ``lower`` when wholly below, ``similar`` when it
    overlaps; null when there is no interval or no benchmark."""
    if value is None:
        return pl.lit(None, dtype=pl.Utf8)
    return (
        pl.when(pl.col(lower) > value)
        .then(pl.lit("higher"))
        .when(pl.col(upper) < value)
        .then(pl.lit("lower"))
        .when(pl.col(lower).is_not_null() & pl.col(upper).is_not_null())
        .then(pl.lit("similar"))
    )
