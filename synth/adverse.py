"""Planted adverse drug effects: a known drug -> event signal the signal methods must find.

``params/adverse_effects.csv`` names a drug (HIRA ingredient code), an event (a KCD code the acute
categories are visited for), a rate ratio and a window. After a person's first prescription of the
drug, their rate of new visit episodes with the event diagnosis is multiplied by the rate ratio for
the window: ``synth.care`` draws the person's usual episodes, and this module adds the excess,
``(rate_ratio - 1)`` times the person's own rate of that category and code (by age band, sex and
season, as ``CareModel.acute_profile`` and ``season_weights`` give it), drawn by thinning. A row
with a rate ratio of 1 is the null pair: nothing is planted, and the signal tests check that the
methods do not flag it.

The excess episodes come from their own named stream (``adverse``), so every visit the care model
draws stays the same for a seed; they become visits through ``CareModel.episode_visits`` like any
other acute episode (institution, follow-ups, prescriptions), kept apart
(``CareModel.visits_and_planted``) so that ``synth.city`` builds their claims in a chunk of their
own and every other claim stays as it was. The effects are written to
``ground_truth/adverse_effects.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import polars as pl

from synth import reference as ref
from synth.population import DAYS_PER_YEAR

if TYPE_CHECKING:
    from synth.care import CareModel

PARAMS: Final = "adverse_effects"
TRUTH_FILE: Final = "adverse_effects.csv"


@dataclass(frozen=True)
class Effect:
    """One drug -> event pair of ``params/adverse_effects.csv``."""

    role: str  # "planted" | "null"
    drug: str  # HIRA ingredient code
    kcd: str  # the event's KCD code as claims carry it (no dot)
    category: str  # the acute category whose episodes carry the code
    rate_ratio: float
    window_days: int


def effects() -> list[Effect]:
    """The effects of ``params/adverse_effects.csv``, planted and null."""
    table = ref.floats(ref.param(PARAMS), "rate_ratio").with_columns(
        pl.col("window_days").cast(pl.Int64)
    )
    return [Effect(**row) for row in table.iter_rows(named=True)]


def write_truth(truth: Path) -> None:
    """Record the effects in the ground truth folder (what the signal tests check against)."""
    ref.param(PARAMS).write_csv(truth / TRUTH_FILE)


def _first_fills(visits: pl.DataFrame, drug: str) -> pl.DataFrame:
    """Each person's first visit day with a prescription of ``drug`` (``pid``, ``first_day``)."""
    regimens = ref.param("regimens").filter(pl.col("gnl_nm_cd") == drug)["regimen"].unique()
    return (
        visits.select("pid", "day", pl.col("regimens").str.split("|").alias("regimen"))
        .explode("regimen")
        .filter(pl.col("regimen").is_in(regimens.implode()))
        .group_by("pid")
        .agg(pl.col("day").min().alias("first_day"))
        .sort("pid")
    )


def planted_visits(
    model: CareModel,
    rng: np.random.Generator,
    people: pl.DataFrame,
    visits: pl.DataFrame,
    chronic_per_year: np.ndarray,
    chronic_subs: np.ndarray,
) -> list[pl.DataFrame]:
    """The excess event episodes of every planted effect, as visits (``synth.care`` columns).

    Args:
        model: The care model that drew ``visits`` (its acute profile and episode visits).
        rng: The slice's own ``adverse`` stream.
        people: The slice's people.
        visits: The visits the care model drew for them (where the first fills are found).
        chronic_per_year: Each person's chronic follow-ups per year (they lower the acute rate).
        chronic_subs: Each person's chronic conditions as sub-diagnoses.
    """
    from synth.care import season_weights

    cats = model.acute
    category_row = {c: i for i, c in enumerate(cats["category"].to_list())}
    codes = [c.split("|") for c in cats["kcd"].to_list()]
    acute_rate, mean_visits, w_person = model.acute_profile(people, chronic_per_year)
    # Each person's expected acute episodes per day, all categories together.
    per_day = acute_rate / mean_visits / DAYS_PER_YEAR
    months = np.arange(1, 13)
    season = season_weights(cats, months)  # (12, categories)
    _, present_to = model._presence(people)
    row_of = dict(zip(people["pid"].to_list(), range(people.height), strict=True))
    out: list[pl.DataFrame] = []
    for effect in effects():
        if effect.rate_ratio <= 1.0:
            continue
        c = category_row[effect.category]
        options = codes[c]
        # The category's first code takes half its episodes, the others share the rest.
        code_share = (
            1.0
            if len(options) == 1
            else (0.5 if options[0] == effect.kcd else 0.5 / (len(options) - 1))
        )
        fills = _first_fills(visits, effect.drug)
        rows = np.array([row_of[p] for p in fills["pid"].to_list()], dtype=np.int64)
        if not len(rows):
            continue
        # The window opens the day after the first prescription.
        start = fills["first_day"].to_numpy().astype(np.int64) + 1
        end = np.minimum(start + effect.window_days, present_to[rows])
        span = np.maximum(end - start, 0)
        # The category's share of a person's episodes in each month (seasons reweigh all).
        share = w_person[rows][:, None, :] * season[None, :, :]  # (people, 12, categories)
        monthly = share[:, :, c] / share.sum(axis=2)  # (people, 12)
        base = per_day[rows][:, None] * monthly * code_share  # episodes per day
        top = base.max(axis=1)
        excess = effect.rate_ratio - 1.0
        # Thinning: candidates at the person's highest monthly rate, kept by the month's rate.
        n = rng.poisson(excess * top * span)
        owner = np.repeat(np.arange(len(rows)), n)
        day = start[owner] + (rng.random(len(owner)) * span[owner]).astype(np.int64)
        month = (np.datetime64(model.cfg.origin, "D") + day.astype("timedelta64[D]")).astype(
            "datetime64[M]"
        ).astype(np.int64) % 12
        keep = rng.random(len(owner)) * top[owner] < base[owner, month]
        owner, day = owner[keep], day[keep]
        cat = np.full(len(owner), c, dtype=np.int64)
        n_visits = 1 + np.minimum(
            rng.poisson(max(float(cats["visits"][c]) - 1.0, 0.0), len(owner)), 7
        )
        code = np.full(len(owner), effect.kcd, dtype=object)
        out.append(
            model.episode_visits(rng, people, rows[owner], day, cat, code, n_visits, chronic_subs)
        )
    return out
