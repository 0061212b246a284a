"""Recent imaging: each study as an ImagingStudy, and what the AI reading services found in it
as a DiagnosticReport, always marked as a reference model's output on synthetic data."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import polars as pl

from lakehouse.fhir.codes import (
    AI_FINDING,
    DICOM_DCM,
    DICOM_UID,
    JSON,
    LOINC,
    REPORT_CATEGORY,
    Section,
    coding,
    concept,
    entry_id,
    profile,
)
from lakehouse.sr.codes import DISCLAIMER_EN, DISCLAIMER_KO
from models.runtime import registry
from models.runtime.services import RegistryError

TITLE: Final = "최근 영상 검사 · Recent imaging"
CODE: Final = ("30954-2", "Relevant diagnostic tests/laboratory data Narrative")
AI_LABEL: Final = (
    f"AI 참고 결과, 진단이 아닙니다. {DISCLAIMER_KO} · "
    f"AI reference result, not a diagnosis. {DISCLAIMER_EN}"
)
# LOINC's codes for the study the report is about: an ECG (11524-6 EKG study) or any other
# imaging study (18748-4 Diagnostic imaging study); v2-0074 sections EC and RAD.
ECG: Final = ("11524-6", "EKG study", "EC", "Electrocardiac")
IMAGING: Final = ("18748-4", "Diagnostic imaging study", "RAD", "Radiology")
# A report's status from the clinician's verification of its AI findings (IHE AIRA): unverified
# output is preliminary; once a clinician has accepted, amended or rejected it, final.
STATUS: Final = {"unverified": "preliminary"}
VERIFIED: Final = {
    "unverified": ("의료진 미확인", "not reviewed by a clinician"),
    "accepted": ("의료진 확인", "confirmed by a clinician"),
    "amended": ("의료진 수정", "amended by a clinician"),
    "rejected": ("의료진이 기각", "rejected by a clinician"),
}


def finding_line(row: dict[str, object]) -> str:
    """One AI finding in words: the service, what it looks for, the result and its score (or
    measured value), and whether a clinician has reviewed it."""
    try:
        service = registry.service(str(row["service"]))
        config = service.config
        what = (
            f"{service.name_ko} · {service.name_en}, 찾는 소견 looks for: "
            f"{config.finding_ko} · {config.finding_en}"
        )
    except RegistryError:  # a service retired from the registry since: its codes as stored
        what = f"{row['service']}: {row['finding_code']}"
    if row["status"] != "scored":
        return f"{what} — 판독 불가 · could not be scored"
    if row.get("value") is not None:
        result = f"{row['value']:g} {row.get('unit') or ''}".strip()
    else:
        flag = "해당함 flagged" if row.get("positive") else "해당하지 않음 not flagged"
        result = f"{flag}, 점수 score {float(row['score'] or 0) * 100:.0f}/100"  # type: ignore[arg-type]
    ko, en = VERIFIED.get(str(row["verification"]), (str(row["verification"]),) * 2)
    return f"{what} — {result} ({ko} · {en})"


def study_resources(
    study: dict[str, object], findings: pl.DataFrame, patient: str
) -> tuple[tuple[str, JSON], tuple[str, JSON], str]:
    """The ImagingStudy, its DiagnosticReport and the narrative line of one study."""
    uid = str(study["study_instance_uid"])
    modalities = [m for m in str(study["modalities"] or "").split("|") if m]
    when: datetime | None = study.get("study_datetime")  # type: ignore[assignment]
    imaging: JSON = {
        "resourceType": "ImagingStudy",
        "meta": profile("ImagingStudy-uv-ips"),
        "identifier": [{"system": DICOM_UID, "value": f"urn:oid:{uid}"}],
        "status": "available",
        "modality": [coding(DICOM_DCM, m) for m in modalities],
        "subject": {"reference": patient},
        "numberOfSeries": study["series_count"],
        "numberOfInstances": study["instance_count"],
    }
    if when is not None:
        imaging["started"] = when.isoformat()
    if study.get("study_description"):
        imaging["description"] = str(study["study_description"])
    study_url = entry_id("ImagingStudy", uid)
    code, display, section, section_name = ECG if "ECG" in modalities else IMAGING
    lines = [finding_line(r) for r in findings.iter_rows(named=True)]
    verified = set(findings["verification"].to_list()) if findings.height else set()
    report: JSON = {
        "resourceType": "DiagnosticReport",
        "meta": profile("DiagnosticReport-uv-ips"),
        "status": (
            "registered" if not lines else "preliminary" if "unverified" in verified else "final"
        ),
        "category": [concept(coding(REPORT_CATEGORY, section, section_name))],
        "code": concept(
            coding(LOINC, code, display), text=str(study.get("study_description") or display)
        ),
        "subject": {"reference": patient},
        "effectiveDateTime": (when or datetime.fromisoformat(str(study["study_date"]))).isoformat(),
        "imagingStudy": [{"reference": study_url}],
    }
    if lines:
        report["conclusion"] = " / ".join(lines) + f". {AI_LABEL}"
        report["conclusionCode"] = [
            concept(coding(AI_FINDING, str(r["finding_code"])))
            for r in findings.filter(pl.col("positive").fill_null(False)).iter_rows(named=True)
        ] or None
        if report["conclusionCode"] is None:
            del report["conclusionCode"]
    name = str(study.get("study_description") or "/".join(modalities))
    day = report["effectiveDateTime"][:10]
    line = f"{day} {name}: " + (
        "; ".join(lines) + f". {AI_LABEL}" if lines else "AI 결과 없음 · no AI result"
    )
    return (study_url, imaging), (entry_id("DiagnosticReport", uid), report), line


def section(studies: pl.DataFrame, findings: pl.DataFrame, patient: str) -> Section:
    """Recent studies as DiagnosticReports (the section's entries), each referencing its
    ImagingStudy (in the Bundle, not in the section: IPS results take reports and observations).

    Args:
        studies: The recent studies: ``study_instance_uid``, ``study_datetime``, ``study_date``,
            ``modalities`` (| separated), ``study_description``, ``series_count``,
            ``instance_count``; newest first.
        findings: Their AI findings (``ai.findings`` rows).
        patient: The Patient's fullUrl.
    """
    entries, supporting, lines = [], [], []
    for study in studies.iter_rows(named=True):
        mine = findings.filter(pl.col("study_instance_uid") == study["study_instance_uid"])
        imaging, report, line = study_resources(study, mine, patient)
        supporting.append(imaging)
        entries.append(report)
        lines.append(line)
    return Section(TITLE, CODE, entries, lines, supporting)
