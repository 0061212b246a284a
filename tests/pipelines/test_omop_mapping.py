"""The OMOP mapping on hand-built cases: each rule of pipelines/transform/omop.py on a row whose
answer is known (visit concepts, primary and secondary diagnoses, quantity and days supply, a
measurement's concept and unit, an AI finding as an image feature), and the ids: the same in
two builds and in another process."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lakehouse.catalog import table as catalog_table
from lakehouse.omop import vocabulary as v
from lakehouse.omop.ids import person_id, row_id, with_id
from pipelines.transform.omop import Built, Sources, build

ALICE = "C" + "a" * 32
BOB = "C" + "b" * 32
STRANGER = "C" + "f" * 32  # not in the register
CLINIC = "31000001"
HOSPITAL = "11000001"
PHARMACY = "81000001"
AS_OF = date(2025, 6, 30)
AT = datetime(2025, 4, 2, 1, 0, tzinfo=UTC)


def _frame(name: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows of a catalogue table, absent columns null."""
    schema = catalog_table(name).polars_schema()
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def _claim(spec_id: str, who: str, form: str, cls: str, dept: str | None, **kw: Any) -> dict:
    return {
        "spec_id": spec_id,
        "citizen_key": who,
        "ykiho": kw.get("ykiho", CLINIC),
        "sex": "F",
        "age": 70,
        "insurance_type": "4",
        "form_type": form,
        "class_code": cls,
        "department": dept,
        "main_dx": "E11.9",
        "start_date": kw.get("start", date(2025, 3, 3)),
        "end_date": kw.get("end", date(2025, 3, 3)),
        "visit_days": 1,
        "total_amount": 1000,
        "patient_amount": 300,
        "insurer_amount": 700,
        "claim_month": "2025-03",
        "delivery_id": kw.get("delivery", "d1"),
        "delivered_at": AT,
    }


