"""The emergency summary and "export everything" on the built small city: every exported IPS
Bundle passes the IPS check, the access layer refuses another citizen's summary, IPS and export
(and audits each attempt), an export's audit row says what it held, and the two pages show the
summary and offer the downloads (AppTest)."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from apps.common.i18n import day, t
from lakehouse import accounts, queries
from lakehouse.access import Access, AccessDeniedError, Principal
from lakehouse.access.gate import Gate
from lakehouse.audit import AUDIT
from tests.fhir.ips_check import problems
from tests.lakehouse.test_access import link_record
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# The small city covers March to May 2025: the summary is made the day after, so "recent" and
# "current" have something to hold.
NOW = datetime(2025, 5, 30, 3, 0, tzinfo=UTC)
PASSWORD = "demo-password-1"
APP = str(Path(__file__).resolve().parents[2] / "apps/citizen/streamlit_app.py")


@pytest.fixture(scope="module")
def lake(built_small: Lake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """A copy of the built small city for this module's audit rows (DICOM objects linked)."""
    root = tmp_path_factory.mktemp("summary") / "lakehouse"
    shutil.copytree(built_small.root, root, ignore=shutil.ignore_patterns("objects"))
    shutil.copytree(built_small.root / "objects", root / "objects", copy_function=os.link)
    copied = Lake(root, built_small.sources)
    with copied.active():
        yield copied


@pytest.fixture(scope="module")
def people(lake: Lake) -> dict[str, str]:
    """``imaged``: a citizen with an AI-scored study, diagnoses and a medicine current at NOW;
    ``other``: another citizen with diagnoses; ``clinic``: where ``imaged`` was seen."""
    scored = lake.frame("ai.findings", pl.col("status") == "scored")
    prescribed = lake.frame("silver.prescriptions").filter(
        (pl.col("issued_on") <= NOW.date())
        & (pl.col("issued_on") + pl.duration(days=pl.col("days")) > NOW.date())
    )
    imaged = sorted(
        set(scored["citizen_key"].drop_nulls()) & set(prescribed["citizen_key"].to_list())
    )[0]
    diagnosed = lake.frame("silver.diagnoses")["citizen_key"].unique().sort()
    other = next(k for k in diagnosed if k != imaged)
    clinic = lake.frame("silver.claims", pl.col("citizen_key") == imaged)["ykiho"][0]
    # Their record links stand, so the national extracts reach their summaries (the consent
    # rule; tests/lakehouse/test_access_rules.py shows the summary of an unlinked citizen).
    for key in (imaged, other):
        link_record(lake, key, NOW - timedelta(days=80))
    return {"imaged": imaged, "other": other, "clinic": clinic}


def citizen(key: str, account: str = "me") -> Access:
    return Access(Principal(account, "citizen", citizen_key=key), clock=lambda: NOW)


def audit_rows(lake: Lake, action: str) -> pl.DataFrame:
    return lake.frame(AUDIT, pl.col("action") == action)


def test_every_exported_bundle_passes_the_ips_check(lake: Lake, people: dict[str, str]) -> None:
    keys = lake.frame("silver.citizens")["citizen_key"].sort().to_list()[:12]
    for key in [people["imaged"], *keys]:
        bundle = json.loads(citizen(key).ips_bundle(key))
        assert problems(bundle) == [], key
    bundle = json.loads(citizen(people["imaged"]).ips_bundle(people["imaged"]))
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert {"Condition", "MedicationStatement", "DiagnosticReport", "ImagingStudy"} <= set(types)
    report = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    assert "synthetic data" in report["conclusion"] and "not a diagnosis" in report["conclusion"]


