"""Follow-up gaps on hand-built timelines: a condition with no care past its gap is named with
its last records; care by a visit or by a drug for it closes the gap; the gap's boundary is
exact; a condition never on record gives nothing."""

from __future__ import annotations

from datetime import date, timedelta

from lakehouse.insights import follow_up, rules
from tests.lakehouse.insights.build import events

AS_OF = date(2025, 12, 31)
CLINIC, PHARMACY = "11111111", "99999999"
LOSARTAN, METFORMIN = "181301ATB", "191501ATB"


def gap_days(condition: str) -> int:
    return next(c.gap_days for c in rules.conditions() if c.id == condition)


def test_hypertension_with_no_care_past_the_gap_names_its_last_records() -> None:
    seen = AS_OF - timedelta(days=gap_days("hypertension") + 1)
    rows = events(
        ("diagnosis", "I10", seen - timedelta(days=60), CLINIC),
        ("diagnosis", "I10", seen, CLINIC),
        ("dispensing", LOSARTAN, seen - timedelta(days=30), PHARMACY),
    )
    (found,) = follow_up.gaps(rows, AS_OF)
    assert found.rule == "follow_up" and found.topic == "hypertension"
    assert found.advice == "ask_doctor" and found.source_ko and found.source_en and found.url
    assert (found.start, found.end) == (seen, AS_OF)
    assert [(r.kind, r.day, r.institution) for r in found.records] == [
        ("dispensing", seen - timedelta(days=30), PHARMACY),
        ("diagnosis", seen, CLINIC),
    ]


def test_the_gap_boundary_is_exact() -> None:
    gap = gap_days("diabetes")
    on_time = events(("diagnosis", "E11.9", AS_OF - timedelta(days=gap), CLINIC))
    late = events(("diagnosis", "E11.9", AS_OF - timedelta(days=gap + 1), CLINIC))
    assert follow_up.gaps(on_time, AS_OF) == []
    assert [g.topic for g in follow_up.gaps(late, AS_OF)] == ["diabetes"]


def test_a_recent_prescription_for_the_condition_is_care() -> None:
    long_ago = AS_OF - timedelta(days=400)
    recent = AS_OF - timedelta(days=20)
    treated = events(
        ("diagnosis", "E11.9", long_ago, CLINIC), ("prescription", METFORMIN, recent, CLINIC)
    )
    assert follow_up.gaps(treated, AS_OF) == []
    # A drug for another condition is not care for this one.
    other = events(
        ("diagnosis", "E11.9", long_ago, CLINIC), ("prescription", LOSARTAN, recent, CLINIC)
    )
    assert [g.topic for g in follow_up.gaps(other, AS_OF)] == ["diabetes"]


def test_no_condition_on_record_gives_no_gap() -> None:
    rows = events(
        ("diagnosis", "J06.9", AS_OF - timedelta(days=400), CLINIC),
        ("prescription", LOSARTAN, AS_OF - timedelta(days=400), CLINIC),
    )
    assert follow_up.gaps(rows, AS_OF) == []


def test_records_after_the_day_counted_are_not_read() -> None:
    rows = events(
        ("diagnosis", "I10", AS_OF - timedelta(days=300), CLINIC),
        ("diagnosis", "I10", AS_OF + timedelta(days=3), CLINIC),
    )
    assert [g.topic for g in follow_up.gaps(rows, AS_OF)] == ["hypertension"]
