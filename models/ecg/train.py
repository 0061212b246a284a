"""Train the arrhythmia reference model on the resting 12-lead ECG: atrial fibrillation or
frequent premature ventricular contractions.

Run with the training environment: ``.venv-train/bin/python models/ecg/train.py``.
"""

from __future__ import annotations

from models.runtime.preprocess import WaveformSpec
from models.training.run import main
from models.training.spec import Counts, ServiceSpec

SPEC = ServiceSpec(
    service="ecg",
    exams=("ECG_12LEAD",),
    kind="classification",
    finding_code="arrhythmia",
    finding_ko="부정맥 의심(심방세동·심실조기수축)",
    finding_en="Suspected arrhythmia (atrial fibrillation or PVCs)",
    findings_covered=("atrial_fibrillation", "premature_ventricular_contractions"),
    counts=Counts(train=800, validation=300, test=400),
    steps=600,
    waveform=WaveformSpec(rate_hz=250, seconds=10, leads=12),
    widths=(16, 32, 32, 32),
    pools=(5, 5, 5, 2),
    intended_use=(
        "Triage of resting 12-lead ECGs for atrial fibrillation or frequent premature "
        "ventricular contractions; the heatmap gives each one-second segment's contribution."
    ),
)

if __name__ == "__main__":
    main(SPEC)
