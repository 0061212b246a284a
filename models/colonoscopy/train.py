"""Train the colonoscopy reference model: a colorectal polyp in any of the captured frames.

Run with the training environment: ``.venv-train/bin/python models/colonoscopy/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="colonoscopy",
    exams=("COLONOSCOPY",),
    kind="classification",
    finding_code="polyp",
    finding_ko="대장 용종 의심",
    finding_en="Suspected colorectal polyp",
    findings_covered=("polyp",),
    counts=Counts(train=800, validation=300, test=400),
    steps=500,
    image=ImageSpec(size=64, channels=3, window="header"),
    intended_use=(
        "Triage of colonoscopy captures (four frames per study) for a polyp; the study takes "
        "the highest frame score."
    ),
)

if __name__ == "__main__":
    main(SPEC)
