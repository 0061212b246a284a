"""Chronic conditions of the synthetic citizens.

Each person's chronic conditions are drawn once, at arrival, from the diagnosed prevalence by age
and sex in ``params/chronic_prevalence.csv``. Conditions that cluster in reality (hypertension,
diabetes, dyslipidaemia and their cardiovascular consequences; osteoarthritis and osteoporosis)
are drawn through a Gaussian copula: each condition is present when a correlated standard normal
falls below the prevalence quantile, so every marginal prevalence is exactly the published one
while the co-occurrence is realistic.

The result, ``conditions``, has one row per person and condition: ``pid`` (Int32), ``condition``,
``onset`` (Date, before the person's first day in the window).

Onset follows the same age curve. Read as a cumulative incidence (no excess mortality: the
illness-death model of Brinks & Landwehr, Theor Popul Biol 2014;92:62-68, with that rate set to
zero), the share of those who have a condition at age A who already had it at age a is
m(a) / p(A), where p is the diagnosed prevalence and m(a) its lowest value between a and A: a
condition that many children outgrow (asthma) is, at 75, one that began after the trough. So a
75-year-old hypertensive was most likely diagnosed in their fifties or sixties, which is what a
history back to 2010 (``synth.history``) shows as years of repeat prescriptions.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Final

import numpy as np
import polars as pl

from synth import reference as ref
from synth.config import CityConfig
from synth.population import DAYS_PER_YEAR, age_years
from synth.rng import stream

# Conditions sharing a latent factor, with the factor's loading (a modelling choice: it gives the
# roughly two-fold co-occurrence of hypertension and diabetes that KNHANES reports).
CLUSTERS: Final = {
    "cardiometabolic": (
        0.55,
        (
            "hypertension",
            "diabetes",
            "dyslipidaemia",
            "ischaemic_heart",
            "stroke",
            "atrial_fibrillation",
            "ckd",
        ),
    ),
    "musculoskeletal": (0.4, ("osteoarthritis", "osteoporosis")),
    "respiratory": (0.3, ("copd", "asthma")),
    "neuropsychiatric": (0.3, ("dementia", "depression")),
}
# The age grid (years) on which the prevalence curves are inverted for onsets.
AGE_STEP: Final = 0.1
MAX_AGE: Final = 121.0


def prevalence(age: np.ndarray, sex: np.ndarray, condition: str) -> np.ndarray:
    """Diagnosed prevalence (0-1) of ``condition`` for each person's age and sex."""
    t = ref.floats(ref.param("chronic_prevalence"), "male_pct", "female_pct").filter(
        pl.col("condition") == condition
    )
    p = np.zeros(len(age))
    for row in t.iter_rows(named=True):
        sel = (age >= int(row["age_lo"])) & (age <= int(row["age_hi"]))
        p[sel & (sex == "M")] = row["male_pct"] / 100
        p[sel & (sex == "F")] = row["female_pct"] / 100
    return p


def _curve(sex: str, condition: str) -> tuple[np.ndarray, np.ndarray]:
    """Ages on a fine grid and the diagnosed prevalence at each: the band values placed at the
    bands' middles, joined linearly, 0 at the first band's lower edge."""
    t = ref.floats(ref.param("chronic_prevalence"), "male_pct", "female_pct").filter(
        pl.col("condition") == condition
    )
    column = "male_pct" if sex == "M" else "female_pct"
    ages = np.arange(0.0, MAX_AGE, AGE_STEP)
    if not t.height:
        return ages, np.zeros(len(ages))
    lo = t["age_lo"].cast(pl.Float64).to_numpy()
    hi = np.minimum(t["age_hi"].cast(pl.Float64).to_numpy() + 1, MAX_AGE)
    x = np.concatenate([[lo.min()], (lo + hi) / 2])
    y = np.concatenate([[0.0], t[column].to_numpy() / 100])
    order = np.argsort(x, kind="stable")
    return ages, np.interp(ages, x[order], y[order], left=0.0)


