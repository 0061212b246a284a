"""The imaging order: what the claims side asks the imaging side to produce.

A visit at an AI-platform institution may bill an imaging procedure; each such procedure becomes an
``ImagingOrder``. The imaging generator renders it into DICOM files exactly as the clinic's
modality would send them, and records the ground truth separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class ImagingOrder:
    """One imaging study to produce.

    Attributes:
        accession: Accession number, unique in the city.
        exam: Exam code, a row of ``synth/params/imaging_exams.csv``.
        patient_id: The resident registration number, as clinics send it (``YYMMDD-Gxxxxxx``).
        patient_name: The patient's name in Korean.
        sex: ``"M"`` or ``"F"``.
        birth_date: Date of birth.
        institution_code: The institution's 8-digit HIRA code (YKIHO).
        institution_name: The institution's name in Korean.
        study_datetime: When the study was acquired (KST, naive).
        abnormal: Whether the study carries a simulated abnormality for its service.
        visit_key: ``SPEC_ID_SNO`` of the claim statement that billed the exam.
    """

    accession: str
    exam: str
    patient_id: str
    patient_name: str
    sex: str
    birth_date: date
    institution_code: str
    institution_name: str
    study_datetime: datetime
    abnormal: bool
    visit_key: str

    @property
    def age_years(self) -> int:
        """Age in whole years on the study date."""
        d = self.study_datetime.date()
        b = self.birth_date
        return d.year - b.year - ((d.month, d.day) < (b.month, b.day))

    @property
    def age_months(self) -> int:
        """Age in whole months on the study date (bone age is read against it)."""
        d = self.study_datetime.date()
        b = self.birth_date
        return (d.year - b.year) * 12 + d.month - b.month - (d.day < b.day)
