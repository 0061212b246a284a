"""Korean public holidays of any year, and the days the seniors' demonstration centre is open.

Sources:
  * National public holidays (관공서의 공휴일) come from the maintained ``holidays`` package
    (``holidays.KR``, category ``public``), which follows 관공서의 공휴일에 관한 규정, 공휴일에 관한
    법률 with its amendments (substitute holidays, 제헌절 again from 2026, 노동절 from 2026),
    the lunar dates, election days and the temporary holidays the government designated; its
    module docstring lists the statutes and notices it was checked against. Future years' lunar
    dates and substitute days are marked "(추정)" (estimated) by the package.
    ``tests/synth/test_calendar.py`` checks it against KASI's 월력요항 for 2024–2027, the table
    this module used to carry, and states where the two differ.
  * Gwangju's local public holiday, 5·18 민주화운동 기념일 (May 18), by the city's ordinance
    (광주광역시 5·18민주화운동 기념일 지방공휴일 지정 조례, in force from 2023 and listed in the
    월력요항). It binds the city's own facilities, among them the senior health town; local
    holidays get no substitute day. The package does not know local holidays.

Until 2025, 근로자의 날 (May 1) was a paid day off under labour law, not a holiday of public
offices, so the city-run centre stayed open; from 2026 the amended 공휴일법 makes 노동절 a public
holiday and the package lists it.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import holidays

# Gwangju's 5·18 local holiday exists from this year (the ordinance's first year in force).
GWANGJU_518_FROM: Final = 2023
GWANGJU_518: Final = "5·18 민주화운동 기념일(광주 지방공휴일)"

# Populated year by year on first lookup (the package expands lazily), in Korean.
_NATIONAL: Final = holidays.country_holidays("KR", categories="public", language="ko")


def national_holiday(day: date) -> str | None:
    """The Korean name of the national public holiday on ``day`` (joined by "; " when two fall
    on one day), or None."""
    name = _NATIONAL.get(day)
    return str(name) if name else None


def gwangju_holiday(day: date) -> str | None:
    """The name of Gwangju's own local public holiday on ``day``, or None."""
    if day.month == 5 and day.day == 18 and day.year >= GWANGJU_518_FROM:
        return GWANGJU_518
    return None


def holiday_name(day: date) -> str | None:
    """The holiday's Korean name if ``day`` is a national or Gwangju public holiday, else None."""
    return national_holiday(day) or gwangju_holiday(day)


def centre_open(day: date) -> bool:
    """Whether the Bitgoeul senior health town's centre is open: closed Sundays and holidays."""
    return day.weekday() != 6 and holiday_name(day) is None
