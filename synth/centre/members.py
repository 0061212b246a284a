"""Who becomes a member of the seniors' demonstration centre, when, and how often they come.

The centre sits in the Bitgoeul senior health town (남구 노대동), which the seed article reports
at "하루 3000명 이상" (3,000+ visitors a day) for the full city. Membership is open to residents
65 and older (the project's rule); members register once with their resident registration number
and then visit several times a week. The number of members is set from the visit target and the
mean visit frequency, so visit volume scales with ``cfg.scale``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

import numpy as np
import polars as pl

from synth.calendar import centre_open
from synth.config import CityConfig
from synth.rng import stream

VISITS_PER_OPEN_DAY: Final = 3_000  # seed article: 3,000+ visitors a day at full city scale
OPEN_DAYS_PER_WEEK: Final = 6  # closed Sundays (and holidays, see synth.calendar)
# Weekly visits of one member: 1 + Gamma(2, 0.75), mean 2.5, capped at 6 (synthetic choice for
# "several times a week"; senior welfare centres report most users coming 2-4 times a week).
WEEKLY_SHAPE: Final = 2.0
WEEKLY_SCALE: Final = 0.75
MEAN_OPEN_DAY_P: Final = (1 + WEEKLY_SHAPE * WEEKLY_SCALE) / OPEN_DAYS_PER_WEEK
# Share of members active on an average day (the rest join during the window, or have died or
# moved out); sizes the membership, after which the visit chances are calibrated exactly.
ACTIVE_SHARE: Final = 0.85
MIN_MEMBERS: Final = 6  # a city of a few hundred citizens still gets a handful of members
PRE_WINDOW_SHARE: Final = 0.8  # eligible at the start: registered before the window
MEMBER_AGE: Final = 65
FIRST_MEMBER_NO: Final = 1_000_001

# Distance decay around Nam-gu, where the town is (synthetic choice).
DISTRICT_WEIGHT: Final = {"24010": 1.0, "24020": 1.2, "24030": 2.0, "24040": 0.7, "24050": 0.6}
# Users of senior welfare facilities are mostly in their 70s; the very old come less (synthetic
# choice, consistent with the 2023 Survey of Older Koreans' facility-use pattern, approximate).
AGE_KNOTS: Final = (65.0, 70.0, 75.0, 80.0, 85.0, 90.0)
AGE_WEIGHT: Final = (0.8, 1.2, 1.2, 0.8, 0.4, 0.15)

# Device use per visit: check-up station (blood pressure at nearly every visit), gait, balance,
# EMG, body composition, the mobility tests (TUG, chair stand, tandem stance), the plantar
# pressure platform and the posture analyser, each a member-specific propensity around these
# bases (synthetic choice).
DEVICES: Final = ("checkup", "gait", "balance", "emg", "body", "mobility", "foot", "posture")
DEVICE_BASE: Final = (0.7, 0.35, 0.35, 0.15, 0.25, 0.2, 0.1, 0.1)

_EPOCH: Final = date(1970, 1, 1).toordinal()


def epoch_day(day: date) -> int:
    """Days since 1970-01-01, the integer the model uses for dates (polars' Date physical value)."""
    return day.toordinal() - _EPOCH


def target_members(cfg: CityConfig) -> int:
    """Members needed for about ``VISITS_PER_OPEN_DAY * cfg.scale`` visits on an open day."""
    daily = VISITS_PER_OPEN_DAY * cfg.scale
    return max(MIN_MEMBERS, round(daily / (MEAN_OPEN_DAY_P * ACTIVE_SHARE)))


def _eligible(people: pl.DataFrame, cfg: CityConfig) -> pl.DataFrame:
    start, end = epoch_day(cfg.start), epoch_day(cfg.end)
    frame = people.sort("pid").with_columns(
        pl.col("birth_date").dt.offset_by(f"{MEMBER_AGE}y").cast(pl.Int32).alias("age65"),
        # Residents present at the start may have joined in the ten years before the window.
        pl.when(pl.col("present_from").cast(pl.Int32) <= start)
        .then(pl.lit(start - 3650))
        .otherwise(pl.col("present_from").cast(pl.Int32))
        .alias("p_from"),
        pl.min_horizontal(pl.col("present_to").cast(pl.Int32), pl.lit(end)).alias("last"),
    )
    frame = frame.with_columns(pl.max_horizontal("p_from", "age65").alias("eligible_from"))
    return frame.filter((pl.col("last") > pl.col("eligible_from")) & (pl.col("last") > start))


def _calibrate(
    visit_p: np.ndarray, first: np.ndarray, last: np.ndarray, cfg: CityConfig
) -> np.ndarray:
    """Scale the visit chances so the expected visits per open day meet the target.

    Members join during the window, die and move away, so the active share depends on the
    window; the expected count is exact given the chosen members (sum of chance x open days
    active), and the correction stays within +-33 % so habits stay "several times a week".
    """
    is_open = [centre_open(cfg.start + timedelta(i)) for i in range(cfg.days)]
    cum = np.concatenate([[0], np.cumsum(is_open)])
    expected = float(np.sum(visit_p * (cum[last] - cum[first]))) / max(int(cum[-1]), 1)
    if expected <= 0:
        return visit_p
    factor = min(max(VISITS_PER_OPEN_DAY * cfg.scale / expected, 0.75), 1.33)
    return np.minimum(visit_p * factor, 0.95)


def select_members(people: pl.DataFrame, cfg: CityConfig) -> pl.DataFrame:
    """Choose the centre's members and their registration dates and habits.

    Args:
        people: The population (see the synth package's people schema).
        cfg: The city; its scale sets the number of members.

    Returns:
        One row per member, ordered by member number: ``pid, member_no, rrn, name, sex,
        birth_date, registered_on`` (Date), ``active_from``/``active_to`` (epoch days, the span in
        the window when the member can visit), ``visit_p`` (chance of a visit on an open day) and
        one ``p_<device>`` column per device.
    """
    start = epoch_day(cfg.start)
    cand = _eligible(people, cfg)
    rng = stream(cfg.seed, "centre", "membership")
    k = min(target_members(cfg), cand.height)
    age = (
        np.maximum(cand["eligible_from"].to_numpy(), start)
        - cand["birth_date"].cast(pl.Int32).to_numpy()
    ) / 365.25
    weight = np.interp(age, AGE_KNOTS, AGE_WEIGHT) * np.array(
        [DISTRICT_WEIGHT.get(code, 1.0) for code in cand["district_code"].to_list()]
    )
    # Weighted sampling without replacement (Gumbel top-k): exactly k members.
    keys = np.log(weight) - np.log(-np.log(rng.random(cand.height)))
    chosen = np.sort(np.argsort(-keys, kind="stable")[:k])
    m = cand[chosen]

    elig = m["eligible_from"].to_numpy().astype(np.int64)
    last = m["last"].to_numpy().astype(np.int64)
    before = (elig < start) & (rng.random(k) < PRE_WINDOW_SHARE)
    span_before = np.maximum(start - elig, 1)
    first_in = np.maximum(elig, start)
    registered = np.where(
        before,
        start - 1 - np.floor(rng.random(k) * span_before).astype(np.int64),
        first_in + np.floor(rng.random(k) * (last - first_in)).astype(np.int64),
    )
    weekly = np.minimum(1 + rng.gamma(WEEKLY_SHAPE, WEEKLY_SCALE, k), OPEN_DAYS_PER_WEEK)
    visit_p = np.minimum(weekly / OPEN_DAYS_PER_WEEK, 0.95)
    active_from = np.maximum(registered, start)
    if k == target_members(cfg) > MIN_MEMBERS:
        visit_p = _calibrate(visit_p, active_from - start, last - start, cfg)
    device_p = {
        f"p_{name}": np.minimum(base * np.exp(rng.normal(0, 0.4, k)), 0.95)
        for name, base in zip(DEVICES, DEVICE_BASE, strict=True)
    }
    tiebreak = rng.random(k)
    m = m.with_columns(
        pl.Series("registered_on", registered, dtype=pl.Int32).cast(pl.Date),
        pl.Series("active_from", active_from, dtype=pl.Int32),
        pl.Series("active_to", last, dtype=pl.Int32),
        pl.Series("visit_p", visit_p),
        *(pl.Series(name, values) for name, values in device_p.items()),
        pl.Series("_tie", tiebreak),
    ).sort("registered_on", "_tie")
    return m.with_columns(
        pl.format("BG{}", pl.int_range(FIRST_MEMBER_NO, FIRST_MEMBER_NO + k)).alias("member_no")
    ).select(
        "pid",
        "member_no",
        "rrn",
        "name",
        "sex",
        "birth_date",
        "registered_on",
        "active_from",
        "active_to",
        "visit_p",
        *device_p,
    )
