"""The clinicians' triage through the access layer, on the built demo city: the worklist holds
exactly the studies a clinician may triage, a study of another institution is refused (and the
attempt audited), decisions are appended and the finding's verification follows the latest,
remote readings open a study to one hospital and return a reply, and the turnaround figures
count what happened."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import polars as pl
import pydicom
import pytest

from lakehouse import delta, dicom_store
from lakehouse import read as lake_read
from lakehouse.access import Access, AccessDeniedError, Principal, Query, Readers
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.security, pytest.mark.integration]
HOSTILE = "<script>alert(1)</script>'; DROP TABLE ops.triage_events; --"


@pytest.fixture(scope="module", autouse=True)
def lake(platform_lake: Lake) -> Iterator[Lake]:
    with platform_lake.active():
        yield platform_lake


@pytest.fixture(scope="module")
def cast(lake: Lake) -> dict[str, Any]:
    """The clinic that sent the most scored studies, a clinic that sent none of the same
    patients' studies, and a hospital that reads for clinics."""
    findings = lake.frame("ai.findings")
    counts = findings.group_by("institution").len().sort("len", "institution", descending=True)
    clinic = counts["institution"][0]
    institutions = lake.frame("silver.institutions")
    hospital = institutions.filter(
        pl.col("class_code").is_in(["01", "11"]) & (pl.col("ykiho") != clinic)
    ).sort("ykiho")["ykiho"][0]
    theirs = findings.filter(pl.col("institution") == clinic)
    patients = set(theirs["patient_key"].to_list())
    studies = lake.frame("silver.imaging_studies")
    near = set(studies.filter(pl.col("patient_key").is_in(list(patients)))["institution"])
    timeline = lake.frame("gold.citizen_timeline", pl.col("citizen_key").is_in(list(patients)))
    near |= set(timeline["institution"].drop_nulls().to_list())
    clinics = institutions.filter(~pl.col("class_code").is_in(["01", "11"]))  # reads for none
    stranger = next(c for c in clinics["ykiho"].sort().to_list() if c not in near)
    visited = lake.frame("gold.citizen_timeline", pl.col("institution") == clinic)
    known = patients | set(visited["citizen_key"].to_list())
    foreign = findings.filter(
        (pl.col("institution") != clinic) & ~pl.col("patient_key").is_in(list(known))
    )
    at_hospital = lake.frame("gold.citizen_timeline", pl.col("institution") == hospital)
    strangers_to_hospital = theirs.filter(
        ~pl.col("patient_key").is_in(at_hospital["citizen_key"].implode())
        & ~pl.col("patient_key").is_in(
            studies.filter(pl.col("institution") == hospital)["patient_key"].implode()
        )
    )
    return {
        "clinic": clinic,
        "hospital": hospital,
        "stranger": stranger,
        "studies": set(theirs["study_instance_uid"].to_list()),
        "foreign": foreign["study_instance_uid"][0],
        # studies of the clinic whose patient the hospital has never seen: only a request
        # opens them to it
        "unseen": sorted(set(strangers_to_hospital["study_instance_uid"].to_list())),
    }


def clinician(institution: str, account: str = "dr.kim") -> Access:
    return Access(Principal(account, "clinician", "김의사", institution=institution, origin="test"))


def audit(lake: Lake, **equal: object) -> pl.DataFrame:
    where = pl.lit(True)
    for column, value in equal.items():
        where &= pl.col(column) == value
    return lake.frame("ops.audit_log", where)


def test_the_worklist_holds_exactly_the_institutions_studies_most_pressing_first(
    lake: Lake, cast: dict[str, Any]
) -> None:
    rows = clinician(cast["clinic"]).worklist()
    assert set(rows["study_instance_uid"].to_list()) == cast["studies"]
    assert rows["study_instance_uid"].is_unique().all()
    open_ = rows.filter(pl.col("status").is_in(["new", "in_review"]))
    assert open_["priority"].to_list() == sorted(open_["priority"].to_list(), reverse=True)
    assert rows["score_100"].drop_nulls().is_between(0, 100).all()
    entry = audit(lake, account="dr.kim", action="read:worklist")
    assert entry["rows"].to_list()[-1] == rows.height


