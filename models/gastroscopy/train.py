"""Train the gastroscopy reference model: a gastric ulcer in any of the captured frames.

Run with the training environment: ``.venv-train/bin/python models/gastroscopy/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="gastroscopy",
    exams=("GASTROSCOPY",),
    kind="classification",
    finding_code="ulcer",
    finding_ko="위궤양 의심",
    finding_en="Suspected gastric ulcer",
    findings_covered=("ulcer",),
    counts=Counts(train=800, validation=300, test=400),
    steps=500,
    image=ImageSpec(size=64, channels=3, window="header"),
    intended_use=(
        "Triage of upper-GI endoscopy captures (four frames per study) for a gastric ulcer; "
        "the study takes the highest frame score."
    ),
)

if __name__ == "__main__":
    main(SPEC)
