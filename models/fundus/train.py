"""Train the fundus photography reference model: retinal haemorrhages or hard exudates in either
eye's colour photograph.

Run with the training environment: ``.venv-train/bin/python models/fundus/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="fundus",
    exams=("FUNDUS",),
    kind="classification",
    finding_code="retinal_lesion",
    finding_ko="망막 출혈·경성 삼출물 의심",
    finding_en="Suspected retinal haemorrhage or hard exudates",
    findings_covered=("retinal_haemorrhage", "hard_exudates"),
    counts=Counts(train=800, validation=300, test=400),
    steps=600,
    image=ImageSpec(size=64, channels=3, window="header"),
    intended_use=(
        "Triage of colour fundus photographs (one per eye) for retinal haemorrhages or hard "
        "exudates; the study takes the higher of its two eyes' scores."
    ),
)

if __name__ == "__main__":
    main(SPEC)