def sources() -> Sources:
    """Two citizens, a clinic, a hospital and a pharmacy; one statement of each kind; a
    superseded version of a statement; a stranger's statement, study and finding."""
    citizens = _frame(
        "silver.citizens",
        [
            {
                "citizen_key": ALICE,
                "sex": "F",
                "birth_year": 1950,
                "birth_month": 4,
                "district_code": "24010",
                "dong_code": "2401001",
                "resident_from": date(2025, 1, 1),
                "arrival": "baseline",
            },
            {
                "citizen_key": BOB,
                "sex": "M",
                "birth_year": 1948,
                "birth_month": 11,
                "district_code": "24050",
                "dong_code": "2405001",
                "resident_from": date(2025, 1, 1),
                "resident_to": date(2025, 5, 11),
                "arrival": "baseline",
                "departure": "death",
                "died_on": date(2025, 5, 10),
            },
        ],
    )
    institutions = _frame(
        "silver.institutions",
        [
            {"ykiho": CLINIC, "name": "Clinic", "class_code": "31", "district_code": "24010"},
            {"ykiho": HOSPITAL, "name": "Hospital", "class_code": "11", "district_code": "24020"},
            {"ykiho": PHARMACY, "name": "Pharmacy", "class_code": "81", "district_code": "24010"},
        ],
    )
    claims = _frame(
        "silver.claims",
        [
            _claim("OP1", ALICE, "031", "31", "01"),
            _claim("IP1", BOB, "021", "11", "01", ykiho=HOSPITAL, end=date(2025, 3, 9)),
            _claim("ER1", BOB, "031", "11", "24", ykiho=HOSPITAL),
            _claim("PH1", ALICE, "081", "81", None, ykiho=PHARMACY, delivery="d2"),
            _claim("XX1", STRANGER, "031", "31", "01"),
        ],
    )
    diagnoses = _frame(
        "silver.diagnoses",
        [
            {"spec_id": "OP1", "seq": s, "kcd": k, "kind": kind, "citizen_key": ALICE,
             "diagnosed_on": date(2025, 3, 3), "claim_month": "2025-03", "delivery_id": d,
             "delivered_at": AT}
            for s, k, kind, d in (
                (1, "E11.9", "main", "d1"),
                (2, "I10", "sub", "d1"),
                (1, "J00", "main", "d0"),  # a superseded version of the statement
            )
        ],
    )  # fmt: skip
    prescriptions = _frame(
        "silver.prescriptions",
        [
            {"spec_id": "OP1", "line_no": 1, "citizen_key": ALICE, "ykiho": CLINIC,
             "prescription_no": "P1", "issued_on": date(2025, 3, 3),
             "ingredient_code": "224507CPC", "dose": 0.5, "per_day": 2, "days": 30,
             "unit_price": 10, "amount": 300, "claim_month": "2025-03", "delivery_id": "d1",
             "delivered_at": AT}
        ],
    )  # fmt: skip
    dispensings = _frame(
        "silver.dispensings",
        [
            {"spec_id": "PH1", "line_no": 1, "citizen_key": ALICE, "pharmacy_ykiho": PHARMACY,
             "dispensed_on": date(2025, 3, 4), "prescriber_ykiho": CLINIC,
             "prescription_no": "P1", "ingredient_code": "224507CPC", "dose": 1.0,
             "per_day": 3, "days": 7, "amount": 300, "claim_month": "2025-03",
             "delivery_id": "d2", "delivered_at": AT}
        ],
    )  # fmt: skip
    lines = _frame(
        "silver.claim_lines",
        [
            {"spec_id": "OP1", "line_no": n, "line_type": t, "code": c, "quantity": q,
             "unit_price": 1, "amount": 1, "claim_month": "2025-03", "delivery_id": "d1",
             "delivered_at": AT}
            for n, t, c, q in ((1, "01", "AA154", 1.0), (2, "05", "MM010", 0.0),
                               (3, "06", "B0010", 1.0))
        ],
    )  # fmt: skip
    members = _frame(
        "silver.centre_members",
        [{"member_no": "BG0000001", "citizen_key": ALICE, "joined_on": date(2025, 1, 5)}],
    )
    measurements = _frame(
        "silver.centre_measurements",
        [
            {"measurement_id": "M1", "member_no": "BG0000001", "device": "checkup",
             "measured_at": AT, "measure": m, "value": x, "unit": u,
             "measured_on": date(2025, 4, 2)}
            for m, x, u in (("height_cm", 158.0, "cm"), ("systolic_mmhg", 141.0, "mmHg"),
                            ("grip_left_kg", 21.5, "kg"), ("speed_m_s", 0.9, "m/s"))
        ],
    )  # fmt: skip
    studies = _frame(
        "silver.imaging_studies",
        [
            {"study_instance_uid": uid, "citizen_key": who, "study_date": date(2025, 4, 2),
             "study_datetime": AT, "modalities": "CR", "series_count": 1,
             "instance_count": 1, "patient_conflict": False, "first_received_at": AT,
             "last_received_at": AT}
            for uid, who in (("1.2.3", ALICE), ("1.2.9", STRANGER))
        ],
    )  # fmt: skip
    series = _frame(
        "silver.imaging_series",
        [
            {"series_instance_uid": s, "study_instance_uid": st, "modality": "CR",
             "instances": 1, "frames": 1, "first_received_at": AT, "last_received_at": AT}
            for s, st in (("1.2.3.1", "1.2.3"), ("1.2.3.2", "1.2.3"), ("1.2.9.1", "1.2.9"))
        ],
    )  # fmt: skip
    findings = _frame(
        "ai.findings",
        [
            {"study_instance_uid": st, "series_instance_uid": se, "citizen_key": who,
             "service": "chest", "finding_code": "lung_opacity", "status": status,
             "score": score, "threshold": 0.5, "instances_scored": 1,
             "algorithm_name": "chest-cxr", "algorithm_version": "1.1", "device_uid": "1.2.3",
             "tracking_id": "t", "tracking_uid": "1.2", "verification": "unverified",
             "priority": 2, "synthetic_reference": True,
             "scored_at": AT + timedelta(hours=1)}
            for st, se, who, status, score in (
                ("1.2.3", "1.2.3.2", ALICE, "scored", 0.83),
                ("1.2.9", None, STRANGER, "scored", 0.2),
            )
        ],
    )  # fmt: skip
    return Sources(
        citizens=citizens,
        institutions=institutions,
        claims=claims,
        claim_lines=lines,
        diagnoses=diagnoses,
        prescriptions=prescriptions,
        dispensings=dispensings,
        members=members,
        measurements=measurements,
        studies=studies,
        series=series,
        findings=findings,
    )


@pytest.fixture(scope="module")
def built() -> Built:
    return build(sources(), AS_OF, date(2025, 7, 1))


