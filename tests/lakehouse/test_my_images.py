"""My images through the access layer, on the built demo city: a citizen lists and opens their
own studies (the originals from the DICOM store), downloads one as a zip of its DICOM files,
and asks a hospital of their choice for a second opinion, which reaches that hospital's
remote-reading worklist on the citizen's consent and returns with its reply, to the citizen and
to their clinic when they chose so. Another citizen's study is refused by every route and every
attempt audited; a hospital the citizen did not ask cannot open the study."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import polars as pl
import pydicom
import pytest

from lakehouse.access import Access, AccessDeniedError, Principal
from tests.lakehouse.test_triage_access import audit, clinician
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration]
REPLY = "양성 육아종으로 보입니다. 1년 뒤 추적 검사 권합니다."
READERS = ["01", "11"]  # the institution classes that read for others (lakehouse.queries)


@pytest.fixture(scope="module", autouse=True)
def lake(platform_lake: Lake) -> Iterator[Lake]:
    with platform_lake.active():
        yield platform_lake


@pytest.fixture(scope="module")
def cast(lake: Lake) -> dict[str, Any]:
    """Alice, a citizen with scored studies taken at clinics that read for no one (the most
    such studies among those two reading hospitals never saw: no visit, no study); Bob, another
    citizen with a study; those two hospitals: the one she asks and the one she does not."""
    institutions = lake.frame("silver.institutions")
    readers = institutions.filter(pl.col("class_code").is_in(READERS))["ykiho"].to_list()
    studies = lake.frame("silver.imaging_studies", pl.col("citizen_key").is_not_null())
    scored = lake.frame("ai.findings", pl.col("status") == "scored")["study_instance_uid"]
    at_clinics = studies.filter(
        ~pl.col("institution").is_in(readers) & pl.col("study_instance_uid").is_in(scored.implode())
    )
    counts = at_clinics.group_by("citizen_key").len().sort("len", "citizen_key", descending=True)

    def unseen(key: str) -> list[str]:
        timeline = lake.frame("gold.citizen_timeline", pl.col("citizen_key") == key)
        seen = set(timeline["institution"].drop_nulls().to_list()) | set(
            studies.filter(pl.col("citizen_key") == key)["institution"].to_list()
        )
        return [h for h in sorted(readers) if h not in seen]

    alice = next(k for k in counts["citizen_key"].to_list() if len(unseen(k)) >= 2)
    bob = next(k for k in counts["citizen_key"].to_list() if k != alice)
    asked, other = unseen(alice)[:2]
    mine = studies.filter(pl.col("citizen_key") == alice)
    uid = at_clinics.filter(pl.col("citizen_key") == alice).sort("study_instance_uid")
    return {
        "alice": alice,
        "bob": bob,
        "asked": asked,
        "other": other,
        "studies": set(mine["study_instance_uid"].to_list()),
        "study": uid["study_instance_uid"][0],
        "clinic": uid["institution"][0],
        "bobs": studies.filter(pl.col("citizen_key") == bob)["study_instance_uid"][0],
    }


def citizen(key: str, account: str = "alice") -> Access:
    return Access(Principal(account, "citizen", citizen_key=key, origin="test"))


def test_a_citizen_lists_exactly_their_studies_newest_first(
    lake: Lake, cast: dict[str, Any]
) -> None:
    rows = citizen(cast["alice"]).my_studies(cast["alice"])
    assert set(rows["study_instance_uid"].to_list()) == cast["studies"]
    days = rows["study_datetime"].drop_nulls().to_list()
    assert days == sorted(days, reverse=True)
    assert cast["study"] in rows.filter(pl.col("services").is_not_null())["study_instance_uid"]
    entry = audit(lake, account="alice", action="read:my_images")
    assert entry.select("purpose", "subject_key", "rows").rows()[-1] == (
        "self",
        cast["alice"],
        rows.height,
    )


def test_opening_my_study_reads_its_originals_and_findings_and_audits_once(
    lake: Lake, cast: dict[str, Any]
) -> None:
    before = audit(lake, action="read:my_study").height
    opened = citizen(cast["alice"]).my_study(cast["study"])
    assert opened.basis == "self"
    assert len(opened.datasets) == opened.instances.height > 0
    assert {str(ds.StudyInstanceUID) for ds in opened.datasets} == {cast["study"]}
    assert not opened.findings.is_empty()
    assert set(opened.findings["verification"].to_list()) <= {
        "unverified",
        "accepted",
        "rejected",
        "amended",
    }
    entries = audit(lake, action="read:my_study")
    assert entries.height == before + 1
    assert entries.select("subject_key", "rows", "outcome").rows()[-1] == (
        cast["alice"],
        len(opened.datasets),
        "allowed",
    )


def test_my_study_downloads_as_a_zip_of_its_dicom_files_and_is_audited_once(
    lake: Lake, cast: dict[str, Any]
) -> None:
    name, data = citizen(cast["alice"]).export_study(cast["study"])
    assert name.endswith(".zip") and name.startswith("study-")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = archive.namelist()
        datasets = [pydicom.dcmread(io.BytesIO(archive.read(f))) for f in files]
    instances = lake.frame(
        "silver.imaging_instances", pl.col("study_instance_uid") == cast["study"]
    )
    assert len(files) == instances.height > 0
    assert all(f.startswith("DICOM/") and f.endswith(".dcm") for f in files)
    assert {str(ds.SOPInstanceUID) for ds in datasets} == set(instances["sop_instance_uid"])
    (entry,) = audit(lake, action="export:study").rows(named=True)
    assert (entry["subject_key"], entry["rows"], entry["purpose"]) == (
        cast["alice"],
        instances.height,
        "self",
    )
    assert entry["detail"] == f"{instances.height} instances"


@pytest.mark.security
def test_another_citizens_study_is_refused_by_every_route_and_audited(
    lake: Lake, cast: dict[str, Any]
) -> None:
    alice = citizen(cast["alice"])
    attempts = (
        lambda: alice.my_study(cast["bobs"]),
        lambda: alice.export_study(cast["bobs"]),
        lambda: alice.ask_second_opinion(cast["bobs"], cast["asked"], "please"),
        lambda: alice.my_studies(cast["bob"]),
    )
    for attempt in attempts:
        before = audit(lake, outcome="denied", subject_key=cast["bob"]).height
        with pytest.raises(AccessDeniedError):
            attempt()
        assert audit(lake, outcome="denied", subject_key=cast["bob"]).height == before + 1
    denied = audit(lake, account="alice", outcome="denied")["action"].to_list()
    assert {"read:my_study", "export:study", "write:reading", "read:my_images"} <= set(denied)
    # A made-up or injected UID (a link's query parameter) is refused before any read.
    for forged in ("1.2.3.999999", "1.2'; DROP TABLE x; --", "9" * 65):
        with pytest.raises(AccessDeniedError):
            alice.my_study(forged)
    assert audit(lake, account="alice", outcome="denied", action="read:my_study").height >= 4
    # A clinician never reaches a study through the citizen's routes.
    with pytest.raises(AccessDeniedError):
        clinician(cast["clinic"], "dr.kim").my_study(cast["study"])


@pytest.mark.security
def test_a_carer_opens_the_parents_study_only_while_the_proxy_grant_stands(
    lake: Lake, cast: dict[str, Any]
) -> None:
    carer = citizen(cast["bob"], "bob")
    with pytest.raises(AccessDeniedError):
        carer.my_study(cast["study"])
    grant = citizen(cast["alice"]).grant_proxy("bob")
    with pytest.raises(AccessDeniedError):  # not until the carer accepts
        carer.my_study(cast["study"])
    carer.accept_proxy(grant.grant_id)
    assert carer.my_study(cast["study"]).basis == "proxy"
    citizen(cast["alice"]).revoke(grant.grant_id)
    with pytest.raises(AccessDeniedError):
        carer.export_study(cast["study"])


@pytest.mark.security
def test_a_second_opinion_reaches_only_the_hospital_asked_and_its_reply_returns(
    lake: Lake, cast: dict[str, Any]
) -> None:
    alice = citizen(cast["alice"])
    hospital = clinician(cast["asked"], "dr.reader")
    stranger = clinician(cast["other"], "dr.other")
    uid = cast["study"]
    with pytest.raises(AccessDeniedError):
        hospital.open_study(uid)  # never saw Alice: only her request opens it
    offered = alice.reading_hospitals()["ykiho"].to_list()
    assert cast["asked"] in offered and cast["clinic"] not in offered
    with pytest.raises(ValueError):
        alice.ask_second_opinion(uid, cast["clinic"], "please")  # not a reading hospital
    with pytest.raises(ValueError):
        alice.ask_second_opinion(uid, cast["asked"], "   ")
    request = alice.ask_second_opinion(
        uid, cast["asked"], "결절이 걱정됩니다. 다른 의견을 듣고 싶어요", copy_to_clinic=True
    )
    (event,) = lake.frame("ops.reading_requests", pl.col("request_id") == request).rows(named=True)
    assert (event["basis"], event["actor"], event["kind"]) == (
        "citizen_consent",
        "alice",
        "second_opinion",
    )
    assert (event["from_institution"], event["to_institution"], event["copy_to"]) == (
        None,
        cast["asked"],
        cast["clinic"],
    )
    # The hospital asked has it on its worklist and opens it; another hospital still cannot.
    listed = hospital.worklist().filter(pl.col("study_instance_uid") == uid)
    assert listed.select("basis", "reading").row(0) == ("remote_reading", "requested")
    assert hospital.open_study(uid).basis == "remote_reading"
    with pytest.raises(AccessDeniedError):
        stranger.open_study(uid)
    assert hospital.readings().filter(pl.col("request_id") == request)["direction"][0] == (
        "received"
    )
    hospital.reply_reading(request, REPLY, "rejected")
    mine = alice.my_study(uid).requests.filter(pl.col("request_id") == request)
    assert mine.select("status", "report", "decision", "basis").row(0) == (
        "replied",
        REPLY,
        "rejected",
        "citizen_consent",
    )
    assert mine["hospital_name"][0]
    assert alice.my_studies(cast["alice"]).filter(pl.col("study_instance_uid") == uid)["reading"][
        0
    ] == ("replied")
    # Her clinic receives the reply because she chose so.
    copy = clinician(cast["clinic"], "dr.kim").readings().filter(pl.col("request_id") == request)
    assert copy.select("direction", "status").row(0) == ("copied", "replied")
    assert copy["counterpart"][0]
    # Every step is audited, and the hospital's read shows under "who viewed my record".
    wrote = audit(lake, action="write:reading", subject_key=cast["alice"])
    assert {"alice", "dr.reader"} <= set(wrote["account"].to_list())
    assert "citizen_consent" in " ".join(wrote["detail"].drop_nulls().to_list())
    viewed = alice.who_viewed_me()
    assert "remote_reading" in viewed.filter(pl.col("account") == "dr.reader")["purpose"]


@pytest.mark.security
def test_without_a_copy_the_clinic_is_not_told_and_a_cancelled_request_closes_the_study(
    lake: Lake, cast: dict[str, Any]
) -> None:
    alice = citizen(cast["alice"])
    hospital = clinician(cast["other"], "dr.second")
    uid = cast["study"]
    request = alice.ask_second_opinion(uid, cast["other"], "판독 부탁드립니다", kind="reading")
    assert hospital.open_study(uid).basis == "remote_reading"
    readings = clinician(cast["clinic"], "dr.kim").readings()
    assert request not in readings["request_id"].to_list()
    with pytest.raises(AccessDeniedError):
        citizen(cast["bob"], "bob").cancel_second_opinion(request)
    alice.cancel_second_opinion(request)
    with pytest.raises(AccessDeniedError):
        hospital.open_study(uid)
    with pytest.raises(ValueError, match="already cancelled"):
        hospital.reply_reading(request, "too late", "accepted")
