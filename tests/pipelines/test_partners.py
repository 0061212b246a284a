"""Partners' OMOP extracts, written by these tests, through real Dagster runs into real Delta
tables: upper- and lower-case file names, CSV and Parquet, linked and unlinked persons, faulty
files and rows quarantined with reasons, and the count check."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from apps.common.timeline import describe
from lakehouse import delta
from lakehouse.access import Access, Principal
from lakehouse.linkage import token
from lakehouse.pseudonym import citizen_key
from pipelines.defs import gold, partners, registry
from pipelines.defs.sensors import run_requests
from pipelines.transform.partners import report
from tests.pipelines.conftest import Lake, assert_no_identifiers
from tests.pipelines.partner_extract import extract, register

pytestmark = [pytest.mark.integration]

PEOPLE = [
    ("900101-1234568", "김가람", "1"),
    ("800202-2345678", "이나래", "2"),
    ("750303-1456789", "박다온", "1"),
    ("650404-2567890", "최라희", "2"),
]
A, B, C, D = (p[0] for p in PEOPLE)
STRANGER = secrets.token_hex(32)  # a person of the partner's who is no citizen


def _cnuh() -> dict[str, pl.DataFrame | str]:
    """Chonnam-style CSV extract with faults: one per quarantine rule."""
    person = pl.DataFrame(
        {
            "person_id": [1, 2, 3, 101, 102, 4],
            "gender_concept_id": [8507, 8532, 8507, 8532, 8507, 8507],
            "year_of_birth": [1990, 1980, 1975, 1960, 1955, 1950],
            "race_concept_id": [0] * 6,
            "ethnicity_concept_id": [0] * 6,
            "person_source_value": ["MRN-0001", "MRN-0002", "MRN-0003", "MRN-0101", "MRN-0102", ""],
            "gender_source_value": ["M", "F", "M", "F", "M", "X" * 51],  # 4: too long
        }
    )
    visits = pl.DataFrame(
        {
            "visit_occurrence_id": [10, 11, 11, 12],  # 11 twice: duplicate key
            "person_id": [1, 2, 2, 101],
            "visit_concept_id": [9202, 9201, 9201, 9203],
            "visit_start_date": ["2025-03-01", "2025-04-02", "2025-04-02", "2025-05-05"],
            "visit_end_date": ["2025-03-01", "2025-04-09", "2025-04-09", "2025-05-05"],
            "visit_type_concept_id": [32817] * 4,
        }
    )
    conditions = pl.DataFrame(
        {
            "condition_occurrence_id": [20, 21, 22],
            "person_id": [1, 2, 102],
            "condition_concept_id": [0, 0, 0],
            "condition_start_date": ["2025-03-01", "", "2025-05-05"],  # 21: required missing
            "condition_type_concept_id": [32817] * 3,
            "condition_source_value": ["E11.9", "I10", "I10"],
        }
    )
    drugs = pl.DataFrame(
        {
            "drug_exposure_id": [30, 31],
            "person_id": [1, 999],  # 999: no such person in the delivery
            "drug_concept_id": [0, 0],
            "drug_exposure_start_date": ["2025-03-01", "2025-03-01"],
            "drug_exposure_end_date": ["2025-03-30", "2025-03-30"],
            "drug_type_concept_id": [32838, 32838],
            "drug_source_value": ["224507CPC", "224507CPC"],
            "quantity": [30.0, 30.0],
            "days_supply": [30, 30],
        }
    )
    measurements = pl.DataFrame(
        {
            "measurement_id": [40, 41],
            "person_id": [1, 2],
            "measurement_concept_id": [3004410, 3004410],
            "measurement_date": ["2025-03-01", "2025-04-02"],
            "measurement_type_concept_id": [32817, 32817],
            "value_as_number": ["7.1", "abc"],  # 41: not a float
            "measurement_source_value": ["HbA1c", "HbA1c"],
            "unit_source_value": ["%", "%"],
        }
    )
    linkage = pl.DataFrame(
        {
            "person_id": ["1", "2", "3", "101", "102", "555"],
            "token": [token(A), token(B).upper(), token(C), STRANGER, "XYZ", token(D)],
        }
    )
    concept = pl.DataFrame({"concept_id": [8507], "concept_name": ["MALE"]})
    bad_header = "observation_period_id,person_id,bogus\n1,1,x\n"
    return {
        "person": person,
        "visit_occurrence": visits,
        "condition_occurrence": conditions,
        "drug_exposure": drugs,
        "measurement": measurements,
        "linkage": linkage,
        "concept": concept,
        "observation_period": bad_header,
    }


def _snuh() -> dict[str, pl.DataFrame | str]:
    """A clean Parquet extract with native dates, lower-case names."""
    return {
        "person": pl.DataFrame(
            {
                "person_id": [7, 8],
                "gender_concept_id": [8532, 8507],
                "year_of_birth": [1965, 1970],
                "race_concept_id": [0, 0],
                "ethnicity_concept_id": [0, 0],
            }
        ),
        "visit_occurrence": pl.DataFrame(
            {
                "visit_occurrence_id": [70, 80],
                "person_id": [7, 8],
                "visit_concept_id": [9202, 9202],
                "visit_start_date": [date(2025, 6, 1), date(2025, 6, 2)],
                "visit_end_date": [date(2025, 6, 1), date(2025, 6, 2)],
                "visit_type_concept_id": [32817, 32817],
            }
        ),
        "linkage": pl.DataFrame({"person_id": [7, 8], "token": [token(D), secrets.token_hex(32)]}),
    }


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("partners")
    sources = root / "sources"
    register(sources, PEOPLE)
    extract(sources, "cnuh", "2025-12-31", _cnuh(), upper=True, holder="전남대학교병원")
    extract(sources, "snuh", "2025-12-30", _snuh(), fmt="parquet")
    built = Lake(root / "lakehouse", sources)
    built.materialise([registry.bronze_registry])
    built.materialise(list(partners.PARTNER_ASSETS))
    return built


def _keys(frame: pl.DataFrame, column: str) -> dict[int, str | None]:
    return dict(zip(frame[column].to_list(), frame["citizen_key"].to_list(), strict=True))


def test_linked_and_unlinked_persons_round_trip_in_both_formats(lake: Lake) -> None:
    persons = lake.frame("silver.partner_person").sort("partner", "person_id")
    cnuh = persons.filter(pl.col("partner") == "cnuh")
    assert _keys(cnuh, "person_id") == {
        1: citizen_key(A),
        2: citizen_key(B),  # an upper-case token is the same token
        3: citizen_key(C),
        101: None,  # not a citizen: kept, unlinked
        102: None,  # its linkage row was malformed
    }
    assert cnuh["person_source_value"].is_null().all()  # the hospital's own number is dropped
    snuh = persons.filter(pl.col("partner") == "snuh")
    assert _keys(snuh, "person_id") == {7: citizen_key(D), 8: None}
    visits = lake.frame("silver.partner_visit_occurrence").sort("partner", "visit_occurrence_id")
    assert visits.select("partner", "visit_occurrence_id", "visit_start_date").rows() == [
        ("cnuh", 10, date(2025, 3, 1)),
        ("cnuh", 11, date(2025, 4, 2)),
        ("cnuh", 12, date(2025, 5, 5)),
        ("snuh", 70, date(2025, 6, 1)),
        ("snuh", 80, date(2025, 6, 2)),
    ]
    assert _keys(visits.filter(pl.col("partner") == "snuh"), "visit_occurrence_id") == {
        70: citizen_key(D),
        80: None,
    }
    drugs = lake.frame("silver.partner_drug_exposure")
    assert drugs.select("drug_exposure_id", "quantity", "days_supply", "citizen_key").rows() == [
        (30, 30.0, 30, citizen_key(A))
    ]
    assert lake.frame("silver.partner_measurement")["value_as_number"].to_list() == [7.1]


def test_faulty_files_and_rows_are_quarantined_with_reasons(lake: Lake) -> None:
    q = lake.frame("quarantine.records", pl.col("source").str.starts_with("partners/"))
    found = {(r["stage"], r["table"], r["line"], r["reason"]) for r in q.iter_rows(named=True)}
    assert found == {
        ("bronze", "bronze.partner_observation_period", None, "schema_drift"),
        ("silver", "bronze.partner_person", 7, "too_long"),
        ("silver", "bronze.partner_visit_occurrence", 4, "duplicate_key"),
        ("silver", "bronze.partner_condition_occurrence", 3, "missing_value"),
        ("silver", "bronze.partner_drug_exposure", 3, "unknown_person"),
        ("silver", "bronze.partner_measurement", 3, "type_mismatch"),
        ("silver", "bronze.partner_linkage", 6, "malformed_linkage"),
        ("silver", "bronze.partner_linkage", 7, "malformed_linkage"),
    }
    messages = dict(zip(q["line"].to_list(), q["message"].to_list(), strict=True))
    assert "64 hexadecimal" in messages[6] and "person table" in messages[7]
    ledger = lake.frame("bronze.deliveries", pl.col("source") == "partners/cnuh")
    status = dict(zip(ledger["file"].str.split("/").list.last(), ledger["status"], strict=True))
    assert status["CONCEPT.csv"] == "skipped"  # a vocabulary table: recorded, not failed
    assert status["OBSERVATION_PERIOD.csv"] == "rejected"
    assert status["PERSON.csv"] == "ingested"


def test_every_file_reconciles_rows_in_with_accepted_and_quarantined(lake: Lake) -> None:
    counts = lake.frame("silver.partner_counts")
    assert counts.filter(
        pl.col("rows_delivered") != pl.col("rows_accepted") + pl.col("rows_quarantined")
    ).is_empty()
    by_table = {(r["partner"], r["table"]): r for r in counts.iter_rows(named=True)}
    person = by_table[("cnuh", "person")]
    assert (person["rows_delivered"], person["rows_accepted"], person["rows_quarantined"]) == (
        6, 5, 1,
    )  # fmt: skip
    assert (person["persons_linked"], person["persons_unlinked"]) == (3, 2)
    assert person["holder"] == "전남대학교병원"
    links = by_table[("cnuh", "linkage")]
    assert (links["rows_delivered"], links["rows_accepted"], links["rows_quarantined"]) == (6, 4, 2)
    assert by_table[("cnuh", "concept")]["status"] == "skipped"
    assert by_table[("snuh", "visit_occurrence")]["rows_linked"] == 1


def test_no_registration_number_or_name_reaches_a_table(lake: Lake) -> None:
    tables = [p.relative_to(lake.root).as_posix().replace("/", ".") for p in lake.root.glob("*/*")]
    numbers = {p[0].replace("-", "") for p in PEOPLE}
    assert_no_identifiers(lake.parquet(tables), {p[1] for p in PEOPLE}, numbers)
    for name in ("silver.partner_person", "bronze.partner_person"):
        assert "MRN-0001" not in lake.frame(name).write_csv()  # a hospital's own number


def test_the_drop_folder_sensor_launches_the_partners_job(lake: Lake, tmp_path: Path) -> None:
    requests, taken = run_requests(lake.sources, set(), {"partners_job"})
    assert taken == {"partners/cnuh/2025-12-31", "partners/snuh/2025-12-30"}
    assert {r.job_name for r in requests} == {"partners_job"}


def _report(lake: Lake, *args: str, command: tuple[str, ...] = ("partner", "report")
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {**os.environ, "LAKEHOUSE_URI": str(lake.root)}
    return subprocess.run(
        [sys.executable, "-m", "gjh.cli", *command, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_the_partner_report_shows_the_count_check(lake: Lake) -> None:
    done = _report(lake, "--partner", "cnuh")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "cnuh 2025-12-31 (전남대학교병원)"
    person = next(line.split() for line in lines if line.strip().startswith("person "))
    assert person[1:] == ["ingested", "6", "5", "1", "3", "3/2"]
    assert "snuh" not in done.stdout
    assert lines[-1] == "8 files: all reconcile"
    assert "all reconcile" in _report(lake).stdout
    catalog = _report(lake, command=("catalog",))
    assert "silver.partner_counts" in catalog.stdout
    assert catalog.stdout.rstrip().endswith("11 files: all reconcile")  # both partners


def test_the_report_flags_counts_that_do_not_reconcile(lake: Lake) -> None:
    counts = lake.frame("silver.partner_counts")
    broken = report(counts.with_columns(pl.col("rows_accepted") + 1))
    assert not broken["reconciles"].any()
    assert report(counts)["reconciles"].all()


def _consent_events(lake: Lake) -> None:
    """Citizen A signed up, consented to the record link and was linked; B only signed up (the
    app's events as the programme pipeline writes them to silver)."""
    at = datetime(2025, 6, 1, 1, 0, tzinfo=UTC)
    users = pl.DataFrame(
        {
            "app_user_id": ["U-A", "U-B"],
            "citizen_key": [citizen_key(A), citizen_key(B)],
            "signed_up_at": [at, at],
        }
    )
    link = json.dumps({"consent_type": "hira_record_link"})
    events = pl.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4"],
            "event_type": ["signup", "consent", "record_link_completed", "signup"],
            "occurred_at": [at, at + timedelta(hours=1), at + timedelta(hours=2), at],
            "app_user_id": ["U-A", "U-A", "U-A", "U-B"],
            "details": ["{}", link, json.dumps({"status": "completed"}), "{}"],
            "event_date": [at.date()] * 4,
        }
    )
    with lake.active():
        delta.append("silver.app_users", users)
        delta.append("silver.programme_events", events)