def onset_ages(
    rng: np.random.Generator, age: np.ndarray, sex: np.ndarray, condition: str
) -> np.ndarray:
    """An age at diagnosis for each person who has ``condition`` at ``age``: P(by a) =
    m(a) / p(A) (module docstring); NaN where the curve is 0 at ``age``."""
    out = np.full(len(age), np.nan)
    u = rng.random(len(age))
    jitter = rng.random(len(age)) * AGE_STEP
    for s in ("M", "F"):
        ages, curve = _curve(s, condition)
        cell = np.minimum((age / AGE_STEP).astype(np.int64), len(ages) - 1)
        for k in np.unique(cell[sex == s]):
            rows = np.flatnonzero((sex == s) & (cell == k))
            if curve[k] <= 0:
                continue
            # The lowest prevalence between each age and this one: non-decreasing in age.
            lowest = np.minimum.accumulate(curve[: k + 1][::-1])[::-1]
            found = ages[np.searchsorted(lowest, u[rows] * curve[k], side="left")]
            out[rows] = np.minimum(found + jitter[rows], age[rows])
    return out


def _quantile(p: np.ndarray) -> np.ndarray:
    """Standard normal quantile of each probability (few distinct values, so computed per value)."""
    values, inverse = np.unique(p, return_inverse=True)
    q = np.array(
        [NormalDist().inv_cdf(v) if 0 < v < 1 else (-np.inf if v <= 0 else np.inf) for v in values]
    )
    return q[inverse]


def condition_names() -> list[str]:
    """Every chronic condition the generator knows, in a fixed order."""
    return ref.param("chronic_care")["condition"].to_list()


def generate_conditions(people: pl.DataFrame, cfg: CityConfig) -> pl.DataFrame:
    """Chronic conditions for everyone in ``people``."""
    rng = stream(cfg.seed, "morbidity")
    n = people.height
    birth = people["birth_date"].to_numpy().astype("datetime64[D]")
    first = people["present_from"].to_numpy().astype("datetime64[D]")
    age = age_years(birth, first)
    sex = people["sex"].to_numpy()
    pid = people["pid"].to_numpy()

    latent = {name: rng.standard_normal(n) for name in CLUSTERS}
    loading = {c: (name, rho) for name, (rho, members) in CLUSTERS.items() for c in members}

    frames: list[pl.DataFrame] = []
    for condition in condition_names():
        p = prevalence(age, sex, condition)
        noise = rng.standard_normal(n)
        if condition in loading:
            cluster, rho = loading[condition]
            score = rho * latent[cluster] + np.sqrt(1 - rho**2) * noise
        else:
            score = noise
        # Nobody is diagnosed with a chronic condition in their first month of life.
        has = (score < _quantile(p)) & ((first - birth).astype(np.int64) >= 30)
        idx = np.flatnonzero(has)
        if not len(idx):
            continue
        # Onset: on the prevalence curve, before arrival, after the first birthday when the
        # person is older (uniform over that span where the curve gives no age).
        lived = (first[idx] - birth[idx]).astype(np.int64)
        earliest = np.minimum(365, lived // 2)
        at = onset_ages(rng, age[idx], sex[idx], condition)
        uniform = earliest + rng.random(len(idx)) * (lived - earliest)
        onset_day = np.where(np.isnan(at), uniform, at * DAYS_PER_YEAR)
        back = np.clip(lived - onset_day.astype(np.int64), 1, np.maximum(lived - earliest, 1))
        frames.append(
            pl.DataFrame(
                {
                    "pid": pid[idx].astype(np.int32),
                    "condition": [condition] * len(idx),
                    "onset": first[idx] - back.astype("timedelta64[D]"),
                }
            ).with_columns(pl.col("onset").cast(pl.Date))
        )
    empty = pl.DataFrame(schema={"pid": pl.Int32, "condition": pl.Utf8, "onset": pl.Date})
    return pl.concat([empty, *frames]).sort("pid", "condition")
