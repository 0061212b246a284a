"""Screening reminders from Korea's national screening schedule (``screening.toml``).

Eligibility counts age by year of birth, as the National Health Insurance Service invites
people. Two-yearly programmes are due in the years whose parity matches the birth year's; a
yearly one every year; a six-monthly one every half year. A programme for a risk group is shown
only when the claims show the risk (liver: chronic hepatitis or cirrhosis, named as the record
it came from), or, when claims cannot show it (heavy smoking), as a question
(``severity="ask"``). The claims carry no screening results, so a reminder says when the
citizen's turn is, not that a screening was missed.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from lakehouse.insights import rules
from lakehouse.insights.insight import Insight, Record, event_record


def _due(interval_months: int, birth_year: int, as_of: date) -> tuple[date, date]:
    """The first and last day of the citizen's current or next turn."""
    if interval_months == 6:
        first_half = as_of.month <= 6
        return (
            date(as_of.year, 1 if first_half else 7, 1),
            date(as_of.year, 6, 30) if first_half else date(as_of.year, 12, 31),
        )
    year = as_of.year
    if interval_months == 24 and (year - birth_year) % 2:
        year += 1
    return date(year, 1, 1), date(year, 12, 31)


def reminders(sex: str, birth_year: int, events: pl.DataFrame, as_of: date) -> list[Insight]:
    """The screening programmes the citizen is invited to now or at their next turn.

    Args:
        sex: ``M`` or ``F``.
        birth_year: The year of birth.
        events: The citizen's events (``follow_up.gaps`` describes them); diagnoses show a risk
            group.
        as_of: Today, or the day the records run to.
    """
    diagnoses = events.filter((pl.col("kind") == "diagnosis") & (pl.col("event_date") <= as_of))
    found: list[Insight] = []
    for p in rules.programmes():
        start, end = _due(p.interval_months, birth_year, as_of)
        age = start.year - birth_year
        if (p.sex and p.sex != sex) or age < p.min_age or (p.max_age and age > p.max_age):
            continue
        records: tuple[Record, ...] = ()
        if p.risk == "liver":
            risk = diagnoses.filter(
                pl.any_horizontal([pl.col("code").str.starts_with(k) for k in p.risk_kcd])
            ).sort("event_date", "source_ref", descending=True)
            if risk.is_empty():
                continue
            records = (event_record(risk.row(0, named=True)),)
        found.append(
            Insight(
                rule="screening",
                topic=p.id,
                advice="book_screening",
                records=records,
                start=start,
                end=end,
                source_ko=p.source_ko,
                source_en=p.source_en,
                url=p.url,
                severity="ask" if p.risk == "smoking" else "",
            )
        )
    return found
