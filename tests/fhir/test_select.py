"""What a summary holds: problems coded within a year (first seen ever), the latest value of each
summary measure within a year, the newest five studies within two years."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from lakehouse.fhir import select

TODAY = date(2025, 5, 30)


def test_problems_are_those_coded_within_a_year_first_seen_ever() -> None:
    diagnoses = pl.DataFrame(
        {
            "kcd": ["I10", "I10", "J00", "E11.9"],
            "diagnosed_on": [
                date(2012, 1, 3),
                date(2025, 5, 2),
                date(2023, 1, 9),
                date(2025, 6, 1),
            ],
            "spec_id": ["a", "b", "c", "d"],
        }
    )
    found = select.problems(diagnoses, TODAY)
    assert found.to_dicts() == [
        {"kcd": "I10", "first_on": date(2012, 1, 3), "last_on": date(2025, 5, 2), "times": 2}
    ]  # J00 is over a year old; E11.9 is after the day the summary is made
    assert select.problems(diagnoses, TODAY, days=None)["kcd"].to_list() == ["I10", "J00"]


def test_measurements_keep_the_latest_summary_measure_within_a_year() -> None:
    def at(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, 1, tzinfo=UTC)

    days = [date(2025, 5, 1), date(2025, 5, 20), date(2024, 1, 2), date(2025, 5, 20)]
    rows = pl.DataFrame(
        {
            "measure": ["systolic_mmhg", "systolic_mmhg", "speed_m_s", "rms_uv"],
            "context": [None, None, None, "vastus_lateralis L"],
            "value": [150.0, 128.0, 0.9, 80.0],
            "unit": ["mmHg", "mmHg", "m/s", "uV"],
            "measured_at": [at(d) for d in days],
            "measured_on": days,
            "device": ["checkup", "checkup", "gait", "emg"],
        }
    )
    found = select.measurements(rows, TODAY)
    assert found.select("measure", "value").rows() == [("systolic_mmhg", 128.0)]


def test_studies_are_the_newest_five_within_two_years() -> None:
    dates = [date(2025, 5, d) for d in range(1, 8)] + [date(2022, 1, 1)]
    rows = pl.DataFrame(
        {
            "study_instance_uid": [f"2.25.{i}" for i in range(len(dates))],
            "study_date": dates,
            "study_datetime": [None] * len(dates),
        },
        schema_overrides={"study_datetime": pl.Datetime("us", "UTC")},
    )
    found = select.studies(rows, TODAY)
    assert found["study_date"].to_list() == [date(2025, 5, d) for d in (7, 6, 5, 4, 3)]
