"""The exam catalogue (``synth/params/imaging_exams.csv``) as typed records.

Renderers, DICOM builders and the writer all key on the exam code; reading the catalogue in one
place keeps the service of each exam, and so the ground-truth route, defined exactly once.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOGUE = Path(__file__).resolve().parents[1] / "params" / "imaging_exams.csv"

QA_EXAM = "QA_PHANTOM"


@dataclass(frozen=True)
class Exam:
    """One row of the catalogue.

    Attributes:
        code: Exam code, for example ``CXR_PA``.
        service: The AI service that reads it, or ``None`` for exams no service reads.
        name_ko: Korean name, as Korean devices write the study description.
        name_en: English name, as imported devices write it.
        modality: DICOM Modality (``DX``, ``CR``, ``PX``, ``IO``, ``MG``, ``CT``, ``MR``, ``ECG``,
            ``OP``, ``ES``).
        sex: ``"M"``/``"F"`` when only one sex is eligible, else ``None``.
        age_min: Youngest eligible age in years.
        age_max: Oldest eligible age in years.
        abnormal_rate: Stated fraction of studies with a simulated abnormality.
    """

    code: str
    service: str | None
    name_ko: str
    name_en: str
    modality: str
    sex: str | None
    age_min: int
    age_max: int
    abnormal_rate: float


@cache
def exams() -> dict[str, Exam]:
    """All exams by code, in catalogue order."""
    with CATALOGUE.open(encoding="utf-8") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {
            row["exam"]: Exam(
                code=row["exam"],
                service=row["service"] or None,
                name_ko=row["name_ko"],
                name_en=row["name_en"],
                modality=row["modality"],
                sex=row["sex"] or None,
                age_min=int(row["age_min"]),
                age_max=int(row["age_max"]),
                abnormal_rate=float(row["abnormal_rate"]),
            )
            for row in rows
        }


def exam(code: str) -> Exam:
    """The exam with this code; ``KeyError`` names unknown codes."""
    try:
        return exams()[code]
    except KeyError:
        raise KeyError(f"unknown imaging exam {code!r}") from None
