"""The allergies section (LOINC 48765-2), which says honestly that nothing is known."""

from __future__ import annotations

from lakehouse.fhir.codes import Section

TITLE = "알레르기 · Allergies and intolerances"
CODE = ("48765-2", "Allergies and adverse reactions Document")
NO_INFORMATION = (
    "알레르기 정보 없음: 이 요약의 출처(건강보험 청구, 약국 조제, 경로당 측정, 영상)에는 알레르기 "
    "기록이 없습니다. '알려진 알레르기 없음'이 아닙니다 · No information about allergies: the "
    "sources of this summary (insurance claims, pharmacy dispensing, centre measurements, imaging) "
    "hold no allergy records. This is not 'no known allergies'."
)


def section() -> Section:
    """The allergies section: no information about allergies, never "no known allergies".

    IPS separates two statements. "No known allergies" (an AllergyIntolerance coded SNOMED CT
    716186003) is a clinician's assertion, after asking, that the person has none. "No
    information" is the section's ``emptyReason`` ``unavailable`` (list-empty-reason), the form
    HL7's own example ``Bundle-bundle-no-info-required-sections`` (IPS 2.0.0) uses. None of this
    platform's sources (HIRA claims, pharmacy dispensing, the seniors' centre's devices, DICOM
    studies) records allergies, or records that anyone asked: an empty source says nothing
    about the person, so only "no information" is true. A reader must still ask the patient.
    """
    return Section(TITLE, CODE, [], [NO_INFORMATION], empty_reason="unavailable")
