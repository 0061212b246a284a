"""Screening reminders on hand-built people: ages and sexes at each programme's edges, the
even/odd birth-year turn, the liver programme only with a risk on record (named), the lung
programme as a question, and the half-yearly period."""

from __future__ import annotations

from datetime import date

from lakehouse.insights import rules, screening
from lakehouse.insights.insight import Insight
from tests.lakehouse.insights.build import events

TODAY = date(2026, 12, 6)
NONE = events()


def programmes(sex: str, birth_year: int, rows=NONE, today: date = TODAY) -> dict[str, Insight]:
    return {i.topic: i for i in screening.reminders(sex, birth_year, rows, today)}


def test_under_twenty_nothing_at_twenty_the_general_check_up() -> None:
    assert programmes("M", TODAY.year - 18) == {}  # 18 in this year, their turn
    assert programmes("M", TODAY.year - 19)["general"].start.year == TODAY.year + 1  # 20 then
    assert set(programmes("M", TODAY.year - 20)) == {"general"}
    assert set(programmes("F", TODAY.year - 20)) == {"general", "cervical"}


def test_two_yearly_turns_follow_the_birth_years_parity() -> None:
    even_born, odd_born = 1980, 1981
    due = programmes("M", even_born)["stomach"]
    assert (due.start, due.end) == (date(2026, 1, 1), date(2026, 12, 31))
    later = programmes("M", odd_born)["stomach"]
    assert later.start == date(2027, 1, 1)
    assert later.advice == "book_screening" and later.source_en and later.url


def test_women_only_programmes_and_their_ages() -> None:
    assert "breast" not in programmes("M", 1970)
    assert "breast" in programmes("F", 1970)
    assert "breast" not in programmes("F", TODAY.year - 38)  # 38 in this year, their turn
    assert "cervical" not in programmes("M", 1990)


def test_colorectal_is_yearly_from_fifty() -> None:
    assert "colorectal" not in programmes("M", TODAY.year - 49)
    yearly = programmes("M", TODAY.year - 50)["colorectal"]
    assert yearly.start == date(TODAY.year, 1, 1)


def test_liver_only_with_a_risk_on_record_named_as_its_record() -> None:
    assert "liver" not in programmes("M", 1970)
    risk = events(("diagnosis", "B18.1", date(2024, 5, 2), "11111111"))
    liver = programmes("M", 1970, risk)["liver"]
    ((record),) = liver.records
    assert (record.kind, record.code, record.day) == ("diagnosis", "B18.1", date(2024, 5, 2))
    assert (liver.start, liver.end) == (date(2026, 7, 1), date(2026, 12, 31))
    first_half = programmes("M", 1970, risk, date(2026, 3, 1))["liver"]
    assert (first_half.start, first_half.end) == (date(2026, 1, 1), date(2026, 6, 30))
    young = programmes("M", TODAY.year - 39, risk)
    assert "liver" not in young


def test_lung_is_a_question_between_54_and_74() -> None:
    lung = next(p for p in rules.programmes() if p.id == "lung")
    assert (lung.min_age, lung.max_age) == (54, 74)
    # Two-yearly, and the age counts in the year of the citizen's turn.
    assert programmes("M", 1972)["lung"].severity == "ask"  # 54 in 2026, their turn
    assert "lung" not in programmes("M", 1974)  # 52 in 2026, their turn
    assert "lung" in programmes("F", 1952)  # 74 in 2026
    assert "lung" not in programmes("M", 1951)  # 76 in 2027, their next turn


def test_every_programme_cites_its_source() -> None:
    for p in rules.programmes():
        assert p.source_ko and p.source_en and p.url.startswith("https://"), p.id
        assert p.interval_months in (6, 12, 24), p.id
