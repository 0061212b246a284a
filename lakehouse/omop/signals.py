"""Adverse drug event signals on the OMOP layer: sequence symmetry and disproportionality.

Pure functions of OMOP-shaped Polars frames (``drug_exposure``, ``condition_occurrence``, and
``person`` with ``location`` for the district), for the city and each district.

**Incident ("new") drugs and events.** A person's observation starts at their first record of any
kind (drug or condition; the frames given here carry no ``observation_period``). A person's first
record of a drug (``drug_source_value``, the HIRA ingredient code) is an *incident start* when it
comes at least ``washout_days`` after their observation start; the same for an event
(``condition_source_value``, the KCD code). Everything earlier may be a continuing treatment or
condition whose real start the data never saw.

**Sequence symmetry analysis** (Hallas J. Evidence of depression provoked by cardiovascular
medication: a prescription sequence symmetry analysis. Epidemiology 1996;7:478-84; as in
OHDSI's population-level estimation): among persons with an incident start of drug D and an
incident event E within ``window_days`` of each other, count those whose drug came first and
those whose event came first (same-day pairs are counted apart and left out). Without an effect
the two orders are equally likely, so the *crude sequence ratio* ``drug_first / event_first``
estimates the incidence rate ratio of E after D against before it, each person their own control.

A rising use of D (or a data window that ends) makes drug-first sequences more or less likely by
itself. Tsiropoulos, Andersen and Hallas (Adverse events with use of antiepileptic drugs: a
prescription and event symmetry analysis. Pharmacoepidemiol Drug Saf 2009;18:483-91) correct for
it with the *null-effect sequence ratio*: the sequence ratio expected if D and E were independent,
from the daily counts of incident starts of D (``a_m``) and incident events E (``e_n``) in the
whole population of the scope::

    P = sum_m a_m * #E in (m, m + W] / sum_m a_m * (#E in [m - W, m + W] other than day m)
    null SR = P / (1 - P)

and the *adjusted sequence ratio* is ``crude SR / null SR``. Its 95 % interval is the normal
approximation on the log scale, ``exp(log aSR +- 1.96 * sqrt(1/drug_first + 1/event_first))``,
the null-effect ratio taken as known (it is estimated from far larger counts).

**Disproportionality** (a second view, the way spontaneous-report methods are carried over to
longitudinal data: Zorych et al., Disproportionality methods for pharmacovigilance in
longitudinal observational databases. Stat Methods Med Res 2013;22:39-56). The unit is an
incident drug start (a person and a drug). For drug D and event E, the 2x2 table is::

                           E within risk_days after the start   not
    starts of D                          a                      b
    starts of any other drug             c                      d

with PRR = (a / (a + b)) / (c / (c + d)) and its interval on the log scale with
SE = sqrt(1/a - 1/(a + b) + 1/c - 1/(c + d)) (Evans, Waller and Davis, Pharmacoepidemiol Drug
Saf 2001;10:483-6), and ROR = (a * d) / (b * c) with SE = sqrt(1/a + 1/b + 1/c + 1/d)
(van Puijenbroek et al., Pharmacoepidemiol Drug Saf 2002;11:3-10). "E within the risk window"
means the person's incident event E falls 1 to ``risk_days`` days after the start.

These are signals from observational data, not causal estimates: confounding by indication and
by time-varying factors remains, a frequent event's first record tends to come before a rarer
drug's (measured on the synthetic city's null pair: docs/signals.md), and many pairs screened
together give chance signals (one in forty null pairs has a lower bound above 1 at the 95 %
level by chance alone).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

CITY: Final = "city"
"""The scope of the whole city's rows; a district's rows carry its 5-digit code."""
Z95: Final = 1.959963984540054  # the standard normal's 97.5 % quantile


@dataclass(frozen=True)
class Settings:
    """The analysis windows, in days.

    Attributes:
        washout_days: A first record counts as new only this long after the person's first
            record of any kind.
        window_days: The sequence symmetry window: drug and event at most this far apart.
        risk_days: The disproportionality risk window after a drug start.
        min_persons: Pairs are screened when both the drug and the event have at least this many
            persons with an incident record in the city.
    """

    washout_days: int = 180
    window_days: int = 180
    risk_days: int = 60
    min_persons: int = 30


DEFAULTS: Final = Settings()


@dataclass(frozen=True)
class Interval:
    """A ratio with its 95 % interval; all None when it cannot be estimated (a zero count)."""

    value: float | None
    low: float | None
    high: float | None


def log_interval(value: float, se: float) -> Interval:
    """``value`` with the 95 % interval of the normal approximation on the log scale."""
    return Interval(value, value * math.exp(-Z95 * se), value * math.exp(Z95 * se))


def sequence_ratio(drug_first: int, event_first: int, null_sr: float) -> Interval:
    """The adjusted sequence ratio (crude / null-effect) with its 95 % interval.

    Args:
        drug_first: Persons whose incident drug start came before their incident event.
        event_first: Persons whose incident event came before their incident drug start.
        null_sr: Tsiropoulos' null-effect sequence ratio (1 without a trend).
    """
    if drug_first == 0 or event_first == 0 or not null_sr > 0:
        return Interval(None, None, None)
    crude = drug_first / event_first
    return log_interval(crude / null_sr, math.sqrt(1 / drug_first + 1 / event_first))


def prr(a: int, b: int, c: int, d: int) -> Interval:
    """The proportional reporting ratio of the 2x2 table (module docstring) with its interval."""
    if min(a, c) == 0 or a + b == 0 or c + d == 0:
        return Interval(None, None, None)
    value = (a / (a + b)) / (c / (c + d))
    return log_interval(value, math.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)))


def ror(a: int, b: int, c: int, d: int) -> Interval:
    """The reporting odds ratio of the 2x2 table (module docstring) with its interval."""
    if min(a, b, c, d) == 0:
        return Interval(None, None, None)
    return log_interval((a * d) / (b * c), math.sqrt(1 / a + 1 / b + 1 / c + 1 / d))


def null_sequence_ratio(drug_days: np.ndarray, event_days: np.ndarray, window_days: int) -> float:
    """Tsiropoulos' null-effect sequence ratio from the days (integers) of every incident
    drug start and every incident event in the scope (module docstring); NaN when no pair of
    days falls within the window."""
    if not len(drug_days) or not len(event_days):
        return math.nan
    lo = int(min(drug_days.min(), event_days.min())) - window_days - 1
    hi = int(max(drug_days.max(), event_days.max())) + window_days + 1
    a = np.bincount(drug_days - lo, minlength=hi - lo + 1)
    # cum[k] = events on days lo .. lo + k - 1
    cum = np.concatenate([[0], np.cumsum(np.bincount(event_days - lo, minlength=hi - lo + 1))])
    m = np.flatnonzero(a)
    after = cum[m + window_days + 1] - cum[m + 1]  # events on days m+1 .. m+W
    before = cum[m] - cum[m - window_days]  # events on days m-W .. m-1
    first = float((a[m] * after).sum())
    total = first + float((a[m] * before).sum())
    if total in (0, first):
        return math.nan
    return (first / total) / (1 - first / total)


def scopes(person: pl.DataFrame, location: pl.DataFrame) -> pl.DataFrame:
    """``person_id`` and ``scope``: every person in the city scope, and in their district's
    (``location.location_source_value``) when they have one."""
    district = person.select("person_id", "location_id").join(
        location.select("location_id", pl.col("location_source_value").alias("scope")),
        on="location_id",
        how="inner",
    )
    return pl.concat(
        [
            person.select("person_id", pl.lit(CITY).alias("scope")),
            district.select("person_id", "scope").filter(pl.col("scope").is_not_null()),
        ]
    )


def incident(
    drug_exposure: pl.DataFrame, condition_occurrence: pl.DataFrame, washout_days: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Incident drug starts and incident events: ``person_id``, ``code``, ``day`` (a date), each
    person's first record of each code, kept when it comes ``washout_days`` or more after the
    person's first record in either table."""
    drugs = drug_exposure.select(
        "person_id",
        pl.col("drug_source_value").alias("code"),
        pl.col("drug_exposure_start_date").alias("day"),
    )
    events = condition_occurrence.select(
        "person_id",
        pl.col("condition_source_value").alias("code"),
        pl.col("condition_start_date").alias("day"),
    )
    start = (
        pl.concat([drugs, events])
        .group_by("person_id")
        .agg(pl.col("day").min().alias("observed_from"))
    )

    def first(records: pl.DataFrame) -> pl.DataFrame:
        return (
            records.filter(pl.col("code").is_not_null())
            .group_by("person_id", "code")
            .agg(pl.col("day").min())
            .join(start, on="person_id")
            .filter((pl.col("day") - pl.col("observed_from")).dt.total_days() >= washout_days)
            .select("person_id", "code", "day")
        )

    return first(drugs), first(events)