def test_filters_narrow_the_worklist_and_are_recorded(lake: Lake, cast: dict[str, Any]) -> None:
    layer = clinician(cast["clinic"])
    every = layer.worklist()
    service = every["service"][0]
    only = layer.worklist(services=[service])
    assert 0 < only.height <= every.height
    assert all(service in s.split("|") for s in only["services"].to_list())
    assert layer.worklist(institutions=[cast["stranger"]]).is_empty()
    detail = audit(lake, account="dr.kim", action="read:worklist")["detail"].to_list()
    assert any(service in (d or "") for d in detail)


def test_the_day_filter_counts_days_in_korea(lake: Lake, cast: dict[str, Any]) -> None:
    layer = clinician(cast["clinic"])
    every = layer.worklist()
    seoul = every.with_columns(
        pl.col("acquired_at").dt.convert_time_zone("Asia/Seoul").dt.date().alias("day")
    )
    # A study taken in the morning in Korea is still the previous day in UTC.
    late = seoul.filter(pl.col("acquired_at").dt.hour() >= 15)
    day = (late if late.height else seoul)["day"][0]
    shown = layer.worklist(since=day, until=day)
    assert set(shown["study_instance_uid"].to_list()) == set(
        seoul.filter(pl.col("day") == day)["study_instance_uid"].to_list()
    )


def test_a_clinic_with_no_studies_sees_an_empty_worklist(cast: dict[str, Any]) -> None:
    assert clinician(cast["stranger"], "dr.lee").worklist().is_empty()


def test_opening_a_study_reads_its_originals_heatmaps_and_findings_and_audits_once(
    lake: Lake, cast: dict[str, Any]
) -> None:
    rows = clinician(cast["clinic"]).worklist()
    uid = rows.filter(pl.col("ai_status") == "scored")["study_instance_uid"][0]
    before = audit(lake, action="read:study").height
    opened = clinician(cast["clinic"]).open_study(uid)
    assert opened.basis == "institution"
    assert len(opened.datasets) == opened.instances.height > 0
    assert all(isinstance(ds, pydicom.Dataset) for ds in opened.datasets)
    assert {str(ds.StudyInstanceUID) for ds in opened.datasets} == {uid}
    assert set(opened.findings["verification"].to_list()) <= {"unverified", "accepted"}
    scored = opened.findings.filter(pl.col("heatmap_uri").is_not_null())
    assert set(opened.heatmaps) == set(scored["tracking_uid"].to_list())
    entries = audit(lake, action="read:study")
    assert entries.height == before + 1
    assert entries["rows"][-1] == len(opened.datasets) + opened.context.rows
    assert entries["detail"][-1] == "context"  # the patient beside the images, in one entry


@pytest.mark.parametrize(
    "uid",
    ["1.2.3.4.5", "1.2'; DROP TABLE x; --", "", "../../vault", "1.2.3\n", "1." + "2" * 70],
)
def test_an_unknown_or_malformed_study_is_refused_and_audited(
    lake: Lake, cast: dict[str, Any], uid: str
) -> None:
    before = audit(lake, action="read:study", outcome="denied").height
    with pytest.raises(AccessDeniedError):
        clinician(cast["clinic"]).open_study(uid)
    assert audit(lake, action="read:study", outcome="denied").height == before + 1


def test_a_study_of_another_institution_is_refused_and_audited(
    lake: Lake, cast: dict[str, Any]
) -> None:
    layer = clinician(cast["clinic"])
    for attempt in (layer.open_study, layer.patient_context, layer.start_review):
        with pytest.raises(AccessDeniedError):
            attempt(cast["foreign"])
    refused = audit(lake, account="dr.kim", outcome="denied")
    assert {"read:study", "read:context", "write:triage"} <= set(refused["action"].to_list())
    events = lake.frame("ops.triage_events", pl.col("study_instance_uid") == cast["foreign"])
    assert events.is_empty()


