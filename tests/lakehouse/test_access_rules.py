"""The access rules of issue 19 on the built demo city's Delta tables, each both ways: consent
decides what a citizen (and their carer, and what they share) sees of the national extracts;
a clinician reads their own institution's records of recent patients, and other institutions'
only with the citizen's say (a share code with its scope, a standing consent, emergency access);
the viewer's patient context follows the same rule; a carer's grant waits for the carer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from lakehouse import delta, queries
from lakehouse.access import Access, AccessDeniedError, Principal, folds
from lakehouse.access.gate import NATIONAL_KINDS
from lakehouse.buckets import key_bucket
from tests.lakehouse.test_access import consent_states
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.security, pytest.mark.integration]
NATIONAL = sorted(NATIONAL_KINDS)
KST = ZoneInfo("Asia/Seoul")


@pytest.fixture(scope="module", autouse=True)
def lake(platform_lake: Lake) -> Iterator[Lake]:
    with platform_lake.active():
        yield platform_lake


def _richest(timeline: pl.DataFrame, keys: pl.Series, n: int = 1) -> list[str]:
    """The ``n`` citizens of ``keys`` with the most national-extract rows."""
    counts = (
        timeline.filter(
            pl.col("citizen_key").is_in(keys.implode()) & pl.col("kind").is_in(NATIONAL)
        )
        .group_by("citizen_key")
        .len()
        .sort("len", "citizen_key", descending=[True, False])
    )
    assert counts.height >= n, "the demo city lacks citizens in this consent state"
    return counts["citizen_key"].head(n).to_list()


@pytest.fixture(scope="module")
def cast(lake: Lake) -> dict[str, Any]:
    """Citizens in each consent state with national history, and institutions around them."""
    timeline = lake.frame("gold.citizen_timeline")
    states = consent_states(lake)

    def keys(*wanted: str) -> pl.Series:
        return states.filter(pl.col("state").is_in(wanted))["citizen_key"]

    linked, carol, dave, erin = _richest(timeline, keys("linked"), 4)
    (unlinked,) = _richest(timeline, keys("signed_up", "consented"))
    (withdrawn,) = _richest(timeline, keys("withdrawn"))
    visits = timeline.filter((pl.col("citizen_key") == linked) & (pl.col("kind") == "visit"))
    # The institution with the most visits: its own rows, and others' it must not see.
    clinic = visits.group_by("institution").len().sort("len", "institution", descending=True)
    near = set(timeline.filter(pl.col("citizen_key") == linked)["institution"].drop_nulls())
    stranger = next(
        c for c in lake.frame("silver.institutions")["ykiho"].sort().to_list() if c not in near
    )
    return {
        "timeline": timeline,
        "linked": linked,
        "carol": carol,
        "dave": dave,
        "erin": erin,
        "unlinked": unlinked,
        "withdrawn": withdrawn,
        "clinic": clinic["institution"][0],
        "stranger": stranger,
        "visits": visits,
    }


def citizen(key: str, account: str) -> Access:
    return Access(Principal(account, "citizen", citizen_key=key, origin="test"))


def clinician(institution: str, account: str, clock: Any = None) -> Access:
    principal = Principal(account, "clinician", institution=institution, origin="test")
    return Access(principal, clock=clock) if clock else Access(principal)


def last_entry(lake: Lake, account: str) -> dict[str, Any]:
    """The newest audit row of ``account``."""
    return lake.frame("ops.audit_log", pl.col("account") == account).sort("at").row(-1, named=True)


def kinds(rows: pl.DataFrame) -> set[str]:
    return set(rows["kind"].to_list())


def truth(cast: dict[str, Any], key: str) -> pl.DataFrame:
    timeline: pl.DataFrame = cast["timeline"]
    return timeline.filter(pl.col("citizen_key") == key)


def _withdraw(lake: Lake, key: str, at: datetime) -> None:
    """The citizen withdraws the record-link consent at ``at`` (its day, KST, is its partition),
    delivered into ``silver.programme_events`` as the programme job writes it."""
    (account,) = lake.frame("silver.app_users", pl.col("citizen_key") == key)["app_user_id"]
    withdrawn = {
        "event_id": str(uuid.uuid4()),
        "event_type": "consent_withdrawn",
        "occurred_at": at,
        "app_user_id": account,
        "details": json.dumps({"consent_type": folds.RECORD_LINK}),
        "event_date": at.astimezone(KST).date(),
    }
    delta.append("silver.programme_events", pl.DataFrame([withdrawn]))


# --- 1. consent decides what a citizen sees ---------------------------------------------------


def test_a_linked_citizen_sees_the_national_history_an_unlinked_one_only_the_programmes(
    cast: dict[str, Any],
) -> None:
    linked = citizen(cast["linked"], "linked").timeline(cast["linked"])
    assert linked.height == truth(cast, cast["linked"]).height
    assert kinds(linked) & NATIONAL_KINDS
    for state in ("unlinked", "withdrawn"):
        key = cast[state]
        held = truth(cast, key)
        assert held.filter(pl.col("kind").is_in(NATIONAL)).height > 0  # there is history to hide
        shown = citizen(key, state).timeline(key)
        assert not kinds(shown) & NATIONAL_KINDS
        # A partner hospital's linked records follow the same consent (docs/partners.md).
        hidden = pl.col("kind").is_in(NATIONAL) | pl.col("partner").is_not_null()
        assert shown.height == held.filter(~hidden).height


def test_withdrawing_the_consent_hides_the_national_history_again(
    lake: Lake, cast: dict[str, Any]
) -> None:
    key = cast["carol"]
    me = citizen(key, "carol")
    assert kinds(me.timeline(key)) & NATIONAL_KINDS
    _withdraw(lake, key, datetime.now(UTC))
    assert not kinds(me.timeline(key)) & NATIONAL_KINDS
    # What the citizen no longer sees, their carer and what they share no longer show either.
    grant = me.grant_proxy("carol.carer")
    carer = citizen(cast["linked"], "carol.carer")
    carer.accept_proxy(grant.grant_id)
    assert not kinds(carer.timeline(key)) & NATIONAL_KINDS
    code, _ = me.create_share(30)
    doctor = clinician(cast["stranger"], "dr.share.carol")
    doctor.redeem_share(code)
    assert not kinds(doctor.timeline(key)) & NATIONAL_KINDS
    # An emergency access is not bound by the app's record link.
    er = clinician(cast["stranger"], "dr.er.carol")
    er.open_emergency(key, "Collapsed at home, medication history needed now")
    assert kinds(er.timeline(key)) & NATIONAL_KINDS


# --- the consent state: folded by the gold job, the events since on top -----------------------


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Parquet file the queries open by path (``pl.scan_parquet``), as they open them."""
    opened: list[str] = []
    scan = pl.scan_parquet

    def recorded(source: Any, **kwargs: Any) -> pl.LazyFrame:
        opened.extend([source] if isinstance(source, str) else source)
        return scan(source, **kwargs)

    monkeypatch.setattr(pl, "scan_parquet", recorded)
    return opened