def _day_number(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("day").cast(pl.Date).cast(pl.Int64).alias("day"))


def signals(
    drug_exposure: pl.DataFrame,
    condition_occurrence: pl.DataFrame,
    person: pl.DataFrame,
    location: pl.DataFrame,
    settings: Settings = DEFAULTS,
    prespecified: Iterable[tuple[str, str]] = (),
) -> pl.DataFrame:
    """Sequence symmetry and disproportionality for the screened and prespecified drug -> event
    pairs, for the city and each district (unsuppressed: ``publish`` hides small counts).

    Args:
        drug_exposure: ``person_id``, ``drug_source_value``, ``drug_exposure_start_date``.
        condition_occurrence: ``person_id``, ``condition_source_value``, ``condition_start_date``.
        person: ``person_id``, ``location_id``.
        location: ``location_id``, ``location_source_value`` (the district code).
        settings: The windows and the screening threshold.
        prespecified: (drug, event) pairs always computed, whatever their counts (the pairs a
            study names in advance, such as a known effect and a negative control).

    Returns:
        One row per scope and pair: ``scope``, ``drug``, ``event``, ``prespecified``,
        ``drug_persons`` and ``event_persons`` (incident persons in the scope), ``drug_first``,
        ``event_first``, ``same_day``, ``crude_sr``, ``null_sr``, ``adjusted_sr``, ``sr_low``,
        ``sr_high``, the 2x2 cells ``a``, ``b``, ``c``, ``d``, ``prr``, ``prr_low``,
        ``prr_high``, ``ror``, ``ror_low``, ``ror_high`` and ``signal`` (the adjusted SR's lower
        bound above 1). Sorted by scope (the city first), drug and event.
    """
    drugs, events = incident(drug_exposure, condition_occurrence, settings.washout_days)
    where = scopes(person, location)
    drugs = _day_number(drugs.join(where, on="person_id"))
    events = _day_number(events.join(where, on="person_id"))
    pairs = _pairs(drugs, events, settings.min_persons, list(prespecified))
    if not pairs.height:
        return _empty()
    # Every person's incident drug and event in the same scope, and their gap in days.
    both = (
        drugs.join(pairs.select("drug").unique(), left_on="code", right_on="drug")
        .join(events, on=["scope", "person_id"], suffix="_event")
        .select(
            "scope",
            pl.col("code").alias("drug"),
            pl.col("code_event").alias("event"),
            (pl.col("day_event") - pl.col("day")).alias("gap"),
        )
    )
    w, r = settings.window_days, settings.risk_days
    sequences = both.group_by("scope", "drug", "event").agg(
        ((pl.col("gap") > 0) & (pl.col("gap") <= w)).sum().cast(pl.Int64).alias("drug_first"),
        ((pl.col("gap") < 0) & (pl.col("gap") >= -w)).sum().cast(pl.Int64).alias("event_first"),
        (pl.col("gap") == 0).sum().cast(pl.Int64).alias("same_day"),
        ((pl.col("gap") > 0) & (pl.col("gap") <= r)).sum().cast(pl.Int64).alias("a"),
    )
    # The disproportionality margins: starts per drug, and starts of any drug followed by the
    # event, per scope.
    starts = drugs.group_by("scope", "code").agg(pl.len().cast(pl.Int64).alias("starts"))
    all_starts = drugs.group_by("scope").agg(pl.len().cast(pl.Int64).alias("all_starts"))
    followed = (
        drugs.join(events, on=["scope", "person_id"], suffix="_event")
        .filter(
            (pl.col("day_event") - pl.col("day") > 0) & (pl.col("day_event") - pl.col("day") <= r)
        )
        .group_by("scope", pl.col("code_event").alias("event"))
        .agg(pl.len().cast(pl.Int64).alias("followed"))
    )
    persons = [
        frame.group_by("scope", "code").agg(pl.len().cast(pl.Int64).alias(name))
        for frame, name in ((drugs, "drug_persons"), (events, "event_persons"))
    ]
    grid = (
        where.select("scope")
        .unique()
        .join(pairs, how="cross")
        .join(persons[0], left_on=["scope", "drug"], right_on=["scope", "code"], how="left")
        .join(persons[1], left_on=["scope", "event"], right_on=["scope", "code"], how="left")
        .join(sequences, on=["scope", "drug", "event"], how="left")
        .join(starts, left_on=["scope", "drug"], right_on=["scope", "code"], how="left")
        .join(all_starts, on="scope", how="left")
        .join(followed, on=["scope", "event"], how="left")
        .with_columns(
            pl.col(
                "drug_persons",
                "event_persons",
                "drug_first",
                "event_first",
                "same_day",
                "a",
                "starts",
                "all_starts",
                "followed",
            ).fill_null(0)
        )
        .with_columns(
            (pl.col("starts") - pl.col("a")).alias("b"),
            (pl.col("followed") - pl.col("a")).alias("c"),
        )
        .with_columns(
            (pl.col("all_starts") - pl.col("starts") - pl.col("c")).alias("d"),
        )
        .drop("starts", "all_starts", "followed")
    )
    null = _null_ratios(drugs, events, pairs, w)
    grid = grid.join(null, on=["scope", "drug", "event"], how="left")
    return _ratios(grid).sort(pl.col("scope") != CITY, "scope", "drug", "event")


