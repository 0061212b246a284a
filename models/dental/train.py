"""Train the dental radiograph reference model: caries or a periapical lesion on a panoramic or
intra-oral periapical film.

Run with the training environment: ``.venv-train/bin/python models/dental/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="dental",
    exams=("DENTAL_PANO", "DENTAL_IO"),
    kind="classification",
    finding_code="dental_lesion",
    finding_ko="치아우식·치근단 병변 의심",
    finding_en="Suspected caries or periapical lesion",
    findings_covered=("caries", "periapical_lesion"),
    counts=Counts(train=2400, validation=300, test=400),
    steps=2000,
    image=ImageSpec(size=128, channels=1, window="header"),
    stem=True,
    flip=True,
    intended_use=(
        "Triage of dental panoramic (PX) and intra-oral periapical (IO) radiographs for a "
        "carious lesion at a crown or a periapical lucency at a root apex. An intra-oral study's "
        "score is the higher of its two films."
    ),
)

if __name__ == "__main__":
    main(SPEC)