def _one(frame: pl.DataFrame, **where: object) -> dict[str, Any]:
    rows = frame.filter(*(pl.col(k) == w for k, w in where.items()))
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def test_statements_become_visits_of_their_kind(built: Built) -> None:
    visits = built.tables["omop.visit_occurrence"]
    expected = {
        "OP1": (v.OUTPATIENT, v.CLAIM),
        "IP1": (v.INPATIENT, v.CLAIM),
        "ER1": (v.EMERGENCY, v.CLAIM),
        "PH1": (v.PHARMACY, v.PHARMACY_CLAIM),
    }
    for spec_id, (concept, kind) in expected.items():
        row = _one(visits, visit_occurrence_id=row_id("visit", spec_id))
        assert (row["visit_concept_id"], row["visit_type_concept_id"]) == (concept, kind)
    assert (v.INPATIENT, v.OUTPATIENT, v.EMERGENCY, v.PHARMACY) == (9201, 9202, 9203, 581458)
    inpatient = _one(visits, visit_occurrence_id=row_id("visit", "IP1"))
    assert inpatient["visit_end_date"] == date(2025, 3, 9)
    assert inpatient["care_site_id"] == row_id("care_site", HOSPITAL)
    assert inpatient["person_id"] == person_id(BOB)
    assert inpatient["visit_source_value"] == "021"


def test_unknown_persons_are_left_out_and_counted(built: Built) -> None:
    assert built.tables["omop.visit_occurrence"].height == 4
    assert built.unknown_person["omop.visit_occurrence"] == 1
    assert built.unknown_person["omop.image_occurrence"] == 1
    assert built.unknown_person["omop.image_feature"] == 1
    persons = set(built.tables["omop.person"]["person_id"])
    for name, frame in built.tables.items():
        if "person_id" in frame.columns:
            assert set(frame["person_id"]) <= persons, name


def test_main_diagnosis_is_primary_the_others_secondary(built: Built) -> None:
    conditions = built.tables["omop.condition_occurrence"]
    assert conditions.height == 2  # the superseded version's diagnosis is not mapped
    main = _one(conditions, condition_source_value="E11.9")
    sub = _one(conditions, condition_source_value="I10")
    assert main["condition_status_concept_id"] == v.PRIMARY_DIAGNOSIS == 32902
    assert sub["condition_status_concept_id"] == v.SECONDARY_DIAGNOSIS == 32908
    assert {main["condition_type_concept_id"], sub["condition_type_concept_id"]} == {v.CLAIM}
    assert main["condition_concept_id"] == 0
    assert main["visit_occurrence_id"] == row_id("visit", "OP1")


def test_quantity_days_supply_and_end_of_drugs(built: Built) -> None:
    drugs = built.tables["omop.drug_exposure"]
    prescribed = _one(drugs, drug_type_concept_id=v.CLAIM)
    assert prescribed["quantity"] == 0.5 * 2 * 30
    assert prescribed["days_supply"] == 30
    assert prescribed["drug_exposure_start_date"] == date(2025, 3, 3)
    assert prescribed["drug_exposure_end_date"] == date(2025, 4, 1)
    assert prescribed["drug_source_value"] == "224507CPC"
    assert prescribed["drug_concept_id"] == 0
    dispensed = _one(drugs, drug_type_concept_id=v.PHARMACY_CLAIM)
    assert (dispensed["quantity"], dispensed["days_supply"]) == (21.0, 7)
    assert dispensed["drug_exposure_end_date"] == date(2025, 3, 10)
    assert dispensed["visit_occurrence_id"] == row_id("visit", "PH1")


def test_procedure_lines_only_with_at_least_one(built: Built) -> None:
    procedures = built.tables["omop.procedure_occurrence"]
    line = _one(procedures, procedure_source_value="MM010")
    assert line["quantity"] == 1  # 0 in the source: the spec's convention is 1
    assert line["procedure_date"] == date(2025, 3, 3)
    assert procedures.filter(pl.col("procedure_source_value").is_in(["AA154", "B0010"])).is_empty()
    study = _one(procedures, procedure_type_concept_id=v.EHR)
    assert study["procedure_occurrence_id"] == row_id("procedure_imaging_study", "1.2.3")


def test_measurements_carry_their_concept_and_unit(built: Built) -> None:
    measured = built.tables["omop.measurement"]
    height = _one(measured, measurement_source_value="height_cm")
    assert (height["measurement_concept_id"], height["unit_concept_id"]) == (3036277, 8582)
    assert (height["value_as_number"], height["unit_source_value"]) == (158.0, "cm")
    systolic = _one(measured, measurement_source_value="systolic_mmhg")
    assert (systolic["measurement_concept_id"], systolic["unit_concept_id"]) == (
        v.MEASURES["systolic_mmhg"],
        8876,
    )
    grip = _one(measured, measurement_source_value="grip_left_kg")
    assert (grip["measurement_concept_id"], grip["unit_concept_id"]) == (0, 9529)
    speed = _one(measured, measurement_source_value="speed_m_s")
    assert (speed["measurement_concept_id"], speed["unit_concept_id"]) == (0, 0)
    assert height["person_id"] == person_id(ALICE)


