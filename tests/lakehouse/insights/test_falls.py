"""The fall-risk insight on hand-built readings: which measurements drive it, their thresholds
and sources, and when it stays quiet."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from lakehouse import norms
from lakehouse.insights import falls

TODAY = date(2026, 6, 1)
UNITS = {
    "tug_s": ("mobility", "s"),
    "speed_m_s": ("gait", "m/s"),
    "tandem_stance_s": ("mobility", "s"),
    "chair_stand_30s_n": ("mobility", "stands"),
    "sts_time_s": ("emg", "s"),
    "grip_right_kg": ("checkup", "kg"),
    "balance_score": ("balance", "points"),
}


def _judged(rows: list[tuple[str, float, date]], age: int = 78, sex: str = "F") -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "measure": [m for m, _, _ in rows],
            "device": [UNITS[m][0] for m, _, _ in rows],
            "value": [float(v) for _, v, _ in rows],
            "unit": [UNITS[m][1] for m, _, _ in rows],
            "measured_at": [datetime(d.year, d.month, d.day, 1, tzinfo=UTC) for _, _, d in rows],
            "measured_on": [d for _, _, d in rows],
        },
        schema={
            "measure": pl.Utf8,
            "device": pl.Utf8,
            "value": pl.Float64,
            "unit": pl.Utf8,
            "measured_at": pl.Datetime("us", "UTC"),
            "measured_on": pl.Date,
        },
    )
    return norms.judge(frame, age, sex)


def test_slow_tug_and_gait_drive_the_insight_with_their_thresholds_and_sources() -> None:
    risk = falls.assess(
        _judged(
            [
                ("tug_s", 13.5, date(2026, 5, 2)),
                ("speed_m_s", 0.82, date(2026, 5, 2)),
                ("tandem_stance_s", 10, date(2026, 5, 2)),  # held the full 10 s
                ("chair_stand_30s_n", 12, date(2026, 5, 2)),  # 75-79 women: below 10 is low
                ("grip_right_kg", 12, date(2026, 5, 2)),  # weak grip is not a fall measure
            ]
        ),
        TODAY,
    )
    assert risk.raised and risk.advice == "talk_to_staff_or_doctor"
    assert [d.measure for d in risk.drivers] == ["tug_s", "speed_m_s"]
    tug, speed = risk.drivers
    assert (tug.value, tug.band, tug.ref_high, tug.source) == (
        13.5,
        "fall_risk",
        12.0,
        "steadi_tug",
    )
    assert (speed.band, speed.ref_low, speed.source) == ("low_gait_speed", 1.0, "awgs2019")
    assert risk.checked == ("tug_s", "speed_m_s", "tandem_stance_s", "chair_stand_30s_n")


def test_the_latest_reading_decides() -> None:
    """A slow TUG last winter, a good one since: no driver; and the other way round."""
    better = [("tug_s", 14.0, date(2026, 1, 5)), ("tug_s", 10.2, date(2026, 4, 5))]
    assert not falls.assess(_judged(better), TODAY).raised
    worse = [("tug_s", 10.2, date(2026, 1, 5)), ("tug_s", 14.0, date(2026, 4, 5))]
    assert [d.value for d in falls.assess(_judged(worse), TODAY).drivers] == [14.0]


def test_a_short_tandem_stance_and_a_slow_chair_stand_drive_it() -> None:
    risk = falls.assess(
        _judged(
            [("tandem_stance_s", 4.5, date(2026, 5, 20)), ("sts_time_s", 15.2, date(2026, 5, 20))]
        ),
        TODAY,
    )
    assert [(d.measure, d.band) for d in risk.drivers] == [
        ("tandem_stance_s", "fall_risk"),
        ("sts_time_s", "slow_chair_stand"),
    ]
    assert [d.source for d in risk.drivers] == ["steadi_balance", "awgs2019"]


def test_quiet_when_every_measure_is_within_its_band_or_old_or_unnormed() -> None:
    fine = [
        ("tug_s", 9.0, date(2026, 5, 2)),
        ("speed_m_s", 1.15, date(2026, 5, 2)),
        ("chair_stand_30s_n", 14, date(2026, 5, 2)),
        ("speed_m_s", 0.6, date(2025, 1, 10)),  # more than a year old
        ("balance_score", 20, date(2026, 5, 2)),  # a device score with no published norm
    ]
    risk = falls.assess(_judged(fine), TODAY)
    assert not risk.raised and risk.advice == "keep_measuring"
    assert risk.checked == ("tug_s", "speed_m_s", "chair_stand_30s_n")


def test_no_readings_no_insight() -> None:
    risk = falls.assess(_judged([]), TODAY)
    assert risk.drivers == () and risk.checked == ()


def test_a_chair_stand_past_the_norm_table_never_drives_it() -> None:
    """STEADI's chair-stand table ends at 94: at 96 a low count has no band, so no driver."""
    risk = falls.assess(_judged([("chair_stand_30s_n", 2, date(2026, 5, 2))], age=96), TODAY)
    assert not risk.raised and risk.checked == ("chair_stand_30s_n",)
