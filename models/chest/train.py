"""Train the chest radiograph reference model: a nodule or consolidation on a frontal film.

Run with the training environment: ``.venv-train/bin/python models/chest/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="chest",
    exams=("CXR_PA", "CXR_AP"),
    kind="classification",
    finding_code="lung_opacity",
    finding_ko="폐 병변(결절·경화) 의심",
    finding_en="Suspected lung lesion (nodule or consolidation)",
    findings_covered=("nodule", "consolidation"),
    counts=Counts(train=800, validation=300, test=400),
    steps=1000,
    image=ImageSpec(size=64, channels=1, window="header"),
    intended_use=(
        "Triage of frontal chest radiographs (PA and AP, CR or DX) for a focal lung opacity: "
        "a nodule or a patch of consolidation. The score ranks studies for a radiologist's "
        "reading; it does not diagnose."
    ),
)

if __name__ == "__main__":
    main(SPEC)