def _pairs(
    drugs: pl.DataFrame, events: pl.DataFrame, min_persons: int, prespecified: list[tuple[str, str]]
) -> pl.DataFrame:
    """``drug``, ``event``, ``prespecified``: the pairs whose drug and event both have
    ``min_persons`` incident persons in the city, plus the prespecified ones."""
    city_drugs, city_events = (
        frame.filter(pl.col("scope") == CITY)
        .group_by("code")
        .len()
        .filter(pl.col("len") >= min_persons)
        .select("code")
        for frame in (drugs, events)
    )
    screened = city_drugs.rename({"code": "drug"}).join(
        city_events.rename({"code": "event"}), how="cross"
    )
    named = pl.DataFrame(
        {"drug": [d for d, _ in prespecified], "event": [e for _, e in prespecified]},
        schema={"drug": pl.String, "event": pl.String},
    )
    return (
        pl.concat([screened, named])
        .unique()
        .join(
            named.with_columns(pl.lit(True).alias("prespecified")), on=["drug", "event"], how="left"
        )
        .with_columns(pl.col("prespecified").fill_null(False))
        .sort("drug", "event")
    )


def _null_ratios(
    drugs: pl.DataFrame, events: pl.DataFrame, pairs: pl.DataFrame, window_days: int
) -> pl.DataFrame:
    """``scope``, ``drug``, ``event``, ``null_sr`` for every pair in every scope."""
    drug_days = {
        (s, c): np.asarray(d, dtype=np.int64)
        for s, c, d in drugs.group_by("scope", "code").agg("day").iter_rows()
    }
    event_days = {
        (s, c): np.asarray(d, dtype=np.int64)
        for s, c, d in events.group_by("scope", "code").agg("day").iter_rows()
    }
    empty = np.zeros(0, dtype=np.int64)
    rows = [
        (
            scope,
            drug,
            event,
            null_sequence_ratio(
                drug_days.get((scope, drug), empty),
                event_days.get((scope, event), empty),
                window_days,
            ),
        )
        for scope in sorted({s for s, _ in drug_days} | {s for s, _ in event_days})
        for drug, event in pairs.select("drug", "event").iter_rows()
    ]
    return pl.DataFrame(
        rows,
        schema={"scope": pl.String, "drug": pl.String, "event": pl.String, "null_sr": pl.Float64},
        orient="row",
    ).with_columns(pl.col("null_sr").fill_nan(None))


