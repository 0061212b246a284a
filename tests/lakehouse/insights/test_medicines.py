"""What "taking it now" means, on hand-built prescriptions and dispensings: a dispensing
supersedes the prescription it filled, a period covers its first and last day and no more, a
weekly drug's doses cover a week each, and a refill from the same clinic is listed once."""

from __future__ import annotations

from datetime import date

import polars as pl

from lakehouse.insights import medicines
from tests.lakehouse.insights.build import dispensing, frames, prescription

ALENDRONATE = "104203ATB"


def test_a_dispensing_supersedes_the_prescription_it_filled() -> None:
    p, d = frames(
        [prescription("s1", "11111111", "001", date(2025, 3, 1))],
        [dispensing("s2", "99999999", "11111111", "001", date(2025, 3, 2))],
    )
    (row,) = medicines.periods(p, d).to_dicts()
    assert row["source"] == "dispensing" and row["start"] == date(2025, 3, 2)
    assert row["prescriber"] == "11111111" and row["pharmacy"] == "99999999"
    assert row["issued_on"] == date(2025, 3, 1)
    assert row["prescription_ref"] == "silver.prescriptions:s1:d1:1"
    assert row["source_ref"] == "silver.dispensings:s2:d1:1"


def test_an_unfilled_prescription_and_an_unlinked_dispensing_each_stand() -> None:
    p, d = frames(
        [prescription("s1", "11111111", "001", date(2025, 3, 1))],
        [dispensing("s2", "99999999", "22222222", "007", date(2025, 3, 2))],
    )
    rows = medicines.periods(p, d)
    assert rows["source"].to_list() == ["prescription", "dispensing"]
    assert rows["prescription_ref"].to_list() == [None, None]
    # Another prescriber or another ingredient on the same issue number is not the link.
    p, d = frames(
        [prescription("s1", "11111111", "001", date(2025, 3, 1))],
        [dispensing("s2", "9", "11111111", "001", date(2025, 3, 2), code="111501ATB")],
    )
    assert medicines.periods(p, d).height == 2


def test_a_period_covers_its_first_and_last_day_and_not_the_next() -> None:
    p, d = frames([prescription("s1", "11111111", "001", date(2025, 3, 1), days=30)], [])
    (row,) = medicines.periods(p, d).to_dicts()
    assert row["until"] == date(2025, 3, 30)
    for day, taking in (
        (date(2025, 2, 28), False),
        (date(2025, 3, 1), True),
        (date(2025, 3, 30), True),
        (date(2025, 3, 31), False),
    ):
        assert (medicines.current(p, d, day).height == 1) is taking, day


def test_a_weekly_drugs_doses_cover_a_week_each() -> None:
    p, d = frames(
        [prescription("s1", "11111111", "001", date(2025, 3, 1), code=ALENDRONATE, days=4)], []
    )
    (row,) = medicines.periods(p, d).to_dicts()
    assert row["until"] == date(2025, 3, 28)
    assert medicines.current(p, d, date(2025, 3, 20)).height == 1


def test_a_refill_from_the_same_clinic_is_listed_once_two_clinics_twice() -> None:
    p, d = frames(
        [
            prescription("s1", "11111111", "001", date(2025, 3, 1)),
            prescription("s2", "11111111", "002", date(2025, 3, 25)),
            prescription("s3", "22222222", "003", date(2025, 3, 20)),
        ],
        [],
    )
    now = medicines.current(p, d, date(2025, 3, 28))
    assert sorted(now["prescriber"].to_list()) == ["11111111", "22222222"]
    mine = now.filter(pl.col("prescriber") == "11111111").row(0, named=True)
    assert mine["start"] == date(2025, 3, 25)  # the latest supply


def test_nothing_prescribed_means_nothing_current() -> None:
    p, d = frames([], [])
    assert medicines.current(p, d, date(2025, 3, 1)).is_empty()