def test_the_consent_lookup_reads_the_citizens_bucket_and_only_new_days(
    lake: Lake, cast: dict[str, Any], reads: list[str]
) -> None:
    key = cast["dave"]
    found = queries.consent(key, tuple(folds.CONSENT_EVENTS))
    assert found is not None
    row, since = found
    assert row is not None and row["state"] == "linked" and since.is_empty()
    bucket = lake.root / "gold" / "citizen_consent" / f"key_bucket={key_bucket(key)}"
    mine = {p.name for p in bucket.glob("*.parquet")}
    consent_files = {Path(p).name for p in reads if "citizen_consent" in p}
    assert mine and consent_files == mine  # that bucket's files, nothing else
    assert all("citizen_consent" in p or "programme_events" in p for p in reads)
    # Of the programme's events, only days the build did not fold (another test's withdrawal).
    days = [p.split("event_date=")[1][:10] for p in reads if "programme_events" in p]
    assert all(day > row["events_through"].isoformat() for day in days)


def test_a_withdrawal_after_the_consent_tables_build_counts_at_once(
    lake: Lake, cast: dict[str, Any], reads: list[str]
) -> None:
    key = cast["dave"]
    me = citizen(key, "dave")
    assert kinds(me.timeline(key)) & NATIONAL_KINDS
    built = lake.frame("gold.citizen_consent", pl.col("citizen_key") == key).row(0, named=True)
    now = datetime.now(UTC)
    assert now.astimezone(KST).date() > built["events_through"]  # a day the build never saw
    _withdraw(lake, key, now)
    reads.clear()
    assert not kinds(me.timeline(key)) & NATIONAL_KINDS
    # The stored state is still the build's; the withdrawal was folded on top of it, read from
    # the new day's files only.
    stored = lake.frame("gold.citizen_consent", pl.col("citizen_key") == key)["state"]
    assert stored.to_list() == ["linked"]
    events = [p for p in reads if "programme_events" in p]
    assert events and all(f"event_date={now.astimezone(KST).date()}" in p for p in events)
    assert citizen(cast["linked"], "linked").timeline(cast["linked"]).height == (
        truth(cast, cast["linked"]).height
    )  # others' consent stands


