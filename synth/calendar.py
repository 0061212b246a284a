"""Korean public holidays 2024–2027, and the days the seniors' demonstration centre is open.

Sources:
  * 관공서의 공휴일에 관한 규정 (Presidential Decree) and 공휴일에 관한 법률 (2021): the fixed
    holidays, the lunar holidays, and the substitute-holiday rules (설날/추석 get a substitute
    only when they meet a Sunday or another holiday; 3·1절, 어린이날, 광복절, 개천절, 한글날 and,
    since 2023, 부처님오신날 and 기독탄신일 also when they meet a Saturday).
  * KASI (한국천문연구원) 월력요항 2024, 2025 and 2026 for the published dates; KASI's calendar data
    for 2027 (lunar 1/1 = 2027-02-07, 4/8 = 2027-05-13, 8/15 = 2027-09-15; note that Korea's 2027
    설날 falls a day after China's because the new moon is just after midnight KST).
  * Election days and temporary holidays as designated: 2024-04-10 National Assembly election,
    2024-10-01 Armed Forces Day, 2025-01-27, 2025-06-03 presidential election, 2026-06-03 local
    elections.
  * 제헌절 (July 17) is a public holiday again from 2026 (공휴일법 amendment passed 2026-01-29).
    Its 2027 substitute day (July 17 is a Saturday) is ASSUMED from the rule for the other national
    days; no 2027 월력요항 had been published when this table was written.
  * Gwangju's local public holiday, 5·18 민주화운동 기념일 (May 18, by city ordinance since 2023 and
    listed in the 월력요항). It binds the city's own facilities, among them the senior health town;
    local holidays get no substitute day.

근로자의 날 / 노동절 (May 1) is a paid day off under labour law, not a holiday of public offices, so
the city-run centre stays open.
"""

from __future__ import annotations

from datetime import date
from typing import Final

FIRST_YEAR: Final = 2024
LAST_YEAR: Final = 2027

_NATIONAL: Final[dict[str, str]] = {
    # 2024
    "2024-01-01": "신정",
    "2024-02-09": "설날 연휴",
    "2024-02-10": "설날",
    "2024-02-11": "설날 연휴",
    "2024-02-12": "대체공휴일(설날)",
    "2024-03-01": "삼일절",
    "2024-04-10": "제22대 국회의원선거",
    "2024-05-05": "어린이날",
    "2024-05-06": "대체공휴일(어린이날)",
    "2024-05-15": "부처님오신날",
    "2024-06-06": "현충일",
    "2024-08-15": "광복절",
    "2024-09-16": "추석 연휴",
    "2024-09-17": "추석",
    "2024-09-18": "추석 연휴",
    "2024-10-01": "임시공휴일(국군의 날)",
    "2024-10-03": "개천절",
    "2024-10-09": "한글날",
    "2024-12-25": "기독탄신일",
    # 2025
    "2025-01-01": "신정",
    "2025-01-27": "임시공휴일",
    "2025-01-28": "설날 연휴",
    "2025-01-29": "설날",
    "2025-01-30": "설날 연휴",
    "2025-03-01": "삼일절",
    "2025-03-03": "대체공휴일(삼일절)",
    "2025-05-05": "어린이날, 부처님오신날",
    "2025-05-06": "대체공휴일(부처님오신날)",
    "2025-06-03": "제21대 대통령선거",
    "2025-06-06": "현충일",
    "2025-08-15": "광복절",
    "2025-10-03": "개천절",
    "2025-10-05": "추석 연휴",
    "2025-10-06": "추석",
    "2025-10-07": "추석 연휴",
    "2025-10-08": "대체공휴일(추석)",
    "2025-10-09": "한글날",
    "2025-12-25": "기독탄신일",
    # 2026
    "2026-01-01": "신정",
    "2026-02-16": "설날 연휴",
    "2026-02-17": "설날",
    "2026-02-18": "설날 연휴",
    "2026-03-01": "삼일절",
    "2026-03-02": "대체공휴일(삼일절)",
    "2026-05-05": "어린이날",
    "2026-05-24": "부처님오신날",
    "2026-05-25": "대체공휴일(부처님오신날)",
    "2026-06-03": "제9회 전국동시지방선거",
    "2026-06-06": "현충일",
    "2026-07-17": "제헌절",
    "2026-08-15": "광복절",
    "2026-08-17": "대체공휴일(광복절)",
    "2026-09-24": "추석 연휴",
    "2026-09-25": "추석",
    "2026-09-26": "추석 연휴",
    "2026-10-03": "개천절",
    "2026-10-05": "대체공휴일(개천절)",
    "2026-10-09": "한글날",
    "2026-12-25": "기독탄신일",
    # 2027
    "2027-01-01": "신정",
    "2027-02-06": "설날 연휴",
    "2027-02-07": "설날",
    "2027-02-08": "설날 연휴",
    "2027-02-09": "대체공휴일(설날)",
    "2027-03-01": "삼일절",
    "2027-05-05": "어린이날",
    "2027-05-13": "부처님오신날",
    "2027-06-06": "현충일",
    "2027-07-17": "제헌절",
    "2027-07-19": "대체공휴일(제헌절, assumed)",
    "2027-08-15": "광복절",
    "2027-08-16": "대체공휴일(광복절)",
    "2027-09-14": "추석 연휴",
    "2027-09-15": "추석",
    "2027-09-16": "추석 연휴",
    "2027-10-03": "개천절",
    "2027-10-04": "대체공휴일(개천절)",
    "2027-10-09": "한글날",
    "2027-10-11": "대체공휴일(한글날)",
    "2027-12-25": "기독탄신일",
    "2027-12-27": "대체공휴일(기독탄신일)",
}

PUBLIC_HOLIDAYS: Final[dict[date, str]] = {date.fromisoformat(k): v for k, v in _NATIONAL.items()}
"""National public holidays (관공서의 공휴일), by date."""

GWANGJU_HOLIDAYS: Final[dict[date, str]] = {
    date(year, 5, 18): "5·18 민주화운동 기념일(광주 지방공휴일)"
    for year in range(FIRST_YEAR, LAST_YEAR + 1)
}
"""Gwangju's local public holidays, by date."""


def _check(day: date) -> None:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(
            f"{day}: the holiday calendar covers {FIRST_YEAR}–{LAST_YEAR} only; "
            "extend synth/calendar.py from the KASI 월력요항 before simulating other years"
        )


def holiday_name(day: date) -> str | None:
    """The holiday's Korean name if ``day`` is a national or Gwangju public holiday, else None.

    Raises:
        ValueError: ``day`` lies outside the years this table covers; guessing would silently put
            visits on days the centre is closed.
    """
    _check(day)
    return PUBLIC_HOLIDAYS.get(day) or GWANGJU_HOLIDAYS.get(day)


def centre_open(day: date) -> bool:
    """Whether the Bitgoeul senior health town's centre is open: closed Sundays and holidays."""
    return day.weekday() != 6 and holiday_name(day) is None