def test_the_summary_holds_recent_problems_and_todays_medicines(
    lake: Lake, people: dict[str, str]
) -> None:
    key = people["imaged"]
    record = citizen(key).emergency_summary(key)
    coded = set(lake.frame("silver.diagnoses", pl.col("citizen_key") == key)["kcd"].to_list())
    assert record.problems.height and set(record.problems["kcd"].to_list()) <= coded
    assert record.medicines.height
    for row in record.medicines.iter_rows(named=True):
        assert row["start"] <= NOW.date() < row["start"] + timedelta(days=row["days"])
    assert record.studies.height and record.findings.height
    assert record.name  # their own summary carries their name
    rows = audit_rows(lake, "read:summary").filter(pl.col("subject_key") == key)
    assert rows["outcome"].to_list()[-1] == "allowed" and rows["purpose"].to_list()[-1] == "self"


@pytest.mark.security
def test_another_citizens_summary_ips_and_export_are_refused_and_audited(
    lake: Lake, people: dict[str, str]
) -> None:
    me, other = people["imaged"], people["other"]
    asking = citizen(me, "intruder")
    for call, action in (
        (asking.emergency_summary, "read:summary"),
        (asking.ips_bundle, "export:ips"),
        (asking.export_all, "export:all"),
    ):
        with pytest.raises(AccessDeniedError):
            call(other)
        refused = audit_rows(lake, action).filter(
            (pl.col("account") == "intruder") & (pl.col("subject_key") == other)
        )
        assert refused["outcome"].to_list() == ["denied"], action
    with pytest.raises(AccessDeniedError) as error:
        asking.ips_bundle("' OR 1=1 --")
    assert error.value.code == "not_a_key"
    stranger = Access(
        Principal("dr.nobody", "clinician", institution="99999999"), clock=lambda: NOW
    )
    with pytest.raises(AccessDeniedError):
        stranger.ips_bundle(me)


@pytest.mark.security
def test_a_clinician_gets_the_ips_without_the_name_and_never_the_export(
    lake: Lake, people: dict[str, str]
) -> None:
    key = people["imaged"]
    doctor = Access(
        Principal("dr.kim", "clinician", institution=people["clinic"]), clock=lambda: NOW
    )
    bundle = json.loads(doctor.ips_bundle(key))
    patient = bundle["entry"][1]["resource"]
    assert patient["name"] == [{"use": "anonymous", "text": key}]
    assert problems(bundle) == []
    with pytest.raises(AccessDeniedError):
        doctor.export_all(key)
    assert audit_rows(lake, "export:all").filter(pl.col("account") == "dr.kim")[
        "outcome"
    ].to_list() == ["denied"]


def test_export_everything_is_one_zip_of_fhir_and_csv_and_its_audit_says_what_it_held(
    lake: Lake, people: dict[str, str]
) -> None:
    key = people["imaged"]
    archive = zipfile.ZipFile(io.BytesIO(citizen(key).export_all(key)))
    names = set(archive.namelist())
    assert {"README.txt", "everything.json", "ips.json", "diagnoses.csv"} <= names
    everything = json.loads(archive.read("everything.json"))
    assert everything["type"] == "collection"
    urls = {e["fullUrl"] for e in everything["entry"]}
    refs = {
        r["reference"]
        for e in everything["entry"]
        for r in [e["resource"].get("subject", {})]
        if "reference" in r
    }
    assert refs <= urls
    assert problems(json.loads(archive.read("ips.json"))) == []
    diagnoses = pl.read_csv(archive.read("diagnoses.csv"))
    assert diagnoses.height and set(diagnoses["citizen_key"].to_list()) == {key}
    assert "not a diagnosis" in archive.read("README.txt").decode("utf-8")
    row = audit_rows(lake, "export:all").filter(pl.col("subject_key") == key).row(-1, named=True)
    csv_rows = sum(
        pl.read_csv(archive.read(n), infer_schema=False).height
        for n in names
        if n.endswith(".csv") and archive.read(n).strip()
    )
    assert row["outcome"] == "allowed" and row["rows"] == csv_rows
    assert f"diagnoses.csv {diagnoses.height}" in row["detail"]


