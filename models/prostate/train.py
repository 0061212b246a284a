"""Train the prostate MRI reference model: a peripheral-zone lesion of PI-RADS 4-5 appearance on
any slice of the T2-weighted, DWI or ADC series.

Run with the training environment: ``.venv-train/bin/python models/prostate/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="prostate",
    exams=("PROSTATE_MR",),
    kind="classification",
    finding_code="suspicious_lesion",
    finding_ko="전립선 의심 병변(PI-RADS 4-5 양상)",
    finding_en="Suspected clinically significant lesion (PI-RADS 4-5 appearance)",
    findings_covered=("suspicious_lesion",),
    counts=Counts(train=300, validation=120, test=200),
    steps=800,
    image=ImageSpec(size=64, channels=1, window="header"),
    intended_use=(
        "Triage of biparametric prostate MRI (T2-weighted, DWI and ADC, 12 slices each) for a "
        "peripheral-zone lesion; every slice of every series is scored and the study takes the "
        "highest score."
    ),
    limits=(
        "Slices are scored one at a time: the model does not combine T2, DWI and ADC of the "
        "same level as a reader (or PI-RADS) does.",
    ),
)

if __name__ == "__main__":
    main(SPEC)