def test_a_withdrawal_delivered_late_into_a_folded_day_counts_at_once(
    lake: Lake, cast: dict[str, Any]
) -> None:
    key = cast["erin"]
    me = citizen(key, "erin")
    assert kinds(me.timeline(key)) & NATIONAL_KINDS
    through: date = lake.frame("gold.citizen_consent").select(pl.max("events_through")).item()
    # A day the build already folded, delivered again with a withdrawal in it: folding on top
    # would be out of order, so every day of the citizen's events is folded instead.
    late = datetime.combine(through, time(23, 0), KST)
    accounts = lake.frame("silver.app_users", pl.col("citizen_key") == key)
    events = lake.frame("silver.programme_events").join(accounts, on="app_user_id")
    latest: datetime = events.select(pl.max("occurred_at")).item()
    assert latest < late
    _withdraw(lake, key, late)
    assert queries.consent(key, tuple(folds.CONSENT_EVENTS)) is None
    assert not kinds(me.timeline(key)) & NATIONAL_KINDS
    assert kinds(citizen(cast["linked"], "linked").timeline(cast["linked"])) & NATIONAL_KINDS


# --- 2. clinicians: their own institution's records, others' only with the citizen's say ------


def test_a_clinician_reads_only_their_own_institutions_rows_of_a_recent_patient(
    lake: Lake, cast: dict[str, Any]
) -> None:
    own = clinician(cast["clinic"], "dr.own")
    rows = own.timeline(cast["linked"])
    assert rows.height > 0 and set(rows["institution"].to_list()) == {cast["clinic"]}
    others = truth(cast, cast["linked"]).filter(pl.col("institution") != cast["clinic"])
    assert others.height > 0  # the record holds other institutions' rows it must not show
    entry = last_entry(lake, "dr.own")
    assert entry["purpose"] == "institution" and entry["rows"] == rows.height
    # Breaking the glass shows the rest, flagged, even to the patient's own clinic.
    own.open_emergency(cast["linked"], "Anaphylaxis in the clinic, other prescriptions needed")
    assert own.timeline(cast["linked"]).height == truth(cast, cast["linked"]).height
    entry = last_entry(lake, "dr.own")
    assert entry["purpose"] == "emergency" and entry["emergency"]