@pytest.fixture(scope="module")
def signed_in(
    lake: Lake, people: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """An accounts file with the imaged citizen, a session key, and the access layer's clock
    at NOW (the one thing that cannot be real here: the city lies in 2025)."""
    folder = tmp_path_factory.mktemp("accounts")
    hashed = accounts.hash_password(PASSWORD)
    roster = {
        "senior": accounts.Account(
            "senior", "citizen", citizen_key=people["imaged"], password_hash=hashed
        )
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GJH_ACCOUNTS", str(accounts.save(roster, folder / "accounts.json")))
        patch.setenv("GJH_SESSION_KEY", "cd" * 32)
        patch.setattr(Gate.__init__, "__defaults__", (lambda: NOW, None))
        yield


def _page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="sign_in_name").input("senior")
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.button[0].click()
    at.run()
    at.switch_page(page)
    return at.run()


def _html(at: AppTest) -> str:
    return "\n".join(str(e.proto.body) for e in at.get("html"))


def test_the_summary_page_shows_the_summary_and_offers_the_ips(signed_in: None) -> None:
    at = _page("app_pages/summary.py")
    assert not at.exception and not at.error
    assert at.title[0].value == t("citizen.summary.title", "ko")
    shown = _html(at)
    for key in ("problems", "medicines", "allergies", "imaging", "results"):
        assert t(f"citizen.summary.{key}", "ko") in shown
    assert t("citizen.summary.allergies_none", "ko").split(":")[0] in shown
    assert t("citizen.summary.ai_label", "ko") in shown
    assert t("citizen.summary.problems_none", "ko") not in shown
    assert "@media print" in shown
    downloads = at.get("download_button")
    assert [d.proto.label for d in downloads] == [t("citizen.summary.download", "ko")]


def test_the_summary_page_says_the_day_its_medicines_are_counted_from(
    signed_in: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claims arrive months late: a summary made two months after the extracts end counts the
    medicines on the extracts' last day, and says that day beside them, not today."""
    later = NOW + timedelta(days=60)
    monkeypatch.setattr(Gate.__init__, "__defaults__", (lambda: later, None))
    end = queries.medicines_extract_end()
    assert end is not None and end < later.date()
    at = _page("app_pages/summary.py")
    assert not at.exception and not at.error
    shown = _html(at)
    note = escape(t("citizen.summary.medicines_as_of", "ko", day=day(end, "ko")))
    assert note in shown
    medicines, allergies = (
        t("citizen.summary.medicines", "ko"),
        t("citizen.summary.allergies", "ko"),
    )
    assert shown.index(medicines) < shown.index(note) < shown.index(allergies)
    assert day(later, "ko") not in shown.split(medicines)[1].split(allergies)[0]


def test_the_ips_says_the_day_its_medicines_are_counted_from(
    lake: Lake, people: dict[str, str]
) -> None:
    """The IPS medications section opens with the as-of day, and its statements are active on
    that day (the claims end before the day the summary is made)."""
    later = NOW + timedelta(days=60)
    key = people["imaged"]
    layer = Access(Principal("me", "citizen", citizen_key=key), clock=lambda: later)
    end = queries.medicines_extract_end()
    assert end is not None and end < later.date()
    bundle = json.loads(layer.ips_bundle(key))
    resources = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    composition = bundle["entry"][0]["resource"]
    (section,) = [s for s in composition["section"] if s["code"]["coding"][0]["code"] == "10160-0"]
    assert f"As of {end.isoformat()}" in section["text"]["div"]
    statements = [resources[e["reference"]] for e in section["entry"]]
    assert statements and {s["status"] for s in statements} == {"active"}
    assert all(s["effectivePeriod"]["end"] >= end.isoformat() for s in statements)
    assert not problems(bundle)


def test_the_export_page_offers_everything_as_one_zip(signed_in: None) -> None:
    at = _page("app_pages/export.py")
    assert not at.exception and not at.error
    assert at.title[0].value == t("citizen.export.title", "ko")
    downloads = at.get("download_button")
    assert [d.proto.label for d in downloads] == [t("citizen.export.download", "ko")]
