"""The synthetic city's calendar: Korean public holidays from the ``holidays`` package, checked
against the dates KASI published, with Gwangju's own 5·18 holiday on top."""

from __future__ import annotations

from datetime import date

import pytest

from synth.calendar import centre_open, gwangju_holiday, holiday_name, national_holiday
from synth.config import CityConfig

# The national public holidays of KASI's 월력요항 2024, 2025 and 2026 and of KASI's calendar data
# for 2027 (the table synth/calendar.py carried until the package replaced it), with the election
# days and temporary holidays then designated (2024-04-10, 2024-10-01, 2025-01-27, 2025-06-03,
# 2026-06-03). 2027-07-19 was the table's own assumption (제헌절's substitute day).
KASI: dict[int, str] = {
    2024: (
        "01-01 02-09 02-10 02-11 02-12 03-01 04-10 05-05 05-06 05-15 06-06 08-15 09-16 09-17 "
        "09-18 10-01 10-03 10-09 12-25"
    ),
    2025: (
        "01-01 01-27 01-28 01-29 01-30 03-01 03-03 05-05 05-06 06-03 06-06 08-15 10-03 10-05 "
        "10-06 10-07 10-08 10-09 12-25"
    ),
    2026: (
        "01-01 02-16 02-17 02-18 03-01 03-02 05-05 05-24 05-25 06-03 06-06 07-17 08-15 08-17 "
        "09-24 09-25 09-26 10-03 10-05 10-09 12-25"
    ),
    2027: (
        "01-01 02-06 02-07 02-08 02-09 03-01 05-05 05-13 06-06 07-17 07-19 08-15 08-16 09-14 "
        "09-15 09-16 10-03 10-04 10-09 10-11 12-25 12-27"
    ),
}
# Where the package differs, and why: the 2026 amendment of 공휴일에 관한 법률 made 노동절 (May 1)
# a public holiday with a substitute day, after the table was written (it still treated May 1 as
# a labour-law day off on which public offices work).
ONLY_IN_PACKAGE = {date(2026, 5, 1), date(2027, 5, 1), date(2027, 5, 3)}


@pytest.mark.parametrize("year", sorted(KASI))
def test_package_matches_the_published_calendar(year):
    published = {date.fromisoformat(f"{year}-{md}") for md in KASI[year].split()}
    package = {
        date.fromordinal(d)
        for d in range(date(year, 1, 1).toordinal(), date(year + 1, 1, 1).toordinal())
        if national_holiday(date.fromordinal(d)) is not None
    }
    assert published - package == set()
    assert package - published == {d for d in ONLY_IN_PACKAGE if d.year == year}


def test_holiday_rules_hold_in_any_year():
    assert "대체" in (holiday_name(date(2025, 10, 8)) or "")  # 추석 met a Sunday
    assert holiday_name(date(2026, 9, 28)) is None  # 추석 met only a Saturday: no substitute
    assert holiday_name(date(2027, 12, 27)) is not None  # Christmas on a Saturday since 2023
    assert holiday_name(date(2026, 7, 17)) == "제헌절"  # a holiday again from 2026
    assert holiday_name(date(2010, 7, 17)) is None  # not one between 2008 and 2025
    assert national_holiday(date(2010, 2, 14)) == "설날"
    assert national_holiday(date(2010, 6, 2)) is not None  # local elections
    assert national_holiday(date(2012, 12, 19)) is not None  # presidential election
    assert national_holiday(date(2031, 10, 3)) is not None  # beyond any hand-kept table


def test_gwangju_keeps_its_own_518_holiday():
    assert gwangju_holiday(date(2025, 5, 18)) is not None
    assert national_holiday(date(2025, 5, 18)) is None  # the package knows no local holidays
    assert gwangju_holiday(date(2015, 5, 18)) is None  # before the 2023 ordinance
    assert not centre_open(date(2028, 5, 18))  # a Thursday: closed for 5·18
    assert not centre_open(date(2025, 1, 5))  # Sunday
    assert not centre_open(date(2025, 1, 28))  # 설날 연휴
    assert centre_open(date(2025, 5, 1))  # labour day before 2026: public offices worked
    assert not centre_open(date(2026, 5, 1))  # 노동절, a public holiday from 2026
    assert centre_open(date(2025, 1, 4))  # Saturday


def test_the_city_window_is_no_longer_bounded_by_a_table():
    cfg = CityConfig(citizens=100, start=date(2030, 1, 1), days=30, seed=1)
    assert cfg.end == date(2030, 1, 31)
    history = CityConfig(
        citizens=100, start=date(2025, 1, 1), days=30, seed=1, history_from=date(2010, 1, 1)
    )
    assert history.origin == date(2010, 1, 1)
    assert history.history_months()[0] == (2010, 1)
    assert history.history_months()[-1] == (2024, 12)
    with pytest.raises(ValueError, match="before --start"):
        CityConfig(
            citizens=100, start=date(2025, 1, 1), days=30, seed=1, history_from=date(2025, 1, 1)
        )