@pytest.fixture(scope="module")
def timeline_lake(lake: Lake) -> Lake:
    """The partners' lake with two app accounts and the gold timeline built."""
    _consent_events(lake)
    # This lake holds no silver.citizens: the timeline's foreign-key check (in its step) fails
    # and would block what is downstream (nothing here); the table itself is written.
    built = lake.materialise([gold.gold_citizen_timeline], raise_on_error=False)
    failed = {e.asset_check_key.name for e in built.get_asset_check_evaluations() if not e.passed}
    assert "isForeignKey_citizen_key" in failed
    assert {m.asset_key for m in built.get_asset_materialization_events()} == {
        gold.gold_citizen_timeline.key
    }
    return lake


def _citizen(key: str) -> Access:
    principal = Principal(f"acct-{key[:6]}", "citizen", citizen_key=key, origin="test")
    return Access(principal, clock=lambda: datetime(2026, 1, 5, tzinfo=UTC))


def test_linked_records_reach_the_timeline_with_the_partner_named(timeline_lake: Lake) -> None:
    rows = timeline_lake.frame("gold.citizen_timeline", pl.col("partner").is_not_null())
    mine = rows.filter(pl.col("citizen_key") == citizen_key(A)).sort("kind")
    assert mine.select("kind", "code", "event_date").rows() == [
        ("diagnosis", "E11.9", date(2025, 3, 1)),
        ("measurement", "HbA1c", date(2025, 3, 1)),  # not a centre measure: its source value
        ("prescription", "224507CPC", date(2025, 3, 1)),
        ("visit", None, date(2025, 3, 1)),
    ]
    assert set(mine["institution_name"]) == {"전남대학교병원"}
    assert mine["institution"].is_null().all()  # no clinic's own-records rule shows them
    # C's partner has no records of them beyond the person; unlinked persons have no timeline.
    assert set(rows["citizen_key"]) == {citizen_key(A), citizen_key(B), citizen_key(D)}
    described = describe(mine)
    assert set(described["place"]) == {"협력병원 전남대학교병원"}


def test_partner_records_show_only_once_the_record_link_consent_stands(
    timeline_lake: Lake,
) -> None:
    with timeline_lake.active():
        linked = _citizen(citizen_key(A)).timeline(citizen_key(A))
        signed_up = _citizen(citizen_key(B)).timeline(citizen_key(B))
        no_account = _citizen(citizen_key(D)).timeline(citizen_key(D))
    assert linked.filter(pl.col("partner") == "cnuh").height == 4
    assert signed_up.filter(pl.col("partner").is_not_null()).is_empty()
    assert no_account.filter(pl.col("partner").is_not_null()).is_empty()
