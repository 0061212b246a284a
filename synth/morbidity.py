"""Chronic conditions of the synthetic citizens.

Each person's chronic conditions are drawn once, at arrival, from the diagnosed prevalence by age
and sex in ``params/chronic_prevalence.csv``. Conditions that cluster in reality (hypertension,
diabetes, dyslipidaemia and their cardiovascular consequences; osteoarthritis and osteoporosis)
are drawn through a Gaussian copula: each condition is present when a correlated standard normal
falls below the prevalence quantile, so every marginal prevalence is exactly the published one
while the co-occurrence is realistic.

The result, ``conditions``, has one row per person and condition: ``pid`` (Int32), ``condition``,
``onset`` (Date, before the person's first day in the window).
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
# Diagnosed conditions started some years before the window; at most this many.
MAX_DURATION_YEARS: Final = 15.0


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
        # Onset: some time before arrival, after the first birthday when the person is older.
        lived = (first[idx] - birth[idx]).astype(np.int64)
        earliest = np.minimum(365, lived // 2)
        span = np.minimum(lived - earliest, int(MAX_DURATION_YEARS * DAYS_PER_YEAR))
        back = (rng.random(len(idx)) * (span - 1)).astype(np.int64) + 1
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
