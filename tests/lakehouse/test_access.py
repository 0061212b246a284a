"""The access layer on the built demo city: each role gets exactly what it should, every other
attempt is refused, and every attempt, granted or refused, is in the audit log."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lakehouse import accounts, delta, disclosure
from lakehouse import audit as ledger
from lakehouse.access import Access, AccessDeniedError, Principal, folds
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.security, pytest.mark.integration]
INJECTIONS = (
    "' OR '1'='1",
    "C0' OR citizen_key IS NOT NULL --",
    "'; DROP TABLE gold.citizen_timeline; --",
    "<script>alert(1)</script>",
    "../../vault/identities",
    "",
)


@pytest.fixture(scope="module", autouse=True)
def lake(platform_lake: Lake) -> Iterator[Lake]:
    with platform_lake.active():
        yield platform_lake


@pytest.fixture(scope="module")
def people(lake: Lake) -> dict[str, str]:
    """Two citizens whose record link stands (the app shows them their national history), the
    institution one of them visited and one neither has been near."""
    timeline = lake.frame("gold.citizen_timeline", pl.col("institution").is_not_null())
    studies = lake.frame("silver.imaging_studies")
    counts = linked_by_rows(lake, timeline)
    alice, bob = counts["citizen_key"][0], counts["citizen_key"][1]
    visited = timeline.filter((pl.col("citizen_key") == alice) & (pl.col("kind") == "visit"))[
        "institution"
    ][0]
    near = set(
        timeline.filter(pl.col("citizen_key").is_in([alice, bob]))["institution"].to_list()
    ) | set(studies.filter(pl.col("citizen_key").is_in([alice, bob]))["institution"].to_list())
    clinics = lake.frame("silver.institutions")["ykiho"].sort().to_list()
    stranger = next(c for c in clinics if c not in near)
    return {"alice": alice, "bob": bob, "visited": visited, "stranger": stranger}


def consent_states(lake: Lake) -> pl.DataFrame:
    """Every app user's consent state (``citizen_key``, ``state``), folded from the programme's
    events as the access layer folds them."""
    users = lake.frame("silver.app_users").select("app_user_id", "citizen_key")
    events = lake.frame("silver.programme_events").join(users, on="app_user_id")
    return pl.DataFrame(
        [
            {"citizen_key": key, "state": folds.consent(mine).state}
            for (key,), mine in events.group_by("citizen_key")
        ],
        schema={"citizen_key": pl.Utf8, "state": pl.Utf8},
    )


def link_record(lake: Lake, key: str, at: datetime) -> None:
    """Give ``key`` a standing record link as the app would: an app account (when they have
    none), sign-up, the record-link consent and the completed link, as real events appended to
    the lake's silver tables (for a test city whose chosen citizen never linked)."""
    users = lake.frame("silver.app_users", pl.col("citizen_key") == key)["app_user_id"]
    account = users[0] if users.len() else f"test-{key[-12:]}"
    if not users.len():
        delta.append(
            "silver.app_users",
            pl.DataFrame([{"app_user_id": account, "citizen_key": key, "signed_up_at": at}]),
        )
    consent = json.dumps({"consent_type": folds.RECORD_LINK})
    steps = (("signup", "{}"), ("consent", consent), ("record_link_completed", None))
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": kind,
            "occurred_at": at + timedelta(seconds=n),
            "app_user_id": account,
            "details": details or json.dumps({"status": "completed"}),
            "event_date": at.date(),
        }
        for n, (kind, details) in enumerate(steps)
    ]
    delta.append("silver.programme_events", pl.DataFrame(events))


def linked_by_rows(lake: Lake, timeline: pl.DataFrame) -> pl.DataFrame:
    """The citizens whose record link stands (the app shows them their whole timeline), by
    their rows of ``timeline``, most first (``citizen_key``, ``len``)."""
    linked = consent_states(lake).filter(pl.col("state") == "linked")["citizen_key"]
    return (
        timeline.filter(pl.col("citizen_key").is_in(linked.implode()))
        .group_by("citizen_key")
        .len()
        .sort("len", "citizen_key", descending=True)
    )


def citizen(key: str, account: str = "alice") -> Access:
    return Access(Principal(account, "citizen", citizen_key=key, origin="test"))


