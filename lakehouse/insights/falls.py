"""The fall-risk insight: which of a senior's recent centre measurements cross a published
fall-risk cut-off, with the threshold and its source for each.

The measures are those the published fall-risk and physical-performance tools use: the Timed Up
and Go, the 30-second chair stand and the tandem stance of CDC's STEADI, and gait speed and the
five-times chair stand of AWGS 2019. Their cut-offs are not here but in the reference ranges
(``lakehouse/reference/centre_norms.csv``, judged by ``lakehouse.norms.judge``): a measurement
drives the insight when its latest value lies outside its reference band. The insight never
says the person will fall or has a condition; it names what was measured and advises talking to
the centre's staff or a doctor. Language-free: codes, values and dates, which the apps word.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

import polars as pl

# The measures the insight reads (silver.centre_measurements.measure), in the order shown.
FALL_MEASURES: Final = (
    "tug_s",
    "speed_m_s",
    "tandem_stance_s",
    "chair_stand_30s_n",
    "sts_time_s",
)
RECENT_DAYS: Final = 365  # only a reading from the last year speaks for today
Advice = Literal["talk_to_staff_or_doctor", "keep_measuring"]


@dataclass(frozen=True)
class Driver:
    """One measurement that crossed its cut-off.

    Attributes:
        measure: The measure's code.
        device: The device that measured it.
        value: The latest value, in ``unit``.
        unit: Its unit.
        measured_on: When it was taken.
        band: The band it fell in (``fall_risk``, ``low_gait_speed``, ...).
        ref_low: The reference band's lower bound (null: none); below it is outside.
        ref_high: The reference band's upper bound, exclusive (null: none).
        source: The source id of the threshold (``centre_norm_sources.csv``).
    """

    measure: str
    device: str
    value: float
    unit: str
    measured_on: date
    band: str
    ref_low: float | None
    ref_high: float | None
    source: str


@dataclass(frozen=True)
class FallRisk:
    """The insight: the measurements that drove it (none: nothing crossed a cut-off), the fall
    measures that had a recent reading at all, and what to do."""

    drivers: tuple[Driver, ...]
    checked: tuple[str, ...]
    advice: Advice

    @property
    def raised(self) -> bool:
        """At least one recent measurement crossed its published cut-off."""
        return bool(self.drivers)


def assess(judged: pl.DataFrame, today: date) -> FallRisk:
    """The fall-risk insight from one person's judged measurements.

    Args:
        judged: ``silver.centre_measurements`` rows of one person as ``lakehouse.norms.judge``
            returns them (``measure``, ``device``, ``value``, ``unit``, ``measured_at``,
            ``measured_on``, ``band``, ``in_reference``, ``ref_low``, ``ref_high``,
            ``source``).
        today: The day the insight is for; readings older than ``RECENT_DAYS`` do not count.

    Returns:
        The latest reading of each fall measure within the year that lies outside its
        reference band, as a driver; a measure without a published band for the person (no
        norm for their age) never drives it.
    """
    recent = judged.filter(
        pl.col("measure").is_in(FALL_MEASURES)
        & (pl.col("measured_on") > today - timedelta(days=RECENT_DAYS))
        & (pl.col("measured_on") <= today)
    )
    latest = recent.sort("measured_at").group_by("measure").last()
    order = {m: i for i, m in enumerate(FALL_MEASURES)}
    drivers = [
        Driver(
            measure=r["measure"],
            device=r["device"],
            value=r["value"],
            unit=r["unit"],
            measured_on=r["measured_on"],
            band=r["band"],
            ref_low=r["ref_low"],
            ref_high=r["ref_high"],
            source=r["source"],
        )
        for r in latest.filter(pl.col("in_reference").not_()).iter_rows(named=True)
    ]
    drivers.sort(key=lambda d: order[d.measure])
    checked = tuple(m for m in FALL_MEASURES if m in set(latest["measure"].to_list()))
    return FallRisk(
        tuple(drivers), checked, "talk_to_staff_or_doctor" if drivers else "keep_measuring"
    )
