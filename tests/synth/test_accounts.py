"""The demo accounts file: every role, each account tied to what the city delivered, read back
from the deliveries the way the pipelines read them, and the same file for the same arguments."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pydicom
import pytest

from synth.accounts import FILE, NOT_SCORED, ROLE_ORDER
from synth.city import generate
from synth.config import CityConfig
from tests.conftest import City

pytestmark = pytest.mark.slow

STAFF = {"clinic.doctor", "phc.doctor", "hospital.radiologist", "city.official", "platform.admin"}
# What every city has; citizen.imaging needs an app user with a scored study (the demo has one;
# the small city's five app users were never imaged: checked below).
ALWAYS = STAFF | {"citizen.senior", "citizen.carer"}
DEVICE_MEMBER_COLUMN = {"checkup": "회원번호", "gait": "member_no", "balance": "member_no"}


@pytest.fixture(params=["small_city", "demo_city"])
def city(request: pytest.FixtureRequest) -> City:
    city: City = request.getfixturevalue(request.param)
    return city


def _doc(city: City) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((city.out / FILE).read_text(encoding="utf-8"))
    return doc


def _accounts(city: City) -> dict[str, dict[str, Any]]:
    return {a["username"]: a for a in _doc(city)["accounts"]}


def _age(birth: str, cfg: CityConfig) -> int:
    """Age on the window's last day from a registry birth date (YYYYMMDD)."""
    b, last = date(int(birth[:4]), int(birth[4:6]), int(birth[6:])), cfg.end - timedelta(days=1)
    return last.year - b.year - ((last.month, last.day) < (b.month, b.day))


def _residents_at_end(city: City) -> pl.DataFrame:
    """The resident register as delivered, minus everyone a change file says died or left."""
    residents = city.table("registry/citizens", "residents_")
    changes = city.table("registry/citizens", "resident_changes_")
    arrived = changes.filter(pl.col("EVENT_CD").is_in(["BIRTH", "MOVE_IN"]))
    gone = changes.filter(pl.col("EVENT_CD").is_in(["DEATH", "MOVE_OUT"]))["RRN"]
    cols = ["RRN", "NAME", "BIRTH_DT", "SGG_CD", "EMD_CD"]
    everyone = pl.concat([residents.select(cols), arrived.select(cols)]).unique("RRN")
    return everyone.filter(~pl.col("RRN").is_in(gone.implode()))


def _app_users_at_end(city: City) -> set[str]:
    """Registration numbers of app users whose account was not deleted in the window."""
    events = city.json_lines("programme/app_events", lambda fault: fault is None)
    user_of = {e["app_user_id"]: e["rrn"] for e in events if e["event_type"] == "signup"}
    deleted = {e["app_user_id"] for e in events if e["event_type"] == "account_deleted"}
    return {rrn for user, rrn in user_of.items() if user not in deleted}


def _measured_members(city: City) -> dict[str, str]:
    """Registration number -> member number of members with device rows delivered."""
    members = city.table("centre/members", "members_")
    measured: set[str] = set()
    for device, column in DEVICE_MEMBER_COLUMN.items():
        measured |= set(city.table(f"centre/{device}", f"{device}_")[column].to_list())
    return {
        rrn: no
        for rrn, no in members.select("주민등록번호", "회원번호").iter_rows()
        if no in measured
    }


