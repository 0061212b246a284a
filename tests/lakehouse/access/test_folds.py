"""The access layer's event folds (``lakehouse.access.folds``) on frames built to show one rule
each, with no lakehouse: grants created, redeemed and revoked (at equal times in that order),
remote-reading requests through their states, and findings with their latest decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from lakehouse.access import folds
from lakehouse.catalog import table
from tests.lakehouse.test_triage import event, finding

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = "C" + "a" * 32
CLINIC, HOSPITAL, OTHER = "11111111", "22222222", "33333333"


def event_row(name: str, of: str, event: str, minutes: int, **fields: Any) -> dict[str, Any]:
    """An event of ledger ``name`` (its other columns null) about grant or request ``of``,
    ``minutes`` after ``NOW``."""
    ledger_id = "grant_id" if name == "ops.grants" else "request_id"
    at = NOW + timedelta(minutes=minutes)
    common = {"event_id": f"{of}-{event}", ledger_id: of, "event": event, "at": at}
    return dict.fromkeys(table(name).polars_schema()) | common | fields


def grant_event(grant: str, event: str, minutes: int, **fields: Any) -> dict[str, Any]:
    mine = {"kind": "share", "subject_key": ALICE, "actor": "alice"}
    return event_row("ops.grants", grant, event, minutes, **(mine | fields))


def grants(*rows: dict[str, Any]) -> list[folds.Grant]:
    return folds.grants(pl.DataFrame(list(rows), schema=table("ops.grants").polars_schema()))


def test_a_share_code_is_created_then_redeemed_then_revoked_even_when_written_at_one_time() -> None:
    expires = NOW + timedelta(hours=1)
    (grant,) = grants(
        # Listed out of order, all at the same instant: the fold orders by event, not by row.
        grant_event("g1", "revoked", 0),
        grant_event("g1", "redeemed", 0, grantee="dr.kim", institution=CLINIC),
        grant_event("g1", "created", 0, expires_at=expires),
    )
    assert (grant.grant_id, grant.grantee, grant.institution) == ("g1", "dr.kim", CLINIC)
    assert grant.revoked and not grant.active(NOW)


def test_a_grant_is_active_until_it_expires_and_events_of_unknown_grants_are_ignored() -> None:
    expires = NOW + timedelta(minutes=30)
    found = grants(
        grant_event("g1", "created", 0, kind="proxy", grantee="bob", expires_at=expires),
        grant_event("g2", "created", 5, kind="emergency", grantee="dr.lee", reason="unconscious"),
        grant_event("ghost", "revoked", 1),
    )
    assert [g.grant_id for g in found] == ["g1", "g2"]
    proxy, emergency = found
    assert proxy.active(NOW + timedelta(minutes=29)) and not proxy.active(expires)
    assert emergency.active(NOW + timedelta(days=365)) and emergency.reason == "unconscious"
    assert grants() == []


def reading_event(request: str, event: str, minutes: int, **fields: Any) -> dict[str, Any]:
    mine = {
        "study_instance_uid": f"1.2.{request}",
        "patient_key": ALICE,
        "from_institution": CLINIC,
        "to_institution": HOSPITAL,
        "actor": "dr.kim" if event != "replied" else "dr.park",
    }
    return event_row("ops.reading_requests", request, event, minutes, **(mine | fields))


def requests(*rows: dict[str, Any]) -> pl.DataFrame:
    schema = table("ops.reading_requests").polars_schema()
    return folds.requests(pl.DataFrame(list(rows), schema=schema))


def test_a_request_is_requested_then_replied_or_cancelled_newest_first() -> None:
    found = requests(
        reading_event("1", "requested", 0, text="nodule?"),
        reading_event("1", "replied", 90, text="benign granuloma", decision="rejected"),
        reading_event("2", "requested", 10, text="fracture?"),
        reading_event("2", "cancelled", 20),
        reading_event("3", "requested", 30, text="effusion?"),
    )
    assert found.schema == pl.Schema(folds.READING_VIEW)
    assert found.select("request_id", "status", "question", "report", "decision").rows() == [
        ("3", "requested", "effusion?", None, None),
        ("2", "cancelled", "fracture?", None, None),
        ("1", "replied", "nodule?", "benign granuloma", "rejected"),
    ]
    replied = found.row(2, named=True)
    assert (replied["requested_by"], replied["answered_by"]) == ("dr.kim", "dr.park")
    assert replied["answered_at"] == NOW + timedelta(minutes=90)
    assert requests().is_empty() and requests().schema == pl.Schema(folds.READING_VIEW)


def test_a_study_stays_open_to_the_hospital_until_the_reply_is_older_than_the_window() -> None:
    found = requests(
        reading_event("1", "requested", 0),
        reading_event("1", "replied", 60),
        reading_event("2", "requested", 0),
        reading_event("3", "requested", 0),
        reading_event("3", "cancelled", 5),
    )
    assert folds.open_studies(found, NOW + timedelta(minutes=60)) == {"1.2.1", "1.2.2"}
    assert folds.open_studies(found, NOW + timedelta(minutes=61)) == {"1.2.2"}


def test_the_worklist_shows_a_studys_newest_request() -> None:
    found = requests(
        reading_event("old", "requested", 0, study_instance_uid="1.2.9"),
        reading_event("old", "cancelled", 1),
        reading_event("new", "requested", 2, study_instance_uid="1.2.9", from_institution=OTHER),
    )
    state = folds.reading_state(found)
    assert state.rows() == [("1.2.9", "requested", OTHER)]


def test_each_institution_sees_the_other_side_of_a_request_by_name() -> None:
    found = requests(
        reading_event("1", "requested", 0),
        reading_event("2", "requested", 1, from_institution=OTHER, to_institution=CLINIC),
    )
    names = {HOSPITAL: "전남대학교병원"}
    seen = folds.directions(found, CLINIC, names).sort("request_id")
    assert seen.select("direction", "counterpart").rows() == [
        ("sent", "전남대학교병원"),
        ("received", None),
    ]
    hospital = folds.directions(found.filter(pl.col("request_id") == "1"), HOSPITAL, {})
    assert hospital["direction"].to_list() == ["received"]


def test_findings_carry_their_latest_decision_and_the_undecided_are_unverified() -> None:
    a, b = finding("1.1", "chest", 0.9, priority=1), finding("1.1", "mammo", 0.2, priority=2)
    events = pl.DataFrame(
        [
            event("1.1", a["tracking_uid"], "kim", "review", 1),
            event("1.1", a["tracking_uid"], "kim", "accepted", 2),
            event("1.1", a["tracking_uid"], "lee", "amended", 3),
            event("1.1", b["tracking_uid"], "lee", "review", 4),
        ],
        schema=table("ops.triage_events").polars_schema(),
    )
    shown = folds.verified(
        pl.DataFrame([b, a], schema=table("ai.findings").polars_schema()), events
    )
    assert shown.select("service", "verification", "decided_by").rows() == [
        ("chest", "amended", "lee"),
        ("mammo", "unverified", None),
    ]
