"""The access layer's event folds (``lakehouse.access.folds``) on frames built to show one rule
each, with no lakehouse: grants created, redeemed and revoked (at equal times in that order),
remote-reading requests through their states, and findings with their latest decision."""

from __future__ import annotations

import json
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
        grant_event("g1", "accepted", 0, kind="proxy", actor="bob"),
        grant_event("g2", "created", 5, kind="emergency", grantee="dr.lee", reason="unconscious"),
        grant_event("ghost", "revoked", 1),
    )
    assert [g.grant_id for g in found] == ["g1", "g2"]
    proxy, emergency = found
    assert proxy.active(NOW + timedelta(minutes=29)) and not proxy.active(expires)
    assert emergency.active(NOW + timedelta(days=365)) and emergency.reason == "unconscious"
    assert grants() == []


def test_a_carers_grant_allows_nothing_until_the_named_carer_accepts_it() -> None:
    pending, accepted_by_another, accepted = grants(
        grant_event("p1", "created", 0, kind="proxy", grantee="bob"),
        grant_event("p2", "created", 1, kind="proxy", grantee="bob"),
        grant_event("p2", "accepted", 2, kind="proxy", actor="mallory"),
        grant_event("p3", "created", 3, kind="proxy", grantee="bob"),
        grant_event("p3", "accepted", 4, kind="proxy", actor="bob"),
    )
    assert pending.pending and not pending.active(NOW + timedelta(minutes=5))
    assert accepted_by_another.pending and not accepted_by_another.active(NOW)
    assert not accepted.pending and accepted.active(NOW + timedelta(minutes=5))


def test_a_share_keeps_the_kinds_it_covers() -> None:
    some, every = grants(
        grant_event("s1", "created", 0, scope="imaging,medicines"),
        grant_event("s2", "created", 1),
    )
    assert some.scope == ("imaging", "medicines") and every.scope is None


def programme_event(kind: str, day: int, **details: Any) -> dict[str, Any]:
    """One ``silver.programme_events`` row of ALICE's account, ``day`` days after ``NOW``."""
    at = NOW + timedelta(days=day)
    return {
        "event_id": f"{kind}-{day}",
        "event_type": kind,
        "occurred_at": at,
        "app_user_id": "u1",
        "details": json.dumps(details),
        "event_date": at.date(),
    }


def consent(*rows: dict[str, Any]) -> folds.Consent:
    schema = table("silver.programme_events").polars_schema()
    return folds.consent(pl.DataFrame(list(rows), schema=schema))


SIGNUP = programme_event("signup", 0, auth_method="joint_certificate")
REQUIRED = programme_event("consent", 0, consent_type="terms_of_service", required=True)
LINK_CONSENT = programme_event("consent", 0, consent_type=folds.RECORD_LINK, required=False)
LINKED = programme_event("record_link_completed", 0, status="completed", records=40)


def test_national_records_follow_the_record_link_consent_both_ways() -> None:
    assert consent().state == "none" and not consent().national
    assert consent(SIGNUP, REQUIRED).state == "signed_up"
    assert not consent(SIGNUP, REQUIRED).national
    consented = consent(SIGNUP, REQUIRED, LINK_CONSENT)
    assert consented.state == "consented" and not consented.national  # no link yet
    failed = programme_event("record_link_completed", 0, status="failed", error="hira_timeout")
    assert not consent(SIGNUP, LINK_CONSENT, failed).national
    linked = consent(LINKED, LINK_CONSENT, SIGNUP, REQUIRED)  # row order does not matter
    assert linked.state == "linked" and linked.national
    withdrawn = programme_event("consent_withdrawn", 3, consent_type=folds.RECORD_LINK)
    gone = consent(SIGNUP, LINK_CONSENT, LINKED, withdrawn)
    assert gone.state == "withdrawn" and not gone.national
    other = programme_event("consent_withdrawn", 3, consent_type="emergency_sharing")
    assert consent(SIGNUP, LINK_CONSENT, LINKED, other).national  # another consent


def test_a_link_counts_only_under_the_consent_in_force_and_ends_with_the_account() -> None:
    withdrawn = programme_event("consent_withdrawn", 3, consent_type=folds.RECORD_LINK)
    again = programme_event("consent", 5, consent_type=folds.RECORD_LINK)
    assert not consent(SIGNUP, LINK_CONSENT, LINKED, withdrawn, again).national
    relinked = programme_event("record_link_completed", 6, status="completed", records=41)
    assert consent(SIGNUP, LINK_CONSENT, LINKED, withdrawn, again, relinked).national
    deleted = programme_event("account_deleted", 7, reason="user_request")
    assert consent(SIGNUP, LINK_CONSENT, LINKED, deleted).state == "deleted"
    assert not consent(SIGNUP, LINK_CONSENT, LINKED, deleted).national
    login = programme_event("login", 8, auth_method="pin")
    link_before_signup = programme_event("record_link_completed", -1, status="completed")
    assert not consent(link_before_signup, SIGNUP, login).national


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


def test_folding_later_events_on_a_folded_state_is_the_fold_of_them_all() -> None:
    """``gold.citizen_consent`` stores a fold of the older events; the access layer folds the
    newer ones on top (``start``): the same state, with the events that decided it."""
    withdrawn = programme_event("consent_withdrawn", 3, consent_type=folds.RECORD_LINK)
    again = programme_event("consent", 5, consent_type=folds.RECORD_LINK)
    relinked = programme_event("record_link_completed", 6, status="completed", records=41)
    deleted = programme_event("account_deleted", 7, reason="user_request")
    signup = programme_event("signup", 8, auth_method="pin")
    events = [SIGNUP, REQUIRED, LINK_CONSENT, LINKED, withdrawn, again, relinked, deleted, signup]
    schema = table("silver.programme_events").polars_schema()
    for cut in range(len(events) + 1):
        older = consent(*events[:cut])
        newer = pl.DataFrame(events[cut:], schema=schema)
        assert folds.consent(newer, older) == consent(*events), cut
    linked = consent(SIGNUP, LINK_CONSENT, LINKED)
    assert linked.consented_at == linked.linked_at == NOW and linked.withdrawn_at is None
    gone = folds.consent(pl.DataFrame([withdrawn], schema=schema), linked)
    assert gone.state == "withdrawn" and gone.withdrawn_at == NOW + timedelta(days=3)
    assert gone.linked_at is None and gone.consented_at is None
    assert set(folds.CONSENT_FIELDS) >= {"signed_up", "linked", "withdrawn_at"}
