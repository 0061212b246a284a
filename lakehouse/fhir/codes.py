"""The code systems, identifiers and building blocks every part of the IPS Bundle shares.

Sources of the system URIs:

* LOINC section and document codes, ``list-empty-reason``, ``observation-category``,
  ``condition-category``: the IPS Implementation Guide 2.0.0 (``hl7.fhir.uv.ips``), whose
  StructureDefinitions the tests ship under ``tests/fhir/ips/``.
* KCD-8 and HIRA EDI drug product codes: KR Core 1.0.2 (HL7 Korea,
  http://www.hl7korea.or.kr/fhir/krcore/): ``Condition.code.coding:KCD-8`` binds
  ``http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8``, ``Medication.code.coding:EDI`` fixes
  ``http://www.hl7korea.or.kr/CodeSystem/hira-edi-medication``, and its ingredient slice takes WHO
  ATC (``http://www.whocc.no/atc``).
* KR Core names no system for HIRA's main-ingredient code (주성분코드), nor for the platform's
  own codes (the citizen key, centre measures, AI findings): those use the platform's URIs under
  ``PLATFORM``, a host in the reserved ``.example`` domain until the platform publishes them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from html import escape
from typing import Any, Final

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
KCD8: Final = "http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8"
EDI_DRUG: Final = "http://www.hl7korea.or.kr/CodeSystem/hira-edi-medication"
ATC: Final = "http://www.whocc.no/atc"
DICOM_DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
EMPTY_REASON: Final = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
REPORT_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"
PLATFORM: Final = "http://gwangju-ai-health.example/fhir"
CITIZEN_KEY: Final = f"{PLATFORM}/NamingSystem/citizen-key"
INGREDIENT: Final = f"{PLATFORM}/CodeSystem/hira-main-ingredient"
MEASURE: Final = f"{PLATFORM}/CodeSystem/centre-measure"
AI_FINDING: Final = f"{PLATFORM}/CodeSystem/ai-finding"
DICOM_UID: Final = "urn:dicom:uid"
IPS_PROFILE: Final = "http://hl7.org/fhir/uv/ips/StructureDefinition"
NAMESPACE: Final = uuid.UUID("6f1c1c3e-8d4e-5b8a-9c61-2f6a3c0e9b11")  # the Bundle's entry ids

JSON = dict[str, Any]


def entry_id(*parts: object) -> str:
    """A stable ``urn:uuid:`` for one resource of the document: the same record gives the same
    ids, so two exports of an unchanged record differ only in their timestamp."""
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, ':'.join(str(p) for p in parts))}"


def coding(system: str, code: str, display: str | None = None) -> JSON:
    """One Coding (``display`` left out when unknown, never made up)."""
    found: JSON = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(*codings: JSON, text: str | None = None) -> JSON:
    """A CodeableConcept of these codings and its text."""
    found: JSON = {"coding": list(codings)} if codings else {}
    if text:
        found["text"] = text
    return found


def narrative(lines: list[str], heading: str | None = None) -> JSON:
    """Generated XHTML narrative: the lines escaped, as a list (or one paragraph)."""
    head = f"<p><b>{escape(heading)}</b></p>" if heading else ""
    if len(lines) == 1:
        body = f"<p>{escape(lines[0])}</p>"
    else:
        body = "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{head}{body}</div>',
    }


def profile(name: str) -> JSON:
    """``meta`` claiming one IPS profile."""
    return {"profile": [f"{IPS_PROFILE}/{name}"]}


@dataclass(frozen=True)
class Section:
    """One section of the Composition, with the resources it holds.

    Attributes:
        title: Its heading, Korean then English.
        code: Its LOINC code and display (the IPS slice's pattern).
        entries: ``(fullUrl, resource)`` the section references.
        lines: Its narrative, one line per entry (or the empty section's statement).
        supporting: Resources in the Bundle its entries reference (an ImagingStudy).
        empty_reason: The ``list-empty-reason`` code when it has no entry.
        heading: A line the narrative opens with, above the entries' lines (the day the
            medications are counted from).
    """

    title: str
    code: tuple[str, str]
    entries: list[tuple[str, JSON]]
    lines: list[str]
    supporting: list[tuple[str, JSON]] = field(default_factory=list)
    empty_reason: str | None = None
    heading: str | None = None

    def composition_section(self) -> JSON:
        """The section as the Composition holds it."""
        found: JSON = {
            "title": self.title,
            "code": concept(coding(LOINC, *self.code)),
            "text": narrative(self.lines, self.heading),
        }
        if self.entries:
            found["entry"] = [{"reference": url} for url, _ in self.entries]
        else:
            found["emptyReason"] = concept(
                coding(EMPTY_REASON, self.empty_reason or "unavailable"), text=self.lines[0]
            )
        return found
