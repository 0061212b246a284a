"""Finding a patient (``Access.find_patients``) on the built demo city: by name and date of birth
through the identity vault, or by registration number hashed as at the bronze boundary; only
the pseudonymous key, age and sex come back; only clinicians may search; and the access log
says who searched, on what basis and how many matched, one row per person found, without the
name, birth date or number searched for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from lakehouse.access import Access, AccessDeniedError, Principal
from tests.conftest import City
from tests.pipelines.conftest import Lake, assert_no_identifiers, parquet_files

pytestmark = [pytest.mark.security, pytest.mark.integration]
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def lake(platform_lake: Lake) -> Iterator[Lake]:
    with platform_lake.active():
        yield platform_lake


@pytest.fixture(scope="module")
def resident(demo_city: City) -> dict[str, Any]:
    """A resident of the first-day register as the registry delivered them (number, name,
    birth date, sex), whose name and birth date no one else shares."""
    register = demo_city.table("registry/citizens", "residents_")
    unique = register.filter(pl.struct("NAME", "BIRTH_DT").is_unique())
    row = unique.sort("RRN").row(0, named=True)
    return {
        "rrn": row["RRN"],
        "name": row["NAME"],
        "birth": datetime.strptime(row["BIRTH_DT"], "%Y%m%d").date(),
        "sex": {"1": "M", "2": "F"}[row["SEX_CD"]],
    }


def clinician(account: str = "dr.lee") -> Access:
    return Access(
        Principal(account, "clinician", "이의사", institution="99999999", origin="test"),
        clock=lambda: NOW,
    )


def lookups(lake: Lake, account: str) -> pl.DataFrame:
    return lake.frame(
        "ops.audit_log", (pl.col("account") == account) & (pl.col("action") == "lookup:patient")
    )


def test_a_name_and_birth_date_find_the_key_age_and_sex_only(
    lake: Lake, resident: dict[str, Any]
) -> None:
    born: date = resident["birth"]
    spaced = " ".join(resident["name"])  # "신 영 녀": spacing is not part of a name
    found = clinician().find_patients(name=spaced, birth_date=born)
    assert found.columns == ["citizen_key", "age_years", "sex"]
    assert found.height == 1
    key, age, sex = found.row(0)
    expected_age = NOW.year - born.year - ((NOW.month, NOW.day) < (born.month, born.day))
    assert age in (expected_age, expected_age + 1)  # whole years from the birth month
    assert sex == resident["sex"]
    citizens = lake.frame("silver.citizens", pl.col("citizen_key") == key)
    assert citizens.height == 1  # a real citizen's key, in full (33 characters)
    assert len(key) == 33


def test_a_registration_number_finds_the_same_person(resident: dict[str, Any]) -> None:
    by_name = clinician().find_patients(name=resident["name"], birth_date=resident["birth"])
    by_number = clinician().find_patients(registration_number=resident["rrn"])
    assert by_number.rows() == by_name.rows()
    bare = clinician().find_patients(registration_number=resident["rrn"].replace("-", ""))
    assert bare.rows() == by_name.rows()


def test_the_wrong_birth_date_finds_nobody_and_says_so_in_the_log(
    lake: Lake, resident: dict[str, Any]
) -> None:
    wrong = resident["birth"].replace(day=1 if resident["birth"].day != 1 else 2)
    assert clinician("dr.nobody").find_patients(name=resident["name"], birth_date=wrong).is_empty()
    (entry,) = lookups(lake, "dr.nobody").rows(named=True)
    assert entry["subject_key"] is None and entry["rows"] == 0
    assert entry["outcome"] == "allowed" and entry["purpose"] == "identification"
    assert "0 matched" in entry["detail"]


def test_each_person_found_is_in_the_log_without_what_was_searched(
    lake: Lake, resident: dict[str, Any]
) -> None:
    layer = clinician("dr.audit")
    key = layer.find_patients(registration_number=resident["rrn"])["citizen_key"][0]
    layer.find_patients(name=resident["name"], birth_date=resident["birth"])
    layer.find_patients(registration_number=resident["rrn"])
    rows = lookups(lake, "dr.audit").sort("at")
    assert rows["subject_key"].to_list() == [key, key, key]  # whose data: in their history
    assert rows["rows"].to_list() == [1, 1, 1]
    assert set(rows["role"]) == {"clinician"} and set(rows["origin"]) == {"test"}
    assert set(rows["purpose"]) == {"identification"}
    details = rows["detail"].to_list()
    assert details[0].startswith("by registration number: 1 matched")
    assert details[1].startswith("by name and birth date: 1 matched")
    # The same search twice has the same keyed fingerprint, another search another one.
    fingerprint = [d.rsplit(" ", 1)[-1] for d in details]
    assert fingerprint[0] == fingerprint[2] != fingerprint[1]
    digits = resident["rrn"].replace("-", "")
    birth = resident["birth"].strftime("%Y%m%d")
    for text in details:
        assert digits not in text and resident["rrn"] not in text
        assert resident["name"] not in text and birth not in text
    # Nor anywhere in the access log's files.
    assert_no_identifiers(
        parquet_files(lake.root / "ops" / "audit_log"), {resident["name"]}, {digits, birth}
    )


@pytest.mark.parametrize(
    "principal",
    [
        Principal("admin", "admin", origin="test"),
        Principal("official", "official", origin="test"),
    ],
    ids=["admin", "official"],
)
def test_only_clinicians_may_search(
    lake: Lake, resident: dict[str, Any], principal: Principal
) -> None:
    with pytest.raises(AccessDeniedError) as refused:
        Access(principal).find_patients(registration_number=resident["rrn"])
    assert refused.value.code == "role"
    denied = lookups(lake, principal.account)
    assert denied["outcome"].to_list() == ["denied"]
    assert denied["subject_key"].to_list() == [None]


def test_a_citizen_may_not_search_either(lake: Lake, resident: dict[str, Any]) -> None:
    own = clinician().find_patients(registration_number=resident["rrn"])["citizen_key"][0]
    citizen = Access(Principal("kim.citizen", "citizen", citizen_key=own, origin="test"))
    with pytest.raises(AccessDeniedError):
        citizen.find_patients(name=resident["name"], birth_date=resident["birth"])
    assert lookups(lake, "kim.citizen")["outcome"].to_list() == ["denied"]


def test_a_search_needs_a_name_with_a_birth_date_or_a_whole_number(
    resident: dict[str, Any],
) -> None:
    layer = clinician("dr.vague")
    with pytest.raises(ValueError, match="name and a birth date"):
        layer.find_patients(name=resident["name"])
    with pytest.raises(ValueError, match="name and a birth date"):
        layer.find_patients(birth_date=resident["birth"])
    with pytest.raises(ValueError, match="13 digits"):
        layer.find_patients(registration_number=resident["rrn"][:8])
