"""The IPS check itself: HL7's own example Bundles pass it, and a Bundle that breaks a section
slice, an invariant, a cardinality, a fixed value, an entry type or a reference fails it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lakehouse.fhir import ips_bundle
from tests.fhir.builders import NOW, full_record
from tests.fhir.ips_check import problems

EXAMPLES = Path(__file__).with_name("ips")


@pytest.mark.parametrize(
    "name", ["Bundle-bundle-no-info-required-sections.json", "Bundle-IPS-examples-Bundle-01.json"]
)
def test_hl7s_own_examples_pass(name: str) -> None:
    assert problems(json.loads((EXAMPLES / name).read_text(encoding="utf-8"))) == []


def _good() -> dict:
    return json.loads(ips_bundle(full_record(), NOW).model_dump_json())


def _section(bundle: dict, code: str) -> dict:
    composition = bundle["entry"][0]["resource"]
    return next(s for s in composition["section"] if s["code"]["coding"][0]["code"] == code)


def _drop_allergies(b: dict) -> None:
    composition = b["entry"][0]["resource"]
    composition["section"] = [
        s for s in composition["section"] if s["code"]["coding"][0]["code"] != "48765-2"
    ]


def _neither_entry_nor_reason(b: dict) -> None:
    _section(b, "48765-2").pop("emptyReason")


def _two_problem_sections(b: dict) -> None:
    b["entry"][0]["resource"]["section"].append(copy.deepcopy(_section(b, "11450-4")))


def _medicine_in_problems(b: dict) -> None:
    medicine = _section(b, "10160-0")["entry"][0]
    _section(b, "11450-4")["entry"].append(medicine)


def _no_title(b: dict) -> None:
    _section(b, "10160-0").pop("title")


def _wrong_type(b: dict) -> None:
    b["entry"][0]["resource"]["type"]["coding"][0]["code"] = "34133-9"


def _collection(b: dict) -> None:
    b["type"] = "collection"


def _composition_second(b: dict) -> None:
    b["entry"][0], b["entry"][1] = b["entry"][1], b["entry"][0]


def _no_birth_date(b: dict) -> None:
    b["entry"][1]["resource"].pop("birthDate")


def _nameless(b: dict) -> None:
    b["entry"][1]["resource"]["name"] = [{"use": "anonymous"}]


def _dangling(b: dict) -> None:
    b["entry"] = [e for e in b["entry"] if e["resource"]["resourceType"] != "ImagingStudy"]


def _no_subject_reference(b: dict) -> None:
    condition = next(e for e in b["entry"] if e["resource"]["resourceType"] == "Condition")
    condition["resource"]["subject"] = {"display": "someone"}


BREAKS: dict[str, tuple[Callable[[dict], None], str]] = {
    "allergies section missing": (_drop_allergies, "slice sectionAllergies: needs at least 1"),
    "empty section without emptyReason": (_neither_entry_nor_reason, "ips-comp-1"),
    "two problem sections": (_two_problem_sections, "slice sectionProblems: allows at most 1"),
    "a medicine in the problems": (_medicine_in_problems, "is a MedicationStatement"),
    "section without title": (_no_title, "title: needs at least 1"),
    "not a patient summary": (_wrong_type, "pattern"),
    "not a document": (_collection, "fixedCode"),
    "composition not first": (_composition_second, "bdl-ips-1"),
    "patient without birth date": (_no_birth_date, "birthDate: needs at least 1"),
    "patient without any name": (_nameless, "ips-pat-1"),
    "reference outside the bundle": (_dangling, "is not in the Bundle"),
    "condition without subject reference": (_no_subject_reference, "subject.reference"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_broken_bundle_fails(name: str) -> None:
    good = _good()
    assert problems(good) == []
    breaking, expected = BREAKS[name]
    broken = copy.deepcopy(good)
    breaking(broken)
    found = problems(broken)
    assert any(expected in p for p in found), found