def test_other_roles_have_no_worklist(lake: Lake, cast: dict[str, Any]) -> None:
    key = lake.frame("silver.citizens")["citizen_key"][0]
    for principal in (
        Principal("alice", "citizen", citizen_key=key, origin="test"),
        Principal("official", "official", origin="test"),
        Principal("admin", "admin", origin="test"),
    ):
        with pytest.raises(AccessDeniedError):
            Access(principal).worklist()
        with pytest.raises(AccessDeniedError):
            Access(principal).open_study(cast["foreign"])


def test_decisions_are_appended_and_the_verification_follows_the_latest(
    lake: Lake, cast: dict[str, Any]
) -> None:
    rows = clinician(cast["clinic"]).worklist()
    uid = rows.filter(pl.col("ai_status") == "scored")["study_instance_uid"][1]
    kim, lee = clinician(cast["clinic"]), clinician(cast["clinic"], "dr.lee")
    assert kim.start_review(uid)
    assert not kim.start_review(uid)  # opening it again adds nothing
    tracking = kim.open_study(uid).findings["tracking_uid"][0]
    kim.decide(tracking, "accepted", "confirmed_on_reading", HOSTILE)
    lee.decide(tracking, "rejected", "artefact")
    events = lake.frame("ops.triage_events", pl.col("tracking_uid") == tracking).sort("at")
    assert events.select("account", "decision").rows() == [
        ("dr.kim", "review"),
        ("dr.kim", "accepted"),
        ("dr.lee", "rejected"),
    ]
    assert events["note"][1] == HOSTILE  # stored as typed, never spliced anywhere
    finding = lake.frame("ai.findings", pl.col("tracking_uid") == tracking)
    assert finding["verification"].to_list() == ["rejected"]
    row = kim.worklist().filter(pl.col("study_instance_uid") == uid)
    assert row.select("status", "decisions", "conflict").row(0) == (
        "rejected",
        "dr.kim: accepted, dr.lee: rejected",
        True,
    )
    writes = audit(lake, action="write:triage", outcome="allowed")
    assert writes.filter(pl.col("detail") == "accepted:confirmed_on_reading").height == 1