def _scored_studies(city: City) -> pl.DataFrame:
    """Studies routed to an AI service whose files arrived whole, with the patient read from the
    DICOM header (the ground truth never holds the registration number)."""
    broken = city.faulty_files()
    rows = []
    for line in (
        (city.out / "ground_truth" / "imaging_studies.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ):
        t = json.loads(line)
        if t["expected_route"] in NOT_SCORED or broken & set(t["files"]):
            continue
        ds = pydicom.dcmread(city.out / t["files"][0], stop_before_pixels=True)
        rows.append(
            {
                "rrn": str(ds.PatientID),
                "accession": t["accession"],
                "ykiho": t["institution_code"],
                "route": t["expected_route"],
            }
        )
    return pl.DataFrame(
        rows, schema={"rrn": pl.Utf8, "accession": pl.Utf8, "ykiho": pl.Utf8, "route": pl.Utf8}
    )


def test_every_role_is_listed_in_a_readable_sorted_file(city: City) -> None:
    text = (city.out / FILE).read_text(encoding="utf-8")
    doc = _doc(city)
    assert doc["synthetic"] is True and "Not real people" in doc["note"]
    assert "\\u" not in text and "세" in text  # Korean written as itself (ensure_ascii=False)
    accounts = doc["accounts"]
    assert {a["role"] for a in accounts} == set(ROLE_ORDER)
    names = [a["username"] for a in accounts]
    assert len(set(names)) == len(names) and set(names) >= ALWAYS
    assert names == [
        a["username"]
        for a in sorted(accounts, key=lambda a: (ROLE_ORDER.index(a["role"]), a["username"]))
    ]
    citizens = [a for a in accounts if a["role"] == "citizen"]
    assert 2 <= len(citizens) <= 5  # senior, imaging, carer, unlinked, withdrawn (if any)
    for a in accounts:
        assert a["display_name"] and a["who"] and " / " in a["who"]
        assert ("institution" in a) == (a["role"] == "clinician")
        assert ("resident_registration_number" in a) == (a["role"] == "citizen")
    manifest = json.loads((city.out / "MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["accounts"]["demo_accounts"] == len(accounts)


def test_the_demo_city_has_every_citizen_role(demo_city: City) -> None:
    assert {"citizen.senior", "citizen.imaging", "citizen.carer"} <= set(_accounts(demo_city))


def test_the_demo_citizens_cover_each_consent_state(demo_city: City) -> None:
    """Read from the delivered event log: the unlinked citizen never completed a record link
    under the record-link consent, the withdrawn one withdrew it, the senior's link stands."""
    events = demo_city.json_lines("programme/app_events", lambda fault: fault is None)
    user = {e["rrn"]: e["app_user_id"] for e in events if e["event_type"] == "signup"}
    accounts = _accounts(demo_city)
    assert {"citizen.unlinked", "citizen.withdrawn"} <= set(accounts)

    def mine(username: str) -> list[dict[str, Any]]:
        me = user[accounts[username]["resident_registration_number"]]
        return sorted((e for e in events if e["app_user_id"] == me), key=lambda e: e["occurred_at"])

    def linked(history: list[dict[str, Any]]) -> bool:
        consented = done = False
        for e in history:
            if e["event_type"] == "consent" and e["consent_type"] == "hira_record_link":
                consented, done = True, False
            elif e["event_type"] == "consent_withdrawn" and e["consent_type"] == "hira_record_link":
                consented = done = False
            elif e["event_type"] == "record_link_completed" and e["status"] == "completed":
                done = consented
        return consented and done

    assert linked(mine("citizen.senior")) and "기록 연계 완료" in accounts["citizen.senior"]["who"]
    assert not linked(mine("citizen.unlinked"))
    assert "no record link yet" in accounts["citizen.unlinked"]["who"]
    withdrawn = mine("citizen.withdrawn")
    assert not linked(withdrawn)
    assert any(
        e["event_type"] == "consent_withdrawn" and e["consent_type"] == "hira_record_link"
        for e in withdrawn
    )


def test_citizens_are_registered_resident_claimed_and_signed_up(city: City) -> None:
    residents = _residents_at_end(city)
    claimed = set(city.table("claims", "T200_")["JID"].to_list())
    users = _app_users_at_end(city)
    for a in _accounts(city).values():
        if a["role"] != "citizen":
            continue
        rrn = a["resident_registration_number"]
        assert re.fullmatch(r"\d{6}-\d{7}", rrn)
        row = residents.filter(pl.col("RRN") == rrn)
        assert row.height == 1, f"{a['username']} is not resident at the end"
        assert row["NAME"][0] == a["display_name"]
        assert rrn in claimed, f"{a['username']} has no claims statement"
        assert rrn in users, f"{a['username']} has no open app account"
        assert a["who"].startswith(f"{_age(row['BIRTH_DT'][0], city.cfg)}세 ")


def test_the_senior_is_the_best_measured_centre_member_there_is(city: City) -> None:
    accounts = _accounts(city)
    senior = accounts["citizen.senior"]
    residents = _residents_at_end(city)
    users = _app_users_at_end(city)
    measured = _measured_members(city)
    ages = {r: _age(b, city.cfg) for r, b in residents.select("RRN", "BIRTH_DT").iter_rows()}
    # Who could have been chosen: measured members who are app users and resident at the end.
    pool = {r for r in measured if r in users and r in ages}
    rrn = senior["resident_registration_number"]
    assert rrn in pool  # both cities have at least one
    assert measured[rrn] in senior["who"]
    assert ages[rrn] >= 75 or not any(ages[r] >= 75 for r in pool)
    # The carer candidate: another adult app user, in the senior's district when one lives there.
    carer = accounts["citizen.carer"]["resident_registration_number"]
    taken = {a.get("resident_registration_number") for a in accounts.values()} - {carer}
    assert ages[carer] >= 19 and carer not in taken
    district = dict(residents.select("RRN", "SGG_CD").iter_rows())
    neighbours = {r for r in users if r in ages and ages[r] >= 19 and r not in taken}
    if any(district[r] == district[rrn] for r in neighbours):
        assert district[carer] == district[rrn]


def test_the_imaging_citizen_has_studies_the_ai_services_read(city: City) -> None:
    accounts = _accounts(city)
    studies = _scored_studies(city)
    if "citizen.imaging" not in accounts:  # only when no other app user was imaged at all
        users = _app_users_at_end(city) - {
            accounts["citizen.senior"]["resident_registration_number"]
        }
        residents = set(_residents_at_end(city)["RRN"].to_list())
        assert not set(studies["rrn"].to_list()) & users & residents
        return
    rrn = accounts["citizen.imaging"]["resident_registration_number"]
    mine = studies.filter(pl.col("rrn") == rrn)
    assert mine.height >= 1
    # The DICOM really is under imaging/, from an institution of the study.
    assert all((city.out / "imaging" / y).is_dir() for y in mine["ykiho"].to_list())
    assert accounts["clinic.doctor"]["institution"] in set(mine["ykiho"].to_list())


def test_clinicians_work_where_the_registries_say(city: City) -> None:
    accounts = _accounts(city)
    institutions = city.table("registry/institutions", "institutions_")
    enrolled = set(city.table("registry/ai_platform", "enrolment_round")["YKIHO"].to_list())
    kind = dict(institutions.select("YKIHO", "CL_CD").iter_rows())
    district = dict(institutions.select("YKIHO", "SGGU_CD").iter_rows())
    sent = set(_scored_studies(city)["ykiho"].to_list())
    clinicians = {u: a["institution"] for u, a in accounts.items() if a["role"] == "clinician"}
    assert all(re.fullmatch(r"\d{8}", y) and y in kind for y in clinicians.values())

    clinic = clinicians["clinic.doctor"]
    assert clinic in enrolled and clinic in sent and kind[clinic] in {"31", "11", "21"}
    if "citizen.imaging" in accounts:  # the demo: a clinic (의원) that imaged our citizen
        assert kind[clinic] == "31"
    health_centre = clinicians["phc.doctor"]
    senior = accounts["citizen.senior"]["resident_registration_number"]
    home = _residents_at_end(city).filter(pl.col("RRN") == senior)["SGG_CD"][0]
    assert kind[health_centre] == "71" and district[health_centre] == home
    hospital = clinicians["hospital.radiologist"]
    assert kind[hospital] == "01" and hospital in enrolled


def test_passwords_are_long_distinct_and_easy_to_type(city: City) -> None:
    passwords = [a["password"] for a in _doc(city)["accounts"]]
    assert len(set(passwords)) == len(passwords)
    for password in passwords:
        assert len(password) >= 12 and re.fullmatch(r"[a-z]+-[a-z]+-\d{4}", password)


def test_the_platform_loader_accepts_the_file(demo_city: City, tmp_path: Path) -> None:
    from lakehouse import accounts

    doc = _doc(demo_city)
    where = tmp_path / "accounts.json"
    assert accounts.load_demo(demo_city.out / FILE, where) == len(doc["accounts"])
    loaded = accounts.load(where)
    assert set(loaded) == {a["username"] for a in doc["accounts"]}
    for a in doc["accounts"]:
        assert loaded[a["username"]].role == a["role"]
        assert loaded[a["username"]].institution == a.get("institution")


def test_the_same_arguments_give_the_same_file(tmp_path: Path) -> None:
    cfg = CityConfig(citizens=150, start=date(2025, 3, 1), days=31, seed=7, inject_faults=True)
    first = generate(cfg, tmp_path / "a")
    second = generate(cfg, tmp_path / "b")
    data = (tmp_path / "a" / FILE).read_bytes()
    assert data == (tmp_path / "b" / FILE).read_bytes()
    assert first.counts["accounts"] == second.counts["accounts"]
    assert json.loads(data)["accounts"]
