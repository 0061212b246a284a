"""Train the arrhythmia reference model on ECGs of any lead set: atrial fibrillation or frequent
premature ventricular contractions, on 12-lead resting ECGs, 2-lead Holters and single-lead
patches.

One model reads the 12 standard leads, with the leads a recorder lacks set to zero, and learns
this by lead dropout (``models.training.dropout``): half the training windows keep only lead II
and V5, lead II or lead I. One network rather than a lead-II rhythm model beside a 12-lead head:
it keeps one ONNX contract and one threshold for every recorder, uses every lead a recording has
(V5 helps with PVCs, whose axis differs from the sinus beat's), and its card reports each lead set
on the same test split.

Run with the training environment: ``.venv-train/bin/python models/ecg/train.py``.
"""

from __future__ import annotations

from models.runtime.waveform import LEADS_12, WaveformSpec
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
    counts=Counts(train=1000, validation=400, test=800),
    steps=1500,
    waveform=WaveformSpec(rate_hz=250, seconds=10, leads=12, lead_names=LEADS_12),
    widths=(16, 32, 32, 32),
    pools=(5, 5, 5, 2),
    version="1.1.0",
    lead_sets=(("II", "V5"), ("II",), ("I",)),
    dropout=0.5,
    intended_use=(
        "Triage of ECG recordings for atrial fibrillation or frequent premature ventricular "
        "contractions: resting 12-lead ECGs, 2- or 3-lead Holter recordings and single-lead "
        "patches at 125-1,000 Hz, at least 10 s long. Long recordings are scored in 10 s "
        "windows; the heatmap gives each one-second segment's contribution in a window, and the "
        "finding names the worst windows with their times."
    ),
    inputs_note=(
        "Why one model with lead dropout, not a lead-II rhythm model beside a 12-lead head: one "
        "ONNX contract and one threshold serve every recorder, every lead a recording has is "
        "used, and each lead set is measured on the same test split (below)."
    ),
    limits=(
        "The study's score is its worst window's: a long recording has many windows, so its "
        "chance of one false alarm grows with its length (the 2-lead row above shows the "
        "generator's 5-minute Holters; a day's recording has 8,640 windows).",
        "A recording whose leads carry no CID 3001 code (only a free-text label) is refused, "
        "not guessed at.",
    ),
)

if __name__ == "__main__":
    main(SPEC)
