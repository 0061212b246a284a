"""Train the leg-length discrepancy reference model: the difference between the two legs on a
standing full-length lower-limb film, as a fraction of the image's longer side.

Run with the training environment: ``.venv-train/bin/python models/leg_length/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="leg_length",
    exams=("LEG_LENGTH",),
    kind="regression",
    finding_code="leg_length_difference",
    finding_ko="다리 길이 차이",
    finding_en="Leg-length difference",
    findings_covered=("leg_length_discrepancy",),
    counts=Counts(train=800, validation=300, test=400),
    steps=800,
    image=ImageSpec(size=128, channels=1, window="header"),
    stem=True,
    unit="mm",
    scale="image_extent_mm",
    flag="above",
    intended_use=(
        "Measurement of the leg-length difference on standing full-length AP radiographs of "
        "both lower limbs, flagging studies whose difference is above the threshold."
    ),
    inputs_note=(
        "The film is tall (1206 x 395 mm); a 128-pixel square keeps about 9.4 mm per pixel, "
        "so the model reads sub-pixel differences in where the two legs end."
    ),
)

if __name__ == "__main__":
    main(SPEC)
