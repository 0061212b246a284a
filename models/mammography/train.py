"""Train the screening mammography reference model: a mass in either breast, scored per view
and per study over its four views.

Run with the training environment: ``.venv-train/bin/python models/mammography/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="mammography",
    exams=("MAMMO_SCREEN",),
    kind="classification",
    finding_code="mass",
    finding_ko="유방 종괴 의심",
    finding_en="Suspected breast mass",
    findings_covered=("mass",),
    counts=Counts(train=800, validation=300, test=400),
    steps=600,
    image=ImageSpec(size=64, channels=1, window="header"),
    intended_use=(
        "Triage of four-view screening mammograms (RCC, LCC, RMLO, LMLO; FOR PRESENTATION) "
        "for a mass, round-lobulated or spiculated. Each view is scored; the study takes the "
        "highest view score."
    ),
)

if __name__ == "__main__":
    main(SPEC)
