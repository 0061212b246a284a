"""The members' bodies: what each device would measure on a given day.

A member's value of a measure on a day is

    norm(age that day, sex)                      published age/sex means (centre_norms.csv)
    + condition effects from each onset on       (centre_condition_effects.csv)
    + norm sd x spread x z                       the member's own persistent deviation
    + slope x years since the window start       the member's own trend
    + a slow wave (period 60-240 days)           weeks-long ups and downs
    + winter seasonality                         blood pressure
    + test-retest noise                          the only part drawn per session

so repeat measures of one member correlate and drift slowly instead of being fresh draws. The
deviations z share one "frailty" factor: a member who walks slowly also tends to have a weak grip,
sway more and rise from a chair more slowly. Everything except the noise is fixed per member when
the cohort is made, so the value on a day does not depend on which other days were generated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from synth.centre.params import CentreParams, FloatArray

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NEVER: Final = 2**31 - 1  # onset of a condition the member does not have
RIGHT_HANDED: Final = 0.9  # share of right-handers (approximate, population surveys)
WAVE_DAYS: Final = (60.0, 240.0)
JANUARY_PEAK: Final = 15  # day of year of the winter blood-pressure peak


@dataclass(frozen=True)
class Cohort:
    """The persistent traits of the centre's members, one array entry per member.

    Attributes:
        start: The window start (epoch day); member trends are measured from it.
        female: Sex.
        birth: Birth date (epoch day).
        onset: Condition -> onset (epoch day; ``NEVER`` if the member does not have it).
        z: Measure -> the member's standardised deviation from the norm.
        slope: Measure -> the member's own trend per year (model scale).
        wave_period: Measure -> period of the slow wave in days.
        wave_phase: Measure -> phase of the slow wave.
        right_handed: Dominant hand (grip norms are for the dominant hand).
        paretic_right: Which side a stroke affects, if the member has or gets one.
        emg_amp: (members, channels) log-factor of each channel's MVC amplitude (skin, fat,
            electrode placement).
        emg_freq: (members, channels) offset of each channel's mean frequency in Hz.
        arch: The member's standardised foot arch (higher: flatter foot), for the plantar
            pressure platform's arch index.
        posture: (members, 4) standardised posture traits (head forward, shoulder and pelvic
            height differences, trunk lean), for the posture analyser.
    """

    start: int
    female: BoolArray
    birth: IntArray
    onset: dict[str, IntArray]
    z: dict[str, FloatArray]
    slope: dict[str, FloatArray]
    wave_period: dict[str, FloatArray]
    wave_phase: dict[str, FloatArray]
    right_handed: BoolArray
    paretic_right: BoolArray
    emg_amp: FloatArray
    emg_freq: FloatArray
    arch: FloatArray
    posture: FloatArray

    def age(self, idx: IntArray, day: int) -> FloatArray:
        """Age in years on ``day`` of the members at ``idx``."""
        return (day - self.birth[idx]) / 365.25

    def has(self, condition: str, idx: IntArray, day: int) -> BoolArray:
        """Whether the members at ``idx`` have ``condition`` on ``day``."""
        onset = self.onset.get(condition)
        if onset is None:
            return np.zeros(len(idx), dtype=np.bool_)
        return onset[idx] <= day


def make_cohort(
    members: pl.DataFrame,
    conditions: pl.DataFrame,
    params: CentreParams,
    start: int,
    rng: np.random.Generator,
) -> Cohort:
    """Fix every member's persistent traits.

    Args:
        members: The members in member-number order (``pid, sex, birth_date`` are used).
        conditions: ``pid, condition, onset``; the earliest onset per condition counts.
        params: The centre's parameters.
        start: The window start (epoch day).
        rng: The cohort's own stream; draws happen in a fixed order.
    """
    n = members.height
    pids = members["pid"].to_numpy()
    position = {int(p): i for i, p in enumerate(pids)}
    onset: dict[str, IntArray] = {}
    names = sorted({e.condition for e in params.effects})
    mine = (
        conditions.filter(pl.col("pid").is_in(pids) & pl.col("condition").is_in(names))
        .group_by("pid", "condition")
        .agg(pl.col("onset").min())
        .sort("pid", "condition")
    )
    for name in names:
        onset[name] = np.full(n, NEVER, dtype=np.int64)
    for pid, cond, day in zip(
        mine["pid"].to_list(),
        mine["condition"].to_list(),
        mine["onset"].cast(pl.Int32).to_list(),
        strict=True,
    ):
        onset[cond][position[pid]] = day

    frailty = rng.standard_normal(n)
    z: dict[str, FloatArray] = {}
    slope: dict[str, FloatArray] = {}
    period: dict[str, FloatArray] = {}
    phase: dict[str, FloatArray] = {}
    for name, m in params.measures.items():
        own = rng.standard_normal(n)
        z[name] = m.loading * frailty + math.sqrt(1 - m.loading**2) * own
        slope[name] = rng.normal(0.0, m.drift_sd, n) if m.drift_sd > 0 else np.zeros(n)
        period[name] = rng.uniform(*WAVE_DAYS, n)
        phase[name] = rng.uniform(0.0, 2 * math.pi, n)
    channels = 2 * len(params.muscles)
    return Cohort(
        start=start,
        female=(members["sex"] == "F").to_numpy(),
        birth=members["birth_date"].cast(pl.Int32).to_numpy().astype(np.int64),
        onset=onset,
        z=z,
        slope=slope,
        wave_period=period,
        wave_phase=phase,
        right_handed=rng.random(n) < RIGHT_HANDED,
        paretic_right=rng.random(n) < 0.5,
        emg_amp=rng.normal(0.0, 0.3, (n, channels)),
        emg_freq=rng.normal(0.0, 6.0, (n, channels)),
        # Drawn last, so the traits above stay what they were before these devices existed.
        arch=rng.standard_normal(n),
        posture=rng.standard_normal((n, 4)),
    )


def _norm(
    params: CentreParams, measure: str, age: FloatArray, female: BoolArray
) -> tuple[FloatArray, FloatArray]:
    men, women = params.norms[(measure, "M")], params.norms[(measure, "F")]
    mean = np.where(
        female, np.interp(age, women.ages, women.mean), np.interp(age, men.ages, men.mean)
    )
    sd = np.where(female, np.interp(age, women.ages, women.sd), np.interp(age, men.ages, men.sd))
    return mean, sd


def latent(
    params: CentreParams, cohort: Cohort, measure: str, idx: IntArray, day: int
) -> FloatArray:
    """The members' true value of ``measure`` on ``day``, on the model scale (log for log measures).

    Everything but test-retest noise: what a perfect device would read.
    """
    m = params.measures[measure]
    mean, sd = _norm(params, measure, cohort.age(idx, day), cohort.female[idx])
    factor = np.ones(len(idx))
    spread = np.ones(len(idx))
    for effect in params.effects_on(measure):
        present = cohort.has(effect.condition, idx, day)
        mean = mean + np.where(present, effect.shift, 0.0)
        factor = factor * np.where(present, effect.factor, 1.0)
        spread = spread * np.where(present, effect.spread, 1.0)
    years = (day - cohort.start) / 365.25
    wave = m.wave_sd * np.sin(
        2 * math.pi * day / cohort.wave_period[measure][idx] + cohort.wave_phase[measure][idx]
    )
    doy = (day - JANUARY_PEAK) % 365.25  # day 0 is 1970-01-01, so day % 365.25 ~ day of year
    season = m.seasonal * math.cos(2 * math.pi * doy / 365.25)
    return (
        mean * factor
        + sd * spread * cohort.z[measure][idx]
        + cohort.slope[measure][idx] * years
        + wave
        + season
    )


def observe(
    params: CentreParams,
    cohort: Cohort,
    measure: str,
    idx: IntArray,
    day: int,
    rng: np.random.Generator,
) -> FloatArray:
    """One session's reading of ``measure`` for the members at ``idx`` on ``day``, in its unit.

    Adds test-retest noise to the latent value and clips to the measure's physiological range.
    """
    m = params.measures[measure]
    value = latent(params, cohort, measure, idx, day) + rng.normal(0.0, m.sd_within, len(idx))
    if m.log:
        value = np.exp(value)
    return np.clip(value, m.low, m.high)


def paretic_factor(
    params: CentreParams, cohort: Cohort, name: str, idx: IntArray, day: int
) -> FloatArray:
    """Factor on the stroke-affected side for ``name`` (``grip_paretic`` or ``emg_paretic``)."""
    factor = np.ones(len(idx))
    for effect in params.effects_on(name):
        factor = factor * np.where(cohort.has(effect.condition, idx, day), effect.factor, 1.0)
    return factor
