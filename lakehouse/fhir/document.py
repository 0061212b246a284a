"""The IPS document: a Composition (LOINC 60591-5) over its sections, in a document Bundle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import polars as pl
from fhir.resources.R4B.bundle import Bundle

from lakehouse.fhir import allergies, imaging, medications, patient, problems, results
from lakehouse.fhir.codes import (
    JSON,
    LOINC,
    PLATFORM,
    Section,
    coding,
    concept,
    entry_id,
    narrative,
    profile,
)

TITLE: Final = "환자 요약 (국제환자요약 IPS) · International Patient Summary"
AUTHOR: Final = "광주 AI 공공의료 서비스 · Gwangju AI public medical service"
SYNTHETIC: Final = (
    "이 요약의 모든 자료는 합성 데이터입니다 · All data in this summary is synthetic "
    "(a demonstration platform)"
)


@dataclass(frozen=True)
class Record:
    """What one citizen's summary is built from, each part already chosen
    (``lakehouse.fhir.select``).

    Attributes:
        person: ``citizen_key``, ``sex``, ``birth_year``, ``birth_month``.
        name: The citizen's name (their own export only), else None.
        problems: ``problems.section``'s frame.
        medicines: ``medications.section``'s frame.
        measurements: ``results.sections``' frame.
        studies: ``imaging.section``'s studies.
        findings: Their AI findings.
        as_of: The day the medicines are counted from: today, or the last day the national
            extracts reach when that is earlier (``Medicines._as_of``).
    """

    person: dict[str, Any]
    name: str | None
    problems: pl.DataFrame
    medicines: pl.DataFrame
    measurements: pl.DataFrame
    studies: pl.DataFrame
    findings: pl.DataFrame
    as_of: date


def _merged(first: Section, second: Section) -> Section:
    """Two parts of one IPS section (the results section holds observations and reports)."""
    return Section(
        first.title,
        first.code,
        first.entries + second.entries,
        first.lines + second.lines,
        first.supporting + second.supporting,
    )


def sections(record: Record, subject: str) -> list[Section]:
    """The document's sections in reading order: the three IPS requires (problems, allergies,
    medications), then vital signs and results where the record has any."""
    found = [
        problems.section(record.problems, subject),
        allergies.section(),
        medications.section(record.medicines, subject, record.as_of),
    ]
    measured = results.sections(record.measurements, subject)
    vitals = [s for s in measured if s.code == results.VITALS_CODE]
    tests = [s for s in measured if s.code == results.RESULTS_CODE]
    if record.studies.height:
        studies = imaging.section(record.studies, record.findings, subject)
        tests = [_merged(tests[0], studies)] if tests else [studies]
    return found + vitals + tests


def ips_bundle(record: Record, now: datetime) -> Bundle:
    """The International Patient Summary of one citizen as a FHIR R4B document Bundle.

    Args:
        record: What the summary holds.
        now: When it is made (an aware datetime): the Composition's date and the Bundle's
            timestamp.
    """
    subject, person = patient.patient(record.person, record.name)
    parts = sections(record, subject)
    key = record.person["citizen_key"]
    composition_url = entry_id("Composition", key, now.isoformat())
    author: JSON = {
        "resourceType": "Organization",
        "identifier": [{"system": f"{PLATFORM}/NamingSystem/platform", "value": "gjh"}],
        "name": AUTHOR,
    }
    author_url = entry_id("Organization", "platform")
    composition: JSON = {
        "resourceType": "Composition",
        "meta": profile("Composition-uv-ips"),
        "language": "ko",
        "text": narrative([SYNTHETIC], TITLE),
        "status": "final",
        "type": concept(coding(LOINC, "60591-5", "Patient summary Document")),
        "subject": {"reference": subject},
        "date": now.isoformat(),
        "author": [{"reference": author_url}],
        "title": TITLE,
        "confidentiality": "N",
        "section": [s.composition_section() for s in parts],
    }
    entries = [(composition_url, composition), (subject, person), (author_url, author)]
    for part in parts:
        entries += part.entries + part.supporting
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "meta": profile("Bundle-uv-ips"),
            "identifier": {
                "system": "urn:ietf:rfc:3986",
                "value": entry_id("Bundle", key, now.isoformat()),
            },
            "type": "document",
            "timestamp": now.isoformat(),
            "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
        }
    )


def everything_bundle(record: Record, now: datetime) -> Bundle:
    """All of one citizen's record as a FHIR R4B ``collection`` Bundle, for "export everything":
    the same resources as the summary (one builder for both, so they never disagree), over the
    whole history rather than the recent window, with no Composition (it is a copy of the
    record, not a clinical document).

    Args:
        record: Every row, unwindowed (problems over all time, every prescription, every
            measurement, every study).
        now: When it is made (the Bundle's timestamp; medicines supplied until before
            ``record.as_of`` are ``completed``).
    """
    subject, person = patient.patient(record.person, record.name)
    entries = [(subject, person)]
    for part in sections(record, subject):
        entries += part.entries + part.supporting
    key = record.person["citizen_key"]
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "identifier": {
                "system": "urn:ietf:rfc:3986",
                "value": entry_id("Bundle", "everything", key, now.isoformat()),
            },
            "type": "collection",
            "timestamp": now.isoformat(),
            "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
        }
    )
