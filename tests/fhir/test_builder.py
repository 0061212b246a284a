"""The IPS builder on hand-built records: required sections always there (``emptyReason`` when
empty), KR Core's code systems, the ingredient code kept where no product code applies, the
pseudonymous Patient, AI findings labelled; and every Bundle passes the IPS check."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import polars as pl

from lakehouse.fhir import codes, ips_bundle
from tests.fhir.builders import AS_OF, KEY, NOW, empty_record, full_record
from tests.fhir.ips_check import problems

REQUIRED = {"11450-4", "48765-2", "10160-0"}


def document(bundle: dict) -> tuple[dict, dict[str, dict]]:
    """The Composition and every resource by fullUrl."""
    resources = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    return bundle["entry"][0]["resource"], resources


def sections(composition: dict) -> dict[str, dict]:
    return {s["code"]["coding"][0]["code"]: s for s in composition["section"]}


def test_an_empty_record_still_has_the_required_sections_each_with_an_empty_reason() -> None:
    bundle = json.loads(ips_bundle(empty_record(), NOW).model_dump_json())
    composition, _ = document(bundle)
    found = sections(composition)
    assert set(found) == REQUIRED
    for section in found.values():
        assert "entry" not in section
        assert section["emptyReason"]["coding"][0] == {
            "system": codes.EMPTY_REASON,
            "code": "unavailable",
        }
        assert section["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    assert problems(bundle) == []


def test_allergies_say_no_information_never_no_known_allergies() -> None:
    bundle = json.loads(ips_bundle(full_record(), NOW).model_dump_json())
    allergies = sections(document(bundle)[0])["48765-2"]
    assert allergies["emptyReason"]["coding"][0]["code"] == "unavailable"
    assert "No information about allergies" in allergies["emptyReason"]["text"]
    text = json.dumps(bundle)
    assert "716186003" not in text  # SNOMED CT "No known allergy" is never asserted
    assert "AllergyIntolerance" not in text


def test_problems_are_coded_in_kr_core_kcd8_with_their_names() -> None:
    bundle = json.loads(ips_bundle(full_record(), NOW).model_dump_json())
    composition, resources = document(bundle)
    conditions = [resources[e["reference"]] for e in sections(composition)["11450-4"]["entry"]]
    codings = [c["code"]["coding"][0] for c in conditions]
    assert [(c["system"], c["code"]) for c in codings] == [
        ("http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8", "I10"),
        ("http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8", "E11.9"),
    ]
    assert all(c["display"] for c in codings)
    assert all("clinicalStatus" not in c for c in conditions)  # claims do not say it


def test_medicines_carry_the_edi_product_code_or_keep_their_ingredient_code() -> None:
    bundle = json.loads(ips_bundle(full_record(), NOW).model_dump_json())
    composition, resources = document(bundle)
    statements = [resources[e["reference"]] for e in sections(composition)["10160-0"]["entry"]]
    systems = [
        {c["system"]: c["code"] for c in s["medicationCodeableConcept"]["coding"]}
        for s in statements
    ]
    assert systems[0][codes.EDI_DRUG] == "073400360"
    assert systems[0][codes.INGREDIENT] == "107601ATB"
    assert codes.EDI_DRUG not in systems[1]  # claimed by ingredient only: nothing invented
    assert systems[1][codes.INGREDIENT] == "111501ATB"
    assert systems[1][codes.ATC] == "C10AA05"
    assert statements[0]["effectivePeriod"] == {"start": "2025-05-20", "end": "2025-06-18"}


def test_the_medications_are_counted_on_the_records_as_of_day_and_say_so() -> None:
    """A supply that ends after the as-of day but before the summary is made is still active:
    the claims end on the as-of day, which the section's narrative and empty reason state."""
    record = full_record()
    ending = record.medicines.with_columns(
        pl.lit(date(2025, 5, 1)).alias("start"), pl.lit(26).alias("days")
    )  # supplied until 26 May: after AS_OF (25 May), before NOW (29 May)
    bundle = json.loads(ips_bundle(replace(record, medicines=ending), NOW).model_dump_json())
    composition, resources = document(bundle)
    section = sections(composition)["10160-0"]
    assert f"As of {AS_OF.isoformat()}" in section["text"]["div"]
    assert {resources[e["reference"]]["status"] for e in section["entry"]} == {"active"}
    assert problems(bundle) == []
    empty = replace(record, medicines=record.medicines.clear())
    bundle = json.loads(ips_bundle(empty, NOW).model_dump_json())
    section = sections(document(bundle)[0])["10160-0"]
    assert AS_OF.isoformat() in section["emptyReason"]["text"]
    assert problems(bundle) == []


def test_the_patient_is_pseudonymous_and_named_only_on_request() -> None:
    anonymous = json.loads(ips_bundle(full_record(), NOW).model_dump_json())
    patient = anonymous["entry"][1]["resource"]
    assert patient["identifier"] == [
        {"use": "secondary", "system": codes.CITIZEN_KEY, "value": KEY}
    ]
    assert patient["name"] == [{"use": "anonymous", "text": KEY}]
    assert patient["birthDate"] == "1948-05"
    named = json.loads(ips_bundle(full_record("김영희"), NOW).model_dump_json())
    assert named["entry"][1]["resource"]["name"] == [{"text": "김영희"}]
    assert problems(anonymous) == [] and problems(named) == []


def test_imaging_findings_are_labelled_as_a_reference_model_on_synthetic_data() -> None:
    bundle = json.loads(ips_bundle(full_record(), NOW).model_dump_json())
    composition, resources = document(bundle)
    results = sections(composition)["30954-2"]
    reports = [resources[e["reference"]] for e in results["entry"]]
    report = next(r for r in reports if r["resourceType"] == "DiagnosticReport")
    assert report["status"] == "preliminary"  # no clinician has reviewed the finding
    assert "not a diagnosis" in report["conclusion"]
    assert "synthetic data" in report["conclusion"]
    assert "synthetic data" in results["text"]["div"]
    study = resources[report["imagingStudy"][0]["reference"]]
    assert study["identifier"][0] == {"system": "urn:dicom:uid", "value": "urn:oid:2.25.1234567890"}
    vitals = sections(composition)["8716-3"]
    observation = resources[vitals["entry"][0]["reference"]]
    assert observation["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "8480-6",
        "display": "Systolic blood pressure",
    }
    assert problems(bundle) == []


def test_the_same_record_gives_the_same_bundle() -> None:
    assert ips_bundle(full_record(), NOW).model_dump_json() == (
        ips_bundle(full_record(), NOW).model_dump_json()
    )
