"""Train the lumbar compression-fracture reference model: one wedged vertebral body on a lateral
lumbar spine film.

Run with the training environment: ``.venv-train/bin/python models/spine_fracture/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="spine_fracture",
    exams=("LSPINE_LAT",),
    kind="classification",
    finding_code="compression_fracture",
    finding_ko="요추 압박골절 의심",
    finding_en="Suspected vertebral compression fracture",
    findings_covered=("compression_fracture",),
    counts=Counts(train=800, validation=300, test=400),
    steps=600,
    image=ImageSpec(size=64, channels=1, window="header"),
    intended_use=(
        "Triage of lateral lumbar spine radiographs (T12-L5) for a vertebral compression "
        "fracture: a body whose anterior height is lost, with a sclerotic endplate band."
    ),
)

if __name__ == "__main__":
    main(SPEC)
