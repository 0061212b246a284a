"""Train the bone age reference model: bone age in months from a left-hand radiograph and the
patient's sex, flagged when it deviates from the chronological age.

Run with the training environment: ``.venv-train/bin/python models/bone_age/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import ImageSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="bone_age",
    exams=("HAND_BONEAGE",),
    kind="regression",
    finding_code="bone_age",
    finding_ko="골연령",
    finding_en="Bone age",
    findings_covered=("advanced_bone_age", "delayed_bone_age"),
    counts=Counts(train=800, validation=300, test=400),
    steps=1500,
    image=ImageSpec(size=64, channels=1, window="header"),
    sex_input=True,
    unit="month",
    flag="deviation",
    intended_use=(
        "Estimation of bone age (Greulich-Pyle style maturity reading) from a PA radiograph of "
        "the left hand in children aged 2-17, flagging an advanced or delayed bone age when it "
        "deviates from the chronological age by more than the threshold."
    ),
    limits=(
        "The synthetic hands are drawn from bone age alone; sex does not change them, so the "
        "sex input carries no information here (its learnt term is under Metrics).",
        "The flag uses one threshold in months for every age, while the synthetic truth's "
        "normal spread widens with age (4 months at 0 to 12 months from 13 years): deviations "
        "are flagged more readily in older children.",
    ),
)

if __name__ == "__main__":
    main(SPEC)