def clinician(institution: str, account: str = "dr.kim") -> Access:
    return Access(Principal(account, "clinician", "김의사", institution=institution, origin="test"))


def audit(lake: Lake, **equal: object) -> pl.DataFrame:
    where = pl.lit(True)
    for column, value in equal.items():
        where &= pl.col(column) == value
    return lake.frame("ops.audit_log", where)


def test_a_citizen_reads_their_own_timeline_and_it_is_audited(
    lake: Lake, people: dict[str, str]
) -> None:
    before = audit(lake, account="alice", action="read:timeline").height
    rows = citizen(people["alice"]).timeline(people["alice"])
    truth = lake.frame("gold.citizen_timeline", pl.col("citizen_key") == people["alice"])
    assert rows.height == truth.height > 0
    assert set(rows["citizen_key"].to_list()) == {people["alice"]}
    entries = audit(lake, account="alice", action="read:timeline")
    assert entries.height == before + 1
    last = entries.sort("at").row(-1, named=True)
    assert last["subject_key"] == people["alice"] and last["purpose"] == "self"
    assert last["outcome"] == "allowed" and last["rows"] == rows.height
    assert last["role"] == "citizen" and last["origin"] == "test"


def test_a_citizen_cannot_read_another_citizen_by_any_key(
    lake: Lake, people: dict[str, str]
) -> None:
    alice = citizen(people["alice"])
    guessed = "C" + "0" * 32  # well formed, nobody's
    for key in (people["bob"], guessed, people["bob"].upper(), *INJECTIONS):
        with pytest.raises(AccessDeniedError):
            alice.timeline(key)
    denied = audit(lake, account="alice", outcome="denied")
    assert denied.filter(pl.col("subject_key") == people["bob"]).height >= 1
    assert denied.filter(pl.col("subject_key") == guessed).height >= 1
    malformed = denied.filter(
        pl.col("subject_key").is_null() & (pl.col("detail") == "not a citizen key")
    )
    assert malformed.height >= len(INJECTIONS) + 1  # the upper-cased key is malformed too


def test_a_proxy_reads_until_the_grant_is_revoked(lake: Lake, people: dict[str, str]) -> None:
    carer = citizen(people["bob"], account="bob")
    with pytest.raises(AccessDeniedError):
        carer.timeline(people["alice"])
    grant = citizen(people["alice"]).grant_proxy("bob")
    with pytest.raises(AccessDeniedError):  # pending until bob accepts
        carer.timeline(people["alice"])
    assert [g.grant_id for g in carer.invitations()] == [grant.grant_id]
    carer.accept_proxy(grant.grant_id)
    assert carer.invitations() == [] and carer.proxied() == [people["alice"]]
    assert carer.timeline(people["alice"]).height > 0
    assert carer.name(people["alice"])  # a proxy sees the name, decrypted from the vault
    last = audit(lake, account="bob", action="read:timeline", outcome="allowed")
    assert set(last["purpose"].to_list()) == {"proxy"}
    citizen(people["alice"]).revoke(grant.grant_id)
    with pytest.raises(AccessDeniedError):
        carer.timeline(people["alice"])
    with pytest.raises(AccessDeniedError):  # and bob cannot revoke what alice granted
        citizen(people["bob"], account="bob").revoke(grant.grant_id)


def test_a_clinician_sees_patients_of_their_institution_only(
    lake: Lake, people: dict[str, str]
) -> None:
    own = clinician(people["visited"])
    assert own.timeline(people["alice"]).height > 0
    assert audit(lake, account="dr.kim", purpose="institution").height >= 1
    with pytest.raises(AccessDeniedError):
        clinician(people["stranger"], "dr.lee").timeline(people["alice"])
    with pytest.raises(AccessDeniedError):  # names are for the person and their proxy
        own.name(people["alice"])
    refused = audit(lake, account="dr.lee", outcome="denied")
    assert refused["subject_key"].to_list() == [people["alice"]]


