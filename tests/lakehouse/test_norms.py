"""The centre's reference ranges: every band cites a listed source, and the lookup picks the
band by age and sex as the published norms say."""

from __future__ import annotations

import polars as pl
import pytest

from lakehouse import norms
from lakehouse.reference import codes


def _readings(*pairs: tuple[str, float]) -> pl.DataFrame:
    return pl.DataFrame(
        {"measure": [m for m, _ in pairs], "value": [v for _, v in pairs]},
        schema={"measure": pl.Utf8, "value": pl.Float64},
    )


def test_every_band_cites_a_listed_source_and_bands_do_not_overlap() -> None:
    bands = norms.norms()
    listed = set(norms.sources()["source"].to_list())
    assert set(bands["source"].to_list()) <= listed
    assert norms.sources()["citation"].str.len_chars().min() > 40  # type: ignore[operator]
    for (code, sex, age), group in bands.group_by("code", "sex", "age_min"):
        ordered = group.sort("low", nulls_last=False)
        assert ordered["reference"].sum() == 1, (code, sex, age)
        lows, highs = ordered["low"].to_list(), ordered["high"].to_list()
        assert lows[0] is None and highs[-1] is None, (code, sex, age)
        assert lows[1:] == highs[:-1], (code, sex, age)  # contiguous, no gap, no overlap


def test_every_judged_measure_has_a_name() -> None:
    """A band's measure is a centre measure the apps can name (the new devices' names here;
    the existing devices' measures are named in the same file after the timeline's rows)."""
    named = set(codes("centre_measures")["code"].to_list())
    new = {"smi_kg_m2", "bmi_kg_m2", "body_fat_pct", "tug_s", "chair_stand_30s_n"}
    assert new | {"tandem_stance_s", "arch_index_left", "arch_index_right"} <= named


@pytest.mark.parametrize(
    ("measure", "value", "age", "sex", "band", "inside"),
    [
        ("grip_right_kg", 27.9, 70, "M", "low_grip", False),  # AWGS 2019: men < 28 kg
        ("grip_right_kg", 27.9, 70, "F", "normal", True),  # women < 18 kg
        ("grip_left_kg", 17.5, 70, "F", "low_grip", False),
        ("speed_m_s", 0.99, 80, "F", "low_gait_speed", False),
        ("speed_m_s", 1.0, 80, "F", "normal", True),  # the cut-off itself is not low
        ("tug_s", 12.0, 75, "M", "fall_risk", False),  # STEADI: 12 s or more
        ("tug_s", 11.9, 75, "M", "normal", True),
        ("chair_stand_30s_n", 11, 72, "M", "below_average", False),  # STEADI 70-74 men < 12
        ("chair_stand_30s_n", 11, 77, "M", "normal", True),  # 75-79 men < 11
        ("chair_stand_30s_n", 9, 82, "F", "normal", True),  # 80-84 women < 9
        ("smi_kg_m2", 5.6, 70, "F", "low_muscle_mass", False),
        ("systolic_mmhg", 135, 70, "M", "prehypertension", False),  # KSH 2018
        ("systolic_mmhg", 160, 70, "M", "hypertension_2", False),
        ("bmi_kg_m2", 23.0, 70, "F", "pre_obese", False),  # KSSO 2022
        ("arch_index_left", 0.27, 70, "F", "low_arch", False),
    ],
)
def test_the_band_follows_the_published_cut_offs(
    measure: str, value: float, age: int, sex: str, band: str, inside: bool
) -> None:
    row = norms.judge(_readings((measure, value)), age, sex).row(0, named=True)
    assert (row["band"], row["in_reference"]) == (band, inside)
    assert row["source"]


def test_no_band_where_no_norm_applies() -> None:
    """No published norm for the device's own balance score, none for the chair stand past 94
    (STEADI's table ends there), none for body fat past 79 (Gallagher's ranges end there)."""
    judged = norms.judge(
        _readings(("balance_score", 60), ("chair_stand_30s_n", 5), ("body_fat_pct", 30)), 96, "F"
    )
    assert judged["band"].to_list() == [None, None, None]
    assert judged["in_reference"].to_list() == [None, None, None]
    assert judged["value"].to_list() == [60, 5, 30]  # the readings themselves are kept


def test_the_reference_band_is_returned_beside_each_reading() -> None:
    judged = norms.judge(_readings(("grip_left_kg", 30), ("tug_s", 9)), 70, "M")
    assert judged.select("ref_low", "ref_high").rows() == [(28.0, None), (None, 12.0)]
    assert norms.bands("chair_stand_30s_n", 70, "F")["high"].to_list() == [10.0, None]