def test_two_clinicians_deciding_at_the_same_moment_both_keep_their_decision(
    lake: Lake, cast: dict[str, Any]
) -> None:
    rows = lake.frame(
        "ai.findings",
        (pl.col("institution") == cast["clinic"]) & (pl.col("verification") == "unverified"),
    ).sort("tracking_uid")
    tracking = rows["tracking_uid"][-1]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def decide(account: str, decision: str, reason: str) -> None:
        layer = clinician(cast["clinic"], account)
        barrier.wait()
        try:
            layer.decide(tracking, decision, reason)
        except BaseException as error:  # reported below, with the thread's name
            errors.append(error)

    threads = [
        threading.Thread(target=decide, args=("dr.park", "accepted", "confirmed_on_reading")),
        threading.Thread(target=decide, args=("dr.choi", "amended", "severity")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    events = lake.frame("ops.triage_events", pl.col("tracking_uid") == tracking).sort("at")
    assert sorted(events.select("account", "decision").rows()) == [
        ("dr.choi", "amended"),
        ("dr.park", "accepted"),
    ]
    latest = events.sort("at", "event_id")["decision"][-1]
    assert lake.frame("ai.findings", pl.col("tracking_uid") == tracking)[
        "verification"
    ].to_list() == [latest]


@pytest.mark.parametrize(
    ("decision", "reason", "value"),
    [
        ("accepted", "artefact", None),
        ("approved", "confirmed_on_reading", None),
        ("accepted", "confirmed_on_reading", 3.0),
    ],
)
def test_a_decision_the_policy_does_not_know_is_refused(
    lake: Lake, cast: dict[str, Any], decision: str, reason: str, value: float | None
) -> None:
    layer = clinician(cast["clinic"])
    tracking = lake.frame("ai.findings", pl.col("institution") == cast["clinic"])["tracking_uid"][0]
    before = lake.frame("ops.triage_events").height if delta.exists("ops.triage_events") else 0
    with pytest.raises(ValueError):
        layer.decide(tracking, decision, reason, amended_value=value)
    after = lake.frame("ops.triage_events").height if delta.exists("ops.triage_events") else 0
    assert after == before


def test_a_decision_on_another_institutions_finding_is_refused(
    lake: Lake, cast: dict[str, Any]
) -> None:
    tracking = lake.frame("ai.findings", pl.col("study_instance_uid") == cast["foreign"])[
        "tracking_uid"
    ][0]
    with pytest.raises(AccessDeniedError):
        clinician(cast["clinic"]).decide(tracking, "accepted", "confirmed_on_reading")
    assert lake.frame("ai.findings", pl.col("tracking_uid") == tracking)[
        "verification"
    ].to_list() == ["unverified"]


def test_the_patient_context_lists_recent_diagnoses_and_prior_studies(
    lake: Lake, cast: dict[str, Any]
) -> None:
    studies = lake.frame("silver.imaging_studies", pl.col("institution") == cast["clinic"])
    repeat = (
        studies.filter(pl.col("citizen_key").is_not_null())
        .group_by("patient_key")
        .agg(pl.col("study_instance_uid").sort().last(), pl.len())
        .sort("len", "patient_key", descending=True)
    )
    uid = repeat["study_instance_uid"][0]
    context = clinician(cast["clinic"]).patient_context(uid)
    priors = set(context.priors["study_instance_uid"].to_list())
    same = lake.frame("silver.imaging_studies", pl.col("patient_key") == repeat["patient_key"][0])
    assert priors == set(same["study_instance_uid"].to_list()) - {uid}
    assert set(context.diagnoses["kind"].to_list()) <= {"diagnosis"}
    assert set(context.prescriptions["kind"].to_list()) <= {"prescription"}
    assert context.diagnoses["code"].is_unique().all()
    entry = audit(lake, action="read:context", outcome="allowed")
    assert (
        entry["subject_key"][-1]
        == repeat.filter(pl.col("study_instance_uid") == uid)["patient_key"][0]
    )


def test_a_remote_reading_opens_the_study_to_that_hospital_and_the_reply_returns(
    lake: Lake, cast: dict[str, Any]
) -> None:
    clinic, hospital = clinician(cast["clinic"]), clinician(cast["hospital"], "dr.reader")
    uid = cast["unseen"][0]
    with pytest.raises(AccessDeniedError):
        hospital.open_study(uid)
    assert cast["hospital"] in clinic.reading_hospitals()["ykiho"].to_list()
    with pytest.raises(ValueError):
        clinic.request_reading(uid, cast["stranger"], "please read")  # not a reading hospital
    request = clinic.request_reading(uid, cast["hospital"], "결절 의심, 판독 부탁드립니다")
    listed = hospital.worklist()
    mine = listed.filter(pl.col("study_instance_uid") == uid)
    assert mine.select("basis", "reading").row(0) == ("remote_reading", "requested")
    assert hospital.open_study(uid).basis == "remote_reading"
    assert hospital.patient_context(uid) is not None
    # Only the clinic that sent it asks; another hospital still cannot open it.
    with pytest.raises(AccessDeniedError):
        hospital.request_reading(uid, cast["hospital"], "again")
    with pytest.raises(AccessDeniedError):
        clinician(cast["stranger"], "dr.stranger").open_study(uid)
    with pytest.raises(AccessDeniedError):
        clinic.reply_reading(request, "not mine to answer", "accepted")
    hospital.reply_reading(request, "우상엽 결절 8 mm, CT 추적 권고", "accepted")
    with pytest.raises(ValueError, match="already replied"):
        hospital.reply_reading(request, "twice", "rejected")
    sent = clinic.readings().filter(pl.col("request_id") == request)
    assert sent.select("direction", "status", "report", "decision").row(0) == (
        "sent",
        "replied",
        "우상엽 결절 8 mm, CT 추적 권고",
        "accepted",
    )
    received = hospital.readings().filter(pl.col("request_id") == request)
    assert received["direction"][0] == "received"
    assert audit(lake, account="dr.reader", action="read:study", outcome="allowed")[
        "purpose"
    ].to_list() == ["remote_reading"]


def test_a_cancelled_request_closes_the_study_to_the_hospital(
    lake: Lake, cast: dict[str, Any]
) -> None:
    clinic, hospital = clinician(cast["clinic"]), clinician(cast["hospital"], "dr.reader")
    uid = cast["unseen"][-1]
    request = clinic.request_reading(uid, cast["hospital"], "please read")
    assert hospital.open_study(uid).basis == "remote_reading"
    clinic.cancel_reading(request)
    with pytest.raises(AccessDeniedError):
        hospital.open_study(uid)
    with pytest.raises(ValueError, match="already cancelled"):
        hospital.reply_reading(request, "too late", "accepted")


def test_turnaround_counts_the_findings_and_the_accepted_flags(
    lake: Lake, cast: dict[str, Any]
) -> None:
    layer = clinician(cast["clinic"])
    stats = layer.triage_stats()
    findings = lake.frame("ai.findings", pl.col("institution") == cast["clinic"])
    assert stats["findings"].sum() == findings.height
    assert stats["flags"].sum() == findings["positive"].sum()
    flagged = findings.filter(pl.col("positive") & (pl.col("verification") == "unverified"))
    before = stats["flags_accepted"].sum()
    layer.decide(flagged["tracking_uid"][0], "accepted", "confirmed_on_reading")
    after = layer.triage_stats()
    assert after["flags_accepted"].sum() == before + 1
    shares = after["accepted_share"].drop_nulls().drop_nans()
    assert shares.is_between(0, 1).all()
    city = Access(Principal("admin", "admin", origin="test")).triage_stats()
    assert city["findings"].sum() == lake.frame("ai.findings").height
    with pytest.raises(AccessDeniedError):
        Access(Principal("official", "official", origin="test")).triage_stats()


def test_reads_go_through_the_memo_but_every_call_is_checked_and_audited(
    lake: Lake, cast: dict[str, Any]
) -> None:
    calls: list[str] = []
    kept: dict[tuple[str, tuple[Any, ...]], Any] = {}

    def memo(query: Query) -> Query:
        def cached(*args: Any) -> Any:
            calls.append(query.__name__)
            if (query.__name__, args) not in kept:
                kept[(query.__name__, args)] = query(*args)
            return kept[(query.__name__, args)]

        return cached

    layer = Access(
        Principal("dr.memo", "clinician", institution=cast["clinic"], origin="test"),
        readers=Readers(memo=memo, connect=lake_read.connect),
    )
    first, second = layer.worklist(), layer.worklist()
    assert first.height == second.height
    assert calls.count("findings_of_institution") == 2
    assert audit(lake, account="dr.memo", action="read:worklist").height == 2
    foreign = Access(
        Principal("dr.memo", "clinician", institution=cast["stranger"], origin="test"),
        readers=Readers(memo=memo, connect=lake_read.connect),
    )
    with pytest.raises(AccessDeniedError):  # the cache holds the study; the rule still refuses
        foreign.open_study(sorted(cast["studies"])[0])


def test_a_verified_sr_is_reissued_with_the_clinicians_verdict(
    lake: Lake, cast: dict[str, Any]
) -> None:
    from lakehouse import sr

    layer = clinician(cast["clinic"])
    rows = lake.frame(
        "ai.findings",
        (pl.col("institution") == cast["clinic"]) & pl.col("sr_uri").is_not_null(),
    ).sort("study_instance_uid")
    finding = rows.row(0, named=True)
    key = layer.decide(
        finding["tracking_uid"], "amended", "location", "병변 위치 수정", reissue=True
    )
    assert key is not None and key != finding["sr_uri"]
    document = dicom_store.dataset(key)
    original = dicom_store.dataset(finding["sr_uri"])
    assert document.VerificationFlag == "VERIFIED"
    assert str(document.StudyInstanceUID) == finding["study_instance_uid"]
    assert (
        document.PredecessorDocumentsSequence[0]
        .ReferencedSeriesSequence[0]
        .ReferencedSOPSequence[0]
        .ReferencedSOPInstanceUID
        == original.SOPInstanceUID
    )
    verdicts = {v.tracking_uid: v for v in sr.read_verdicts(document)}
    assert verdicts[finding["tracking_uid"]].decision == "amended"
    assert verdicts[finding["tracking_uid"]].note == "병변 위치 수정"
    event = lake.frame("ops.triage_events", pl.col("sr_uri") == key)
    assert event["decision"].to_list() == ["amended"]
