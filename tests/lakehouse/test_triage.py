"""The worklist's ordering and the decisions' folding (``lakehouse.triage``), on frames built to
show one rule each: urgency, the wait term and its cap, failed studies, the newest model
version, and statuses from append-only events (two clinicians disagreeing keep both say)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from lakehouse import triage
from lakehouse.catalog import table

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
P = triage.policy()


def finding(study: str, service: str, score: float | None, **extra: Any) -> dict[str, Any]:
    row = dict.fromkeys(table("ai.findings").polars_schema())
    row.update(
        study_instance_uid=study,
        service=service,
        finding_code=f"{service}_finding",
        status="scored",
        score=score,
        threshold=0.5,
        positive=None if score is None else score >= 0.5,
        tracking_uid=f"1.2.{abs(hash((study, service))) % 10**8}",
        algorithm_version="1.0.0",
        patient_key="C" + "0" * 32,
        institution="11111111",
        verification="unverified",
        priority=3,
        synthetic_reference=True,
        scored_at=NOW - timedelta(hours=1),
        instances_scored=1,
        algorithm_name="x",
        device_uid="1.2.3",
        tracking_id="t",
    )
    row.update(extra)
    return row


def study(uid: str, acquired: datetime) -> dict[str, Any]:
    row = dict.fromkeys(table("silver.imaging_studies").polars_schema())
    row.update(
        study_instance_uid=uid,
        patient_key="C" + "0" * 32,
        patient_sex="F",
        patient_age_months=70 * 12,
        modalities="DX",
        series_count=1,
        instance_count=1,
        patient_conflict=False,
        study_datetime=acquired,
        first_received_at=acquired,
        last_received_at=acquired,
    )
    return row


def event(study: str, tracking: str, account: str, decision: str, minutes: int) -> dict[str, Any]:
    row = dict.fromkeys(table("ops.triage_events").polars_schema())
    row.update(
        event_id=f"{account}-{minutes}",
        at=NOW - timedelta(minutes=60 - minutes),
        account=account,
        institution="11111111",
        study_instance_uid=study,
        service="chest",
        finding_code="chest_finding",
        algorithm_version="1.0.0",
        tracking_uid=tracking,
        patient_key="C" + "0" * 32,
        decision=decision,
        reason_code=None if decision == "review" else P.reasons[decision][0],
    )
    return row


def frames(
    findings: list[dict[str, Any]], studies: list[dict[str, Any]], events: list[dict[str, Any]]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return (
        pl.DataFrame(findings, schema=table("ai.findings").polars_schema()),
        pl.DataFrame(studies, schema=table("silver.imaging_studies").polars_schema()),
        pl.DataFrame(events, schema=table("ops.triage_events").polars_schema()),
    )


def order(findings: list[dict[str, Any]], studies: list[dict[str, Any]], events=()) -> list[str]:
    rows = triage.worklist(*frames(findings, studies, list(events)), NOW)
    return rows["study_instance_uid"].to_list()


def test_urgency_ranks_an_equal_score_of_an_urgent_service_first() -> None:
    fresh = NOW - timedelta(minutes=10)
    assert order(
        [finding("1.1", "dental", 0.9), finding("1.2", "brain", 0.9)],
        [study("1.1", fresh), study("1.2", fresh)],
    ) == ["1.2", "1.1"]


def test_waiting_lifts_a_routine_study_but_its_cap_keeps_it_below_a_fresh_urgent_one() -> None:
    fresh, old = NOW - timedelta(minutes=10), NOW - timedelta(days=400)
    # A routine negative that has waited over a year outranks a fresh routine one (no starving)...
    assert order(
        [finding("1.1", "dental", 0.30), finding("1.2", "dental", 0.45)],
        [study("1.1", old), study("1.2", fresh)],
    ) == ["1.1", "1.2"]
    # ...but never a fresh urgent flag: the wait term is capped.
    assert order(
        [finding("1.1", "dental", 0.30), finding("1.2", "brain", 0.6)],
        [study("1.1", old), study("1.2", fresh)],
    ) == ["1.2", "1.1"]
    rows = triage.worklist(*frames([finding("1.1", "dental", 0.3)], [study("1.1", old)], []), NOW)
    cap = 0.8 * 30 + P.wait_points * P.wait_cap
    assert rows["priority"][0] == pytest.approx(cap, abs=0.1)
    assert rows["overdue"][0]


def test_a_study_that_could_not_be_scored_waits_as_a_middling_one() -> None:
    fresh = NOW - timedelta(minutes=10)
    failed = finding("1.1", "chest", None, status="failed", reason="unreadable_pixels")
    rows = triage.worklist(
        *frames(
            [failed, finding("1.2", "chest", 0.2), finding("1.3", "chest", 0.8)],
            [study("1.1", fresh), study("1.2", fresh), study("1.3", fresh)],
            [],
        ),
        NOW,
    )
    assert rows["study_instance_uid"].to_list() == ["1.3", "1.1", "1.2"]
    assert rows["ai_status"].to_list() == ["scored", "failed", "scored"]


def test_measurements_count_by_their_flag() -> None:
    fresh = NOW - timedelta(minutes=10)
    beyond = finding("1.1", "leg_length", None, value=22.0, unit="mm", positive=True)
    within = finding("1.2", "leg_length", None, value=4.0, unit="mm", positive=False)
    rows = triage.worklist(
        *frames([within, beyond], [study("1.1", fresh), study("1.2", fresh)], []), NOW
    )
    assert rows["study_instance_uid"].to_list() == ["1.1", "1.2"]
    assert rows["score_100"].to_list() == [None, None]


def test_only_the_newest_model_version_of_a_study_is_on_the_worklist() -> None:
    fresh = NOW - timedelta(minutes=10)
    old = finding("1.1", "chest", 0.9, algorithm_version="1.0.0", scored_at=NOW - timedelta(days=9))
    new = finding("1.1", "chest", 0.1, algorithm_version="1.1.0", tracking_uid="1.2.99")
    rows = triage.worklist(*frames([old, new], [study("1.1", fresh)], []), NOW)
    assert rows.height == 1
    assert rows["score_100"][0] == 10
    assert rows["findings"][0] == 1


def test_statuses_follow_the_events_and_decided_studies_go_below_open_ones() -> None:
    fresh = NOW - timedelta(minutes=10)
    a, b, c = (finding(u, "chest", s) for u, s in (("1.1", 0.9), ("1.2", 0.8), ("1.3", 0.1)))
    events = [
        event("1.1", a["tracking_uid"], "kim", "review", 1),
        event("1.1", a["tracking_uid"], "kim", "accepted", 2),
        event("1.2", b["tracking_uid"], "lee", "review", 3),
    ]
    rows = triage.worklist(
        *frames([a, b, c], [study(u, fresh) for u in ("1.1", "1.2", "1.3")], events), NOW
    )
    assert rows.select("study_instance_uid", "status").rows() == [
        ("1.2", "in_review"),
        ("1.3", "new"),
        ("1.1", "accepted"),
    ]
    assert triage.status_counts(rows) == {
        "new": 1,
        "in_review": 1,
        "accepted": 1,
        "rejected": 0,
        "amended": 0,
    }


def test_two_clinicians_deciding_at_once_both_show_and_the_latest_sets_the_status() -> None:
    fresh = NOW - timedelta(minutes=10)
    a = finding("1.1", "chest", 0.9)
    events = [
        event("1.1", a["tracking_uid"], "kim", "accepted", 5),
        event("1.1", a["tracking_uid"], "lee", "rejected", 6),
    ]
    rows = triage.worklist(*frames([a], [study("1.1", fresh)], events), NOW)
    assert rows["status"][0] == "rejected"
    assert rows["decisions"][0] == "kim: accepted, lee: rejected"
    assert rows["conflict"][0]
    folded = triage.verification(frames([a], [], events)[2])
    assert folded.select("decision", "decided_by").rows() == [("rejected", "lee")]


def test_waiting_stops_at_the_first_decision() -> None:
    acquired = NOW - timedelta(hours=30)
    a = finding("1.1", "chest", 0.9)
    decided = event("1.1", a["tracking_uid"], "kim", "accepted", 0)  # an hour ago
    rows = triage.worklist(*frames([a], [study("1.1", acquired)], [decided]), NOW)
    assert rows["waited_hours"][0] == pytest.approx(29.0, abs=0.1)


@pytest.mark.parametrize(
    ("decision", "reason"),
    [("accepted", "artefact"), ("maybe", "artefact"), ("rejected", "'; DROP TABLE x; --")],
)
def test_the_policy_refuses_a_reason_that_does_not_belong(decision: str, reason: str) -> None:
    with pytest.raises(ValueError, match="one of"):
        P.check(decision, reason)


def test_every_ai_service_has_an_urgency_and_a_target() -> None:
    from lakehouse.reference import code_set

    services = code_set("ai_services")
    assert set(P.urgency) == services
    assert set(P.target_hours) == services
    assert all(h > 0 for h in P.target_hours.values())


@pytest.mark.parametrize("part", ["urgency", "target_hours"])
def test_a_service_without_a_policy_is_never_ranked_by_a_default(part: str) -> None:
    """Not urgency 1.0 and a 168 h target made up for it: the worklist refuses."""
    without = {s: v for s, v in getattr(P, part).items() if s != "chest"}
    lacking = replace(P, urgency=without) if part == "urgency" else replace(P, target_hours=without)
    findings, studies, events = frames([finding("1.1", "chest", 0.9)], [study("1.1", NOW)], [])
    with pytest.raises(
        ValueError, match=r"triage\.toml: no triage policy for the service\(s\) chest"
    ):
        triage.worklist(findings, studies, events, NOW, lacking)


def test_filters_count_acquisition_days_in_korea() -> None:
    # 23:30 UTC on 1 March is 08:30 on 2 March in Gwangju.
    morning = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    rows = triage.worklist(
        *frames(
            [finding("1.1", "chest", 0.9), finding("1.2", "dental", 0.2)],
            [study("1.1", morning), study("1.2", morning - timedelta(days=1))],
            [],
        ),
        NOW,
    )
    march_2 = datetime(2026, 3, 2).date()
    assert triage.narrow(rows, since=march_2, until=march_2)["study_instance_uid"].to_list() == [
        "1.1"
    ]
    assert triage.narrow(rows, services=["dental"])["study_instance_uid"].to_list() == ["1.2"]
    assert triage.narrow(rows, modalities=["MR"]).is_empty()
    assert triage.narrow(rows, statuses=["new"]).height == 2
    assert triage.narrow(rows).height == 2
