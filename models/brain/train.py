"""Train the brain reference model: a saccular aneurysm on MR angiography (TOF) or an acute
infarct on diffusion MR (DWI, ADC) or non-contrast CT, one model over every routed slice.

Run with the training environment: ``.venv-train/bin/python models/brain/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="brain",
    exams=("BRAIN_MRA", "BRAIN_DWI", "BRAIN_CT"),
    kind="classification",
    finding_code="aneurysm_or_infarct",
    finding_ko="뇌동맥류·급성 뇌경색 의심",
    finding_en="Suspected cerebral aneurysm or acute infarct",
    findings_covered=("aneurysm", "acute_infarct"),
    counts=Counts(train=480, validation=180, test=300),
    steps=1200,
    image=ImageSpec(size=128, channels=1, window="header"),
    stem=True,
    intended_use=(
        "Triage of brain MR angiography (TOF source slices), diffusion MR (DWI and ADC series) "
        "and non-contrast head CT for a saccular aneurysm or an acute infarct. Every routed "
        "slice is scored and the study takes the highest score."
    ),
    limits=(
        "One network reads four kinds of slices (TOF, DWI, ADC, CT) and two findings; the "
        "per-exam AUROC lines show where it is weaker.",
    ),
)

if __name__ == "__main__":
    main(SPEC)