def test_a_share_code_opens_a_record_once_until_it_expires(
    lake: Lake, people: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    clock = {"now": now}
    alice = Access(
        Principal("alice", "citizen", citizen_key=people["alice"], origin="test"),
        clock=lambda: clock["now"],
    )
    code, grant = alice.create_share(minutes=60)
    assert len(code) == 9 and grant.expires_at == now + timedelta(minutes=60)
    assert not lake.frame("ops.grants").filter(pl.col("code_hash") == code).height  # hashed
    doctor = Access(
        Principal("dr.park", "clinician", institution=people["stranger"], origin="test"),
        clock=lambda: clock["now"],
    )
    other = Access(
        Principal("dr.choi", "clinician", institution=people["stranger"], origin="test"),
        clock=lambda: clock["now"],
    )
    with pytest.raises(AccessDeniedError):
        doctor.timeline(people["alice"])
    assert doctor.redeem_share(code.lower().replace("-", " ")) == people["alice"]
    assert doctor.timeline(people["alice"]).height > 0
    with pytest.raises(AccessDeniedError, match="already used"):
        other.redeem_share(code)
    with pytest.raises(AccessDeniedError, match="unknown"):
        other.redeem_share("ABCD-EFGH")
    clock["now"] = now + timedelta(minutes=61)
    with pytest.raises(AccessDeniedError):
        doctor.timeline(people["alice"])
    with pytest.raises(AccessDeniedError, match="expired"):
        doctor.redeem_share(code)
    # A new code, revoked before use, opens nothing.
    clock["now"] = now
    code2, grant2 = alice.create_share()
    alice.revoke(grant2.grant_id)
    with pytest.raises(AccessDeniedError, match="revoked"):
        other.redeem_share(code2)
    assert {g.grant_id for g in alice.my_grants()} >= {grant.grant_id, grant2.grant_id}


def test_emergency_access_needs_a_reason_expires_and_is_shown_to_the_citizen(
    lake: Lake, people: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    clock = {"now": now}
    er = Access(
        Principal("dr.er", "clinician", institution=people["stranger"], origin="test"),
        clock=lambda: clock["now"],
    )
    with pytest.raises(AccessDeniedError):
        er.open_emergency(people["bob"], "urgent")  # not a reason
    er.open_emergency(people["bob"], "Unconscious in the emergency room, allergy history needed")
    rows = er.timeline(people["bob"])
    assert rows.height > 0
    flagged = audit(lake, account="dr.er", action="read:timeline")
    assert flagged["emergency"].to_list() == [True]
    assert flagged["purpose"].to_list() == ["emergency"]
    seen = citizen(people["bob"], "bob").who_viewed_me()
    assert seen.filter(pl.col("account") == "dr.er")["emergency"].any()
    kinds = {g.kind for g in citizen(people["bob"], "bob").my_grants()}
    assert "emergency" in kinds
    clock["now"] = now + timedelta(minutes=61)
    with pytest.raises(AccessDeniedError):
        er.timeline(people["bob"])


def test_officials_and_admins_see_no_person_level_data(lake: Lake, people: dict[str, str]) -> None:
    official = Access(Principal("official", "official", "시청 담당자", origin="test"))
    admin = Access(Principal("admin", "admin", "운영자", origin="test"))
    for who in (official, admin):
        with pytest.raises(AccessDeniedError):
            who.timeline(people["alice"])
        with pytest.raises(AccessDeniedError):
            who.who_viewed_me()
    with pytest.raises(AccessDeniedError):
        official.audit_log(datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(AccessDeniedError):
        admin.uptake("signups", ["district_code"], "2025-01", "2025-12")
    log = admin.audit_log(datetime.now(UTC) - timedelta(days=1))
    assert log.height > 0 and (log["outcome"] == "denied").any()


def test_officials_get_uptake_with_small_cells_suppressed(lake: Lake) -> None:
    official = Access(Principal("official", "official", "시청 담당자", origin="test"))
    table = official.uptake(
        "centre_visitors", ["district_code", "age_group", "sex"], "2025-01", "2025-03"
    )
    assert official.uptake_months() == [f"2025-{m:02d}" for m in range(1, 13)]  # the demo year
    assert "status" not in table.columns  # primary vs complementary would bound the counts
    shown = table.filter(~pl.col("suppressed"))["centre_visitors"]
    assert shown.len() > 0 and not shown.is_between(1, 10).any()
    assert table["suppressed"].any()  # a city of 5,000 has small cells
    assert table.filter(pl.col("suppressed"))["centre_visitors"].is_null().all()
    grand = table.filter(
        pl.all_horizontal(
            pl.col(c) == disclosure.TOTAL for c in ("district_code", "age_group", "sex")
        )
    )
    daily = lake.frame(
        "gold.programme_uptake_daily", pl.col("day").is_between(date(2025, 1, 1), date(2025, 3, 31))
    )
    assert grand["centre_visitors"].to_list() == [daily["centre_visitors"].sum()]
    entry = audit(lake, account="official", action="read:aggregate").row(-1, named=True)
    assert entry["subject_key"] is None and entry["purpose"] == "monitoring"
    for bad in ("2025-1", "2025-13", "2025-01' OR 1=1 --", ""):
        with pytest.raises(ValueError):
            official.uptake("signups", [], bad, "2025-03")
    with pytest.raises(ValueError):
        official.uptake("signups; DROP TABLE x", [], "2025-01", "2025-03")
    with pytest.raises(ValueError):
        official.uptake("signups", ["citizen_key"], "2025-01", "2025-03")


def test_demo_accounts_are_pseudonymised_hashed_and_locked_after_failures(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, people: dict[str, str]
) -> None:
    monkeypatch.setenv("GJH_ACCOUNTS", str(tmp_path / "accounts.json"))
    rrn = "580921-2082192"
    demo = tmp_path / "demo_accounts.json"
    demo.write_text(
        json.dumps(
            {
                "accounts": [
                    {
                        "username": "citizen1",
                        "password": "correct horse 1",
                        "role": "citizen",
                        "resident_registration_number": rrn,
                        "display_name": "송숙연",
                    },
                    {
                        "username": "doctor1",
                        "password": "correct horse 2",
                        "role": "clinician",
                        "institution": people["visited"],
                        "display_name": "김의사",
                    },
                ]
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    assert accounts.load_demo(demo) == 2
    stored = (tmp_path / "accounts.json").read_text(encoding="utf-8")
    assert rrn not in stored and rrn.replace("-", "") not in stored and "송숙연" not in stored
    assert "correct horse" not in stored and "$argon2id$" in stored
    assert (tmp_path / "accounts.json").stat().st_mode & 0o077 == 0
    account = accounts.sign_in("citizen1", "correct horse 1", "test")
    assert account.principal("test").citizen_key and account.role == "citizen"
    for _ in range(accounts.LOCK_AFTER - 1):
        with pytest.raises(accounts.SignInError, match="wrong_password"):
            accounts.sign_in("doctor1", "guess", "test")
    with pytest.raises(accounts.SignInError, match="locked"):
        accounts.sign_in("doctor1", "guess", "test")
    with pytest.raises(accounts.SignInError, match="locked"):  # even the right password
        accounts.sign_in("doctor1", "correct horse 2", "test")
    later = datetime.now(UTC) + accounts.LOCK_WINDOW + timedelta(seconds=1)
    assert accounts.sign_in("doctor1", "correct horse 2", "test", now=later).role == "clinician"
    with pytest.raises(accounts.SignInError, match="unknown_account"):
        accounts.sign_in("' OR 1=1 --", "x", "test")
    outcomes = lake.frame("ops.sign_ins")["outcome"].to_list()
    assert outcomes.count("ok") == 2 and "unknown_account" in outcomes


def test_the_access_log_keeps_at_least_two_years(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Access(
        Principal("archivist", "admin", origin="test"),
        clock=lambda: datetime(2020, 1, 15, tzinfo=UTC),
    )
    old.audit_log(datetime(2020, 1, 1, tzinfo=UTC))  # an entry dated January 2020
    recent = audit(lake, month=datetime.now(UTC).strftime("%Y-%m")).height
    monkeypatch.setenv("GJH_AUDIT_RETENTION_DAYS", "730")
    with pytest.raises(ValueError, match="at least 731"):
        ledger.expire_audit()
    monkeypatch.setenv("GJH_AUDIT_RETENTION_DAYS", "731")
    # On 2022-01-20 the period reaches back to 2020-01-19: January 2020 is not over yet.
    assert ledger.expire_audit(datetime(2022, 1, 20, tzinfo=UTC)) == 0
    assert audit(lake, month="2020-01").height == 1
    assert ledger.expire_audit(datetime(2022, 2, 2, tzinfo=UTC)) == 1
    assert audit(lake, month="2020-01").height == 0
    assert audit(lake, month=datetime.now(UTC).strftime("%Y-%m")).height == recent
