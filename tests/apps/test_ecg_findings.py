"""How the clinician reads an ECG finding of any lead set (issue 21): the recording's leads and
length, how many windows were scored, the worst windows with their scores, and times in a
Holter's hours rather than thousands of seconds."""

from __future__ import annotations

import polars as pl

from apps.clinician.viewer.findings import _where, clock

HOLTER = {
    "type": "segments",
    "seconds": [[4322.0, 4324.0], [4324.0, 4326.0], [730.0, 731.6]],
    "windows": [
        {"start": 4320.0, "end": 4330.0, "score": 0.91},
        {"start": 730.0, "end": 740.0, "score": 0.64},
    ],
    "windows_scored": 8640,
    "leads": ["II", "V5"],
    "duration_s": 86400.0,
}


def test_a_holters_finding_names_its_leads_length_and_worst_windows_in_clock_time() -> None:
    lines = _where(HOLTER, pl.DataFrame())
    assert lines[0] == "2개 구간: 12:10–12:12, 1:12:02–1:12:06"
    assert lines[1] == "유도 II, V5 · 기록 24:00:00 · 10초 구간 8,640개 판독"
    assert lines[2:] == [
        "가장 의심되는 구간: 1:12:00–1:12:10 (점수 91%)",
        "가장 의심되는 구간: 12:10–12:20 (점수 64%)",
    ]


def test_a_resting_ecg_keeps_its_seconds() -> None:
    lines = _where({"type": "segments", "seconds": [[1.25, 2.5]]}, pl.DataFrame())
    assert lines == ["1개 구간: 1.2초–2.5초"]
    assert clock(59.94) == "59.9초" and clock(60) == "1:00" and clock(3725) == "1:02:05"