def test_the_treatment_relationship_ends_after_the_configured_window(
    lake: Lake, cast: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, clinic = cast["linked"], cast["clinic"]
    timeline: pl.DataFrame = cast["timeline"]
    encounters = timeline.filter(
        (pl.col("citizen_key") == key)
        & (pl.col("institution") == clinic)
        & pl.col("kind").is_in(["visit", "admission"])
    )["event_date"]
    studies = lake.frame(
        "silver.imaging_studies",
        (pl.col("citizen_key") == key) & (pl.col("institution") == clinic),
    )["study_date"]
    last = max(d for d in [*encounters.to_list(), *studies.to_list()] if d is not None)
    # The window runs back from the newest day of the records (the extracts' end).
    days_since = (timeline["event_date"].max() - last).days
    if days_since == 0:
        pytest.skip("the patient's last visit is the extracts' last day")
    monkeypatch.setenv("GJH_TREATMENT_DAYS", str(days_since))
    assert clinician(clinic, "dr.window").basis("read:timeline", key) == "institution"
    monkeypatch.setenv("GJH_TREATMENT_DAYS", str(days_since - 1) if days_since > 1 else "1")
    if days_since > 1:
        with pytest.raises(AccessDeniedError) as refused:
            clinician(clinic, "dr.window").timeline(key)
        assert refused.value.code == "no_basis"


def test_a_standing_consent_opens_every_institutions_records_until_withdrawn(
    lake: Lake, cast: dict[str, Any]
) -> None:
    key, stranger = cast["linked"], cast["stranger"]
    doctor = clinician(stranger, "dr.consent")
    with pytest.raises(AccessDeniedError):
        doctor.timeline(key)
    me = citizen(key, "linked")
    with pytest.raises(ValueError):
        me.grant_consent("99999999")  # no such institution
    grant = me.grant_consent(stranger)
    assert grant.grant_id in {g.grant_id for g in me.my_grants() if g.kind == "consent"}
    rows = doctor.timeline(key)
    assert rows.height == truth(cast, key).height  # other institutions' records too
    entry = last_entry(lake, "dr.consent")
    assert entry["purpose"] == "consent"
    me.revoke(grant.grant_id)
    with pytest.raises(AccessDeniedError):
        doctor.timeline(key)


def test_a_share_code_shows_only_the_kinds_the_citizen_chose(cast: dict[str, Any]) -> None:
    key = cast["linked"]
    me = citizen(key, "linked")
    code, grant = me.create_share(45, scope=("medicines",))
    assert grant.scope == ("medicines",)
    doctor = clinician(cast["stranger"], "dr.scoped")
    doctor.redeem_share(code)
    rows = doctor.timeline(key)
    expected = truth(cast, key).filter(pl.col("kind").is_in(["prescription", "dispensing"]))
    assert rows.height == expected.height > 0
    assert kinds(rows) <= {"prescription", "dispensing"}
    everything, _ = me.create_share(60)
    other = clinician(cast["stranger"], "dr.everything")
    other.redeem_share(everything)
    assert other.timeline(key).height == truth(cast, key).height


def test_a_share_lasts_30_to_60_minutes_and_covers_known_kinds_only(cast: dict[str, Any]) -> None:
    me = citizen(cast["linked"], "linked")
    for minutes in (29, 61, 24 * 60):
        with pytest.raises(ValueError):
            me.create_share(minutes)
    for scope in ((), ("everything",), ("medicines", "'; DROP TABLE ops.grants --")):
        with pytest.raises(ValueError):
            me.create_share(30, scope=scope)
    start = datetime.now(UTC)
    clock = {"now": start}
    timed = Access(
        Principal("linked", "citizen", citizen_key=cast["linked"], origin="test"),
        clock=lambda: clock["now"],
    )
    code, grant = timed.create_share(30, scope=("imaging", "diagnoses"))
    assert grant.expires_at == start + timedelta(minutes=30)
    doctor = clinician(cast["stranger"], "dr.late", clock=lambda: clock["now"])
    doctor.redeem_share(code)
    assert kinds(doctor.timeline(cast["linked"])) <= {"diagnosis", "imaging", "study"}
    clock["now"] = start + timedelta(minutes=30)
    with pytest.raises(AccessDeniedError):
        doctor.timeline(cast["linked"])


def test_the_viewers_patient_context_follows_the_same_rule(
    lake: Lake, cast: dict[str, Any]
) -> None:
    studies = lake.frame("silver.imaging_studies", pl.col("citizen_key").is_not_null())
    timeline: pl.DataFrame = cast["timeline"]
    # A study whose patient has diagnoses from other institutions in the year before it.
    for study in studies.sort("study_instance_uid").iter_rows(named=True):
        before = timeline.filter(
            (pl.col("citizen_key") == study["citizen_key"])
            & (pl.col("kind") == "diagnosis")
            & pl.col("event_date").is_between(
                study["study_date"] - timedelta(days=365), study["study_date"]
            )
        )
        if (before["institution"] != study["institution"]).any():
            break
    else:
        pytest.fail("no study with another institution's diagnoses in the demo city")
    uid, own = study["study_instance_uid"], study["institution"]
    reader = clinician(own, "dr.reader")
    context = reader.patient_context(uid)
    assert context.diagnoses.height > 0 or not (before["institution"] == own).any()
    assert set(context.diagnoses["institution"].to_list()) <= {own}
    assert set(context.priors["institution_name"].to_list()) <= set(
        lake.frame("silver.institutions", pl.col("ykiho") == own)["name"].to_list()
    )
    grant = citizen(study["citizen_key"], "patient").grant_consent(own)
    wider = reader.patient_context(uid)
    assert context.basis == "institution" and wider.basis == "consent"
    assert set(wider.diagnoses["institution"].to_list()) - {own}
    citizen(study["citizen_key"], "patient").revoke(grant.grant_id)
    assert set(reader.patient_context(uid).diagnoses["institution"].to_list()) <= {own}


# --- a share code beside the institution rule: the clinician sees the union -------------------

MEDICINES = ["prescription", "dispensing"]


def _after_the_extracts(cast: dict[str, Any]) -> Callable[[], datetime]:
    """A clock on the day after the demo city's records end (so "recent" holds something)."""
    end: date = cast["timeline"]["event_date"].max()
    moment = datetime.combine(end + timedelta(days=1), time(3), UTC)
    return lambda: moment


def _her_clinic(cast: dict[str, Any]) -> str:
    """The institution that coded most of the linked citizen's diagnoses in the records' last
    year: a clinic (``cast["clinic"]``, her most visited, may be a pharmacy) that treated her
    recently."""
    held = truth(cast, cast["linked"])
    last = held["event_date"].max()
    assert isinstance(last, date)
    since = last - timedelta(days=365)
    coded = held.filter((pl.col("kind") == "diagnosis") & (pl.col("event_date") > since))
    clinic: str = coded.group_by("institution").len().sort("len", "institution")["institution"][-1]
    assert clinician(clinic, "dr.her.clinic").basis("read:timeline", cast["linked"]) == (
        "institution"
    )
    return clinic


def test_a_share_adds_its_kinds_to_a_recent_patients_own_institution_records(
    lake: Lake, cast: dict[str, Any]
) -> None:
    key, clinic = cast["linked"], _her_clinic(cast)
    held = truth(cast, key)
    own, shared = pl.col("institution") == clinic, pl.col("kind").is_in(MEDICINES)
    # Rows on every side of the cut: the clinic's of other kinds, the shared kinds elsewhere,
    # and others' rows of other kinds, which no basis here shows.
    assert min(held.filter(c).height for c in (own & ~shared, ~own & shared, ~own & ~shared))
    me = citizen(key, "linked")
    # A share alone: the shared kinds of every institution, nothing else.
    code, _ = me.create_share(45, scope=("medicines",))
    outsider = clinician(cast["stranger"], "dr.union.outsider")
    outsider.redeem_share(code)
    assert outsider.timeline(key).height == held.filter(shared).height
    assert last_entry(lake, "dr.union.outsider")["purpose"] == "share"
    # A share redeemed by a clinician of the clinic that treated her: the clinic's own rows of
    # every kind as well, and still nothing else.
    code, grant = me.create_share(45, scope=("medicines",))
    doctor = clinician(clinic, "dr.union")
    doctor.redeem_share(code)
    rows = doctor.timeline(key)
    assert rows.height == held.filter(own | shared).height
    assert rows.filter(own & ~shared).height == held.filter(own & ~shared).height
    assert rows.filter(~own).height == held.filter(~own & shared).height
    assert kinds(rows.filter(~own)) <= set(MEDICINES)
    entry = last_entry(lake, "dr.union")
    assert entry["purpose"] == "institution_share" and entry["rows"] == rows.height
    # Revoked: back to the institution rule.
    me.revoke(grant.grant_id)
    rows = doctor.timeline(key)
    assert rows.height == held.filter(own).height
    assert set(rows["institution"].to_list()) == {clinic}
    assert last_entry(lake, "dr.union")["purpose"] == "institution"


def test_under_the_union_the_consent_rule_binds_only_the_shared_part(
    lake: Lake, cast: dict[str, Any]
) -> None:
    """A citizen without a record link shares everything with her own clinic: the clinic keeps
    its own claims (the institution rule does not depend on the link), and other institutions'
    claims stay hidden (what she shares follows her consent)."""
    key = cast["unlinked"]
    held = truth(cast, key)
    visits = held.filter(pl.col("kind") == "visit").sort("event_date", descending=True)
    clinic = visits["institution"][0]  # her latest visit: a recent patient of that clinic
    doctor = clinician(clinic, "dr.union.unlinked")
    assert doctor.basis("read:timeline", key) == "institution"
    own = pl.col("institution") == clinic
    # A partner hospital's linked records follow her consent as the national extracts do.
    national = pl.col("kind").is_in(NATIONAL) | pl.col("partner").is_not_null()
    assert held.filter(~own & national).height > 0
    code, _ = citizen(key, "unlinked").create_share(30)
    doctor.redeem_share(code)
    rows = doctor.timeline(key)
    assert last_entry(lake, "dr.union.unlinked")["purpose"] == "institution_share"
    assert rows.height == held.filter(own | ~national).height
    assert rows.filter(own & national).height == held.filter(own & national).height > 0
    assert rows.filter(~own & national).is_empty()


def test_the_summary_follows_the_union_too(cast: dict[str, Any]) -> None:
    """The summary reads claims, diagnoses and prescriptions from silver, not the timeline: the
    same union cuts them (``_record_rows``). A medicines share keeps the clinic's own
    diagnoses in the problems; a share alone shows none."""
    key, clinic, clock = cast["linked"], _her_clinic(cast), _after_the_extracts(cast)
    today = clock().date()
    coded = truth(cast, key).filter(
        (pl.col("kind") == "diagnosis")
        & (pl.col("event_date") > today - timedelta(days=365))
        & (pl.col("event_date") <= today)
    )
    own = set(coded.filter(pl.col("institution") == clinic)["code"].to_list())
    assert own, "the clinic coded no diagnosis of hers in the last year"
    me = Access(Principal("linked", "citizen", citizen_key=key, origin="test"), clock=clock)
    code, grant = me.create_share(45, scope=("medicines",))
    doctor = clinician(clinic, "dr.union.summary", clock=clock)
    doctor.redeem_share(code)
    shown = doctor.emergency_summary(key)
    assert set(shown.problems["kcd"].to_list()) == own
    code, _ = me.create_share(45, scope=("medicines",))
    outsider = clinician(cast["stranger"], "dr.union.summary.outsider", clock=clock)
    outsider.redeem_share(code)
    assert outsider.emergency_summary(key).problems.is_empty()
    me.revoke(grant.grant_id)
    after = doctor.emergency_summary(key)
    assert set(after.problems["kcd"].to_list()) == own
    assert set(after.medicines["prescriber"].to_list()) <= {clinic}


def test_another_institutions_study_opens_only_when_the_basis_shows_it(
    lake: Lake, cast: dict[str, Any]
) -> None:
    """A recent patient's study sent by another institution is not the clinic's own record: the
    viewer refuses it under the institution rule and under a share that left imaging out, and
    opens it under a share of imaging (the union: the clinic's records and the shared kinds)."""
    timeline: pl.DataFrame = cast["timeline"]
    newest = timeline["event_date"].max()
    assert isinstance(newest, date)
    recent = newest - timedelta(days=180)
    visits = timeline.filter((pl.col("kind") == "visit") & (pl.col("event_date") > recent))
    studies = lake.frame("silver.imaging_studies", pl.col("citizen_key").is_not_null())
    pairs = (
        studies.select("study_instance_uid", "citizen_key", pl.col("institution").alias("sent"))
        .join(visits.select("citizen_key", "institution"), on="citizen_key")
        .filter(pl.col("institution") != pl.col("sent"))
        .sort("study_instance_uid", "institution")
    )
    assert pairs.height, "no patient with a recent visit elsewhere than a study's sender"
    uid, key, clinic = pairs.select("study_instance_uid", "citizen_key", "institution").row(0)
    doctor = clinician(clinic, "dr.union.viewer")
    assert doctor.basis("read:timeline", key) == "institution"
    with pytest.raises(AccessDeniedError):
        doctor.patient_context(uid)
    assert last_entry(lake, "dr.union.viewer")["outcome"] == "denied"
    patient = citizen(key, "patient.union")
    code, _ = patient.create_share(30, scope=("medicines",))
    doctor.redeem_share(code)
    with pytest.raises(AccessDeniedError):
        doctor.patient_context(uid)
    code, _ = patient.create_share(30, scope=("imaging",))
    reader = clinician(clinic, "dr.union.reader")
    reader.redeem_share(code)
    assert reader.patient_context(uid).basis == "institution_share"


# --- 4. family carers accept first ------------------------------------------------------------


def test_a_carer_reads_only_after_accepting_and_the_parent_sees_every_read(
    lake: Lake, cast: dict[str, Any]
) -> None:
    parent, child = cast["unlinked"], cast["withdrawn"]
    grant = citizen(parent, "parent").grant_proxy("child")
    carer = citizen(child, "child")
    with pytest.raises(AccessDeniedError):
        carer.timeline(parent)
    assert carer.proxied() == []
    with pytest.raises(AccessDeniedError):  # nobody else can accept for the carer
        citizen(cast["linked"], "someone").accept_proxy(grant.grant_id)
    carer.accept_proxy(grant.grant_id)
    carer.timeline(parent)
    carer.timeline(parent)
    seen = citizen(parent, "parent").who_viewed_me().filter(pl.col("account") == "child")
    assert set(seen["purpose"].to_list()) == {"proxy"}
    assert seen["action"].to_list() == ["read:timeline", "read:timeline", "proxy:accept"]
    with pytest.raises(AccessDeniedError):  # accepted once is enough; not again
        carer.accept_proxy(grant.grant_id)


# --- consent reaches every reader of the national extracts -------------------------------------


def test_medicines_insights_and_the_summary_follow_the_consent_too(cast: dict[str, Any]) -> None:
    """The medicines, insights, emergency summary and export read claims, prescriptions and
    dispensings from silver, not the timeline: the same rule cuts them (``_record_rows``)."""
    linked = citizen(cast["linked"], "linked")
    whole = zip_tables(linked.export_all(cast["linked"]))
    assert whole["claims.csv"] > 0 and whole["prescriptions.csv"] > 0
    for state in ("unlinked", "withdrawn"):
        key = cast[state]
        layer = citizen(key, state)
        assert layer.medicines_now(key).medicines.is_empty()
        assert {i.rule for i in layer.insights(key).items} <= {"screening"}
        shown = layer.emergency_summary(key)
        assert shown.problems.is_empty() and shown.medicines.is_empty()
        held = zip_tables(layer.export_all(key))
        for national in ("claims.csv", "diagnoses.csv", "prescriptions.csv", "dispensings.csv"):
            assert held[national] == 0, (state, national)


def zip_tables(archive: bytes) -> dict[str, int]:
    """Rows per CSV file of an export zip."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return {
            n: pl.read_csv(z.read(n)).height if z.read(n).strip() else 0
            for n in z.namelist()
            if n.endswith(".csv")
        }