def test_an_ai_finding_is_an_image_feature_of_its_series(built: Built) -> None:
    images = built.tables["omop.image_occurrence"]
    assert images.height == 2  # Alice's two series; the stranger's study is left out
    feature = _one(built.tables["omop.image_feature"], person_id=person_id(ALICE))
    assert feature["alg_system"] == "chest-cxr 1.1"
    assert feature["alg_datetime"] == AT + timedelta(hours=1)
    assert feature["image_occurrence_id"] == row_id("image_series", "1.2.3.2")
    assert feature["image_feature_concept_id"] == 0
    event = _one(built.tables["omop.measurement"], measurement_id=feature["image_feature_event_id"])
    assert (event["measurement_source_value"], event["value_as_number"]) == ("lung_opacity", 0.83)
    assert event["measurement_date"] == date(2025, 4, 2)


def test_person_period_and_death_from_the_register(built: Built) -> None:
    alice = _one(built.tables["omop.person"], person_id=person_id(ALICE))
    assert (alice["gender_concept_id"], alice["year_of_birth"], alice["month_of_birth"]) == (
        v.FEMALE,
        1950,
        4,
    )
    assert alice["location_id"] == row_id("location", "24010")
    periods = built.tables["omop.observation_period"]
    bob = _one(periods, person_id=person_id(BOB))
    assert (bob["observation_period_start_date"], bob["observation_period_end_date"]) == (
        date(2025, 1, 1),
        date(2025, 5, 10),
    )
    assert _one(periods, person_id=person_id(ALICE))["observation_period_end_date"] == AS_OF
    death = _one(built.tables["omop.death"], person_id=person_id(BOB))
    assert death["death_date"] == date(2025, 5, 10)
    source = built.tables["omop.cdm_source"].row(0, named=True)
    assert (source["cdm_version_concept_id"], source["cdm_holder"]) == (
        756265,
        "Gwangju Metropolitan City",
    )
    assert source["vocabulary_version"] == v.version()


def test_every_concept_used_is_shipped(built: Built) -> None:
    shipped = v.concept_ids()
    for name, frame in built.tables.items():
        for column in frame.columns:
            if column.endswith("concept_id") and name != "omop.concept":
                assert set(frame[column].drop_nulls()) <= shipped, (name, column)


def test_ids_are_the_same_in_two_builds() -> None:
    first = build(sources(), AS_OF, date(2025, 7, 1))
    again = build(sources(), AS_OF, date(2025, 7, 2))
    for name, frame in first.tables.items():
        if name == "omop.cdm_source":
            continue
        assert frame.sort(pl.all()).equals(again.tables[name].sort(pl.all())), name


def test_ids_are_the_same_in_another_process_and_in_polars() -> None:
    keys = [ALICE, BOB]
    code = (
        "from lakehouse.omop.ids import person_id, row_id\n"
        f"print(*[person_id(k) for k in {keys!r}], row_id('visit', 'OP1'), row_id('x', 1, None))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    here = [person_id(k) for k in keys] + [row_id("visit", "OP1"), row_id("x", 1, None)]
    assert [int(x) for x in out] == here
    frame = pl.DataFrame({"k": keys})
    assert with_id(frame, "id", "person", "k")["id"].to_list() == here[:2]
    mixed = pl.DataFrame({"a": [1], "b": [None]}, schema={"a": pl.Int64, "b": pl.Utf8})
    assert with_id(mixed, "id", "x", "a", "b")["id"].item() == here[3]
    # SHA-256, first 8 bytes, shifted: a positive 63-bit integer
    assert all(0 < i < 2**63 for i in here)


def test_the_build_and_the_nightly_job_run_omop_after_gold(tmp_path: Path) -> None:
    from pipelines.build import plan
    from pipelines.definitions import defs
    from pipelines.defs.gold import NIGHTLY_CRON as GOLD_CRON
    from pipelines.defs.omop import NIGHTLY_CRON, TABLES

    stages = plan(defs, tmp_path)
    assert [s.name for s in stages][-2:] == ["gold", "omop"]
    # The OMOP tables, then what is made from them (their DQD report, the drug event signals)
    # in the same stage, so neither reads a layer a build old.
    made_from_omop = ["gold/ade_signals", "gold/omop_dq_results"]
    assert sorted(k.to_user_string() for k in stages[-1].keys) == sorted(
        [n.replace(".", "/") for n in TABLES] + made_from_omop
    )
    assert not {k.to_user_string() for k in stages[-2].keys} & set(made_from_omop)
    job = defs.resolve_job_def("omop_job")
    assert set(made_from_omop) <= {
        k.to_user_string() for k in job.asset_layer.executable_asset_keys
    }
    assert defs.resolve_job_def("omop_job").name == "omop_job"
    assert int(NIGHTLY_CRON.split()[1]) > int(GOLD_CRON.split()[1])
