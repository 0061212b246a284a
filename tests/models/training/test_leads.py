"""ECG training for any lead set (issue 21): lead dropout, window labels from the truth's
segments, and the beat detector the card uses on pydicom's real ECG (numpy only, no torch)."""

from __future__ import annotations

import io

import numpy as np
import pydicom

from models.runtime.waveform import LEADS_12, WaveformSpec, usable_leads
from models.training.data import _window_labels
from models.training.dropout import dropout, masks
from models.training.leads import r_peaks
from models.training.spec import Counts, ServiceSpec
from synth.imaging.render_ecg import HOLTER, RESTING
from tests.pipelines.ecg import recorded

SPEC = ServiceSpec(
    service="ecg",
    exams=("ECG_12LEAD",),
    kind="classification",
    finding_code="arrhythmia",
    finding_ko="부정맥",
    finding_en="Arrhythmia",
    findings_covered=(),
    counts=Counts(1, 1, 1),
    waveform=WaveformSpec(),
    lead_sets=(("II", "V5"), ("II",)),
    dropout=0.5,
)


def test_lead_dropout_keeps_all_leads_or_one_lead_set() -> None:
    sets = masks(SPEC)
    assert [[LEADS_12[k] for k in np.flatnonzero(row)] for row in sets] == [["II", "V5"], ["II"]]
    drawn = dropout(SPEC, np.random.default_rng(0), 4000)[:, :, 0]
    full = (drawn == 1).all(axis=1)
    assert 0.45 < 1 - full.mean() < 0.55
    for row in drawn[~full]:
        assert any((row == s).all() for s in sets)


def test_holter_windows_are_labelled_by_the_truths_segments() -> None:
    data, study = recorded(HOLTER, seconds=60)  # atrial fibrillation from part-way
    ds = pydicom.dcmread(io.BytesIO(data))
    ((start, _end),) = study.ecg_segments
    onset = start / HOLTER.hz
    starts = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0)
    labels = _window_labels(ds, starts, 10.0, {"ecg_segments": study.ecg_segments})
    assert labels == [s + 10 - onset >= 0.3 for s in starts]
    assert any(labels) and not all(labels)
    assert _window_labels(ds, starts, 10.0, {"ecg_segments": None}) == [False] * 6


def test_the_beat_detector_counts_a_regular_rhythm() -> None:
    data, _ = recorded(RESTING, abnormal=False)
    leads = usable_leads(pydicom.dcmread(io.BytesIO(data)), WaveformSpec())
    peaks = r_peaks(leads.signal[:, leads.names.index("II")], leads.rate_hz)
    rr = np.diff(peaks) / leads.rate_hz
    assert 8 <= len(peaks) <= 17  # 55-95 beats per minute over 10 s
    assert rr.std() / rr.mean() < 0.08