def _ratios(grid: pl.DataFrame) -> pl.DataFrame:
    """The ratios and intervals of every row (a few thousand rows: plain Python per row)."""
    out: dict[str, list[float | None]] = {
        k: []
        for k in (
            *("adjusted_sr", "sr_low", "sr_high"),
            *("prr", "prr_low", "prr_high"),
            *("ror", "ror_low", "ror_high"),
        )
    }
    for row in grid.select("drug_first", "event_first", "null_sr", "a", "b", "c", "d").iter_rows(
        named=True
    ):
        null_sr = row["null_sr"] if row["null_sr"] is not None else math.nan
        for prefix, ratio in (
            ("sr", sequence_ratio(row["drug_first"], row["event_first"], null_sr)),
            ("prr", prr(row["a"], row["b"], row["c"], row["d"])),
            ("ror", ror(row["a"], row["b"], row["c"], row["d"])),
        ):
            out["adjusted_sr" if prefix == "sr" else prefix].append(ratio.value)
            out[f"{prefix}_low"].append(ratio.low)
            out[f"{prefix}_high"].append(ratio.high)
    return (
        grid.with_columns(
            pl.when(pl.col("event_first") > 0)
            .then(pl.col("drug_first") / pl.col("event_first"))
            .alias("crude_sr"),
            *(pl.Series(k, v, dtype=pl.Float64) for k, v in out.items()),
        )
        .with_columns((pl.col("sr_low") > 1).fill_null(False).alias("signal"))
        .select(COLUMNS)
    )


COLUMNS: Final = (
    "scope",
    "drug",
    "event",
    "prespecified",
    "drug_persons",
    "event_persons",
    "drug_first",
    "event_first",
    "same_day",
    "crude_sr",
    "null_sr",
    "adjusted_sr",
    "sr_low",
    "sr_high",
    "a",
    "b",
    "c",
    "d",
    "prr",
    "prr_low",
    "prr_high",
    "ror",
    "ror_low",
    "ror_high",
    "signal",
)


def _empty() -> pl.DataFrame:
    ints = ("drug_persons", "event_persons", "drug_first", "event_first", "same_day")
    schema: dict[str, pl.DataType] = {}
    for name in COLUMNS:
        if name in ("scope", "drug", "event"):
            schema[name] = pl.String()
        elif name in ("prespecified", "signal"):
            schema[name] = pl.Boolean()
        elif name in ints or name in ("a", "b", "c", "d"):
            schema[name] = pl.Int64()
        else:
            schema[name] = pl.Float64()
    return pl.DataFrame(schema=schema)
