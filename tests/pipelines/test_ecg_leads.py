"""The ECG service on what recorders send (issue 21, part 1): a 12-lead ECG, a 2-lead Holter at
360 Hz for 30 minutes, a single-lead patch at 250 Hz, each scored; a recording with no usable
rhythm lead failed with its reason. Real DICOM files, written by the generator, through the
scorers and the SR."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.coding import Code

from lakehouse import dicom_store, sr
from models.runtime.registry import registry
from pipelines.score import scoring
from synth.imaging.render_ecg import HOLTER, PATCH, RESTING, Recorder
from synth.imaging.rendered import RenderedStudy
from tests.pipelines.ecg import flat, recorded, respiration_only, stored_job

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lake"))


def _score(data: bytes) -> dict[str, Any]:
    with scoring.Scorers() as scorers:
        (row,) = scorers.score([(registry()["ecg"], [stored_job(data)])], datetime.now(UTC))
    return row


def _scored(
    recorder: Recorder, seconds: int | None = None, seed: int = 3
) -> tuple[dict[str, Any], dict[str, Any], RenderedStudy]:
    data, study = recorded(recorder, seconds, abnormal=True, seed=seed)
    row = _score(data)
    assert row["status"] == "scored", row
    assert 0 <= row["score"] <= 1 and row["sr_uri"] and row["heatmap_uri"]
    where = json.loads(row["location"])
    assert where["type"] == "segments"
    # The SR carries the same segments, in seconds from the recording's start.
    report = pydicom.dcmread(io.BytesIO(dicom_store.get(row["sr_uri"])))
    (finding,) = sr.read_findings(report)
    assert [list(s) for s in finding["segments_s"]] == where["seconds"]
    # The procedure reported names the recording: a 12-lead ECG, or another ECG recording.
    (reported,) = hd.sr.utils.find_content_items(
        report, name=Code("121058", "DCM", "Procedure reported"), recursive=True
    )
    twelve = recorder is RESTING
    assert reported.ConceptCodeSequence[0].CodeValue == ("268400002" if twelve else "29303009")
    return row, where, study


def _truth_seconds(study: RenderedStudy) -> list[tuple[float, float]]:
    assert study.waveform is not None
    rate = study.waveform.sampling_hz
    return [(a / rate, b / rate) for a, b in study.ecg_segments]


def test_a_12_lead_ecg_is_scored() -> None:
    row, where, _ = _scored(RESTING)
    assert where["leads"] == ["I", "II", "III", "aVR", "aVL", "aVF"] + [
        f"V{k}" for k in range(1, 7)
    ]
    assert where["windows_scored"] == 1 and where["duration_s"] == 10.0
    assert row["positive"]


@pytest.mark.slow
def test_a_2_lead_holter_at_360_hz_for_30_minutes_is_scored_with_its_worst_segments() -> None:
    row, where, study = _scored(HOLTER, seconds=1800)
    assert where["leads"] == ["II", "V5"] and where["duration_s"] == 1800.0
    assert where["windows_scored"] == 180
    windows = where["windows"]
    assert 1 <= len(windows) <= scoring.WORST
    scores = [w["score"] for w in windows]
    assert scores == sorted(scores, reverse=True) and scores[0] == row["score"]
    for w in windows:
        assert 0 <= w["start"] < w["end"] <= 1800 and w["end"] - w["start"] == 10
    # Every segment lies inside a located window; the worst window's come first.
    for start, end in where["seconds"]:
        assert any(w["start"] <= start < end <= w["end"] for w in windows)
    assert windows[0]["start"] <= where["seconds"][0][0] < windows[0]["end"]
    # The worst window shows the drawn finding (atrial fibrillation from 836 s to the end).
    assert study.finding_code == "atrial_fibrillation"
    truth = _truth_seconds(study)
    assert any(a < windows[0]["end"] and windows[0]["start"] < b for a, b in truth)
    assert row["positive"]


def test_a_single_lead_patch_at_250_hz_is_scored() -> None:
    row, where, study = _scored(PATCH)
    assert where["leads"] == ["II"] and where["windows_scored"] == 12
    truth = _truth_seconds(study)
    worst = where["windows"][0]
    assert any(a < worst["end"] and worst["start"] < b for a, b in truth)
    assert row["positive"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (respiration_only, "none coded as an ECG lead"),
        (flat, "all flat"),
    ],
    ids=["non-rhythm channel only", "flat line"],
)
def test_a_recording_with_no_rhythm_lead_fails_with_its_reason(
    change: Callable[[pydicom.Dataset], None], reason: str
) -> None:
    data, _ = recorded(PATCH, seconds=30, change=change)
    row = _score(data)
    assert row["status"] == "failed" and row["reason"] == scoring.UNSUPPORTED
    assert "no usable ECG lead" in row["message"] and reason in row["message"]
    assert row["location"] is None and row["sr_uri"] is None and row["score"] is None


def test_a_long_recordings_windows_reach_the_model_a_run_at_a_time() -> None:
    """The model sees at most ``RUN_ROWS`` windows per run (a day's Holter is never 1 GB of
    input at once), and the scores are those of all the windows run together."""
    import numpy as np

    from models.runtime.waveform import waveform_windows

    service = registry()["ecg"]
    assert service.config.waveform is not None
    data, _ = recorded(HOLTER, seconds=60 * 60)  # 360 windows: two runs
    windows = waveform_windows(pydicom.dcmread(io.BytesIO(data)), service.config.waveform)
    sizes: list[int] = []

    class Counted(scoring.Model):
        def run(self, batch: Any, sex: Any) -> dict[str, Any]:
            sizes.append(len(batch))
            return super().run(batch, sex)

    model = Counted(service)
    job = scoring.Job({"study_instance_uid": "2.25.1", "patient_sex": "M"}, [{}])
    prepared = scoring.Prepared(job, arrays=[windows], owners=[0] * len(windows))
    (outputs,) = scoring.infer(model, [prepared])
    assert sizes == [scoring.RUN_ROWS, len(windows) - scoring.RUN_ROWS]
    score = service.config.outputs.get("score", "score")
    whole = scoring.Model(service).run(windows.x, np.zeros((len(windows), 1), np.float32))
    np.testing.assert_allclose(outputs[score], whole[score], rtol=1e-5, atol=1e-6)
