"""What ``finding_report`` refuses: malformed findings, and sources and headers highdicom's own
construction (the oracle) cannot take either.
"""

from __future__ import annotations

import ast
from copy import deepcopy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pydicom
import pytest

from lakehouse import sr
from lakehouse.sr import Algorithm, finding_report
from tests.lakehouse.sr.cases import ALGORITHM, SERIES_UID, SOP_UID, WHEN, dicom_file, make_finding
from tests.lakehouse.sr.oracle import oracle_report
from tests.multiframe import brain_ct, header, multiframe_sc


def test_a_finding_on_an_instance_outside_the_sources_is_refused() -> None:
    ct, mr = dicom_file("CT_small.dcm"), dicom_file("MR_small.dcm")
    with pytest.raises(ValueError, match="not among the sources"):
        finding_report([ct], [make_finding(mr)], ALGORITHM, SERIES_UID, SOP_UID)


def test_a_report_without_findings_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one finding"):
        finding_report([dicom_file("CT_small.dcm")], [], ALGORITHM, SERIES_UID, SOP_UID)


def test_sources_from_two_studies_are_refused() -> None:
    ct, mr = dicom_file("CT_small.dcm"), dicom_file("MR_small.dcm")
    with pytest.raises(ValueError, match="2 studies"):
        finding_report([ct, mr], [make_finding(ct)], ALGORITHM, SERIES_UID, SOP_UID)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"score": 1.5}, "not a probability"),
        ({"score": None}, "neither a score nor a value"),
        ({"score": None, "value": 120.0}, "unit None"),
        ({"score": None, "value": 120.0, "unit": "cm"}, "unit 'cm'"),
        ({"unit": "mm"}, "a unit but no value"),
        ({"box": (30.0, 10.0, 20.0, 40.0)}, "is not \\(x0, y0, x1, y1\\)"),
        ({"box": (0.0, 0.0, 10.0, 9999.0)}, "inside the"),
        ({"segments_s": ((1.0, 2.0),)}, "not a waveform"),
        ({"tracking_uid": "not-a-uid"}, "not a valid DICOM UID"),
        ({"finding_meaning": "x" * 65}, "exceeds 64"),
    ],
)
def test_malformed_findings_are_refused(changes: dict[str, Any], message: str) -> None:
    ct = dicom_file("CT_small.dcm")
    with pytest.raises(ValueError, match=message):
        finding_report([ct], [make_finding(ct, **changes)], ALGORITHM, SERIES_UID, SOP_UID)


def test_a_box_on_a_waveform_and_shared_tracking_uids_are_refused() -> None:
    ecg, ct = dicom_file("waveform_ecg.dcm"), dicom_file("CT_small.dcm")
    with pytest.raises(ValueError, match="not an image"):
        finding_report(
            [ecg], [make_finding(ecg, box=(0.0, 0.0, 1.0, 1.0))], ALGORITHM, SERIES_UID, SOP_UID
        )
    twice = [make_finding(ct, 1), make_finding(ct, 1, finding_code="other")]
    with pytest.raises(ValueError, match="share a tracking UID"):
        finding_report([ct], twice, ALGORITHM, SERIES_UID, SOP_UID)


def _refusals() -> list[tuple[str, Any]]:
    def without(keyword: str) -> Any:
        def change(ds: pydicom.Dataset) -> None:
            del ds[keyword]

        return change

    def setting(keyword: str, value: Any) -> Any:
        def change(ds: pydicom.Dataset) -> None:
            setattr(ds, keyword, value)

        return change

    return [
        ("lacks PatientID", without("PatientID")),
        ("lacks StudyID", without("StudyID")),
        ("is not M, F or O", setting("PatientSex", "U")),
        ("not a standard IOD", setting("SOPClassUID", "1.2.826.0.1.3680043.9.9999.1")),
        ("modality 'SEG' is no source", setting("Modality", "SEG")),
    ]


@pytest.mark.parametrize(("message", "change"), _refusals(), ids=[m for m, _ in _refusals()])
def test_sources_highdicom_cannot_take_are_refused(message: str, change: Any) -> None:
    ct = deepcopy(dicom_file("CT_small.dcm"))
    change(ct)
    finding = make_finding(ct, box=(1.0, 1.0, 2.0, 2.0))
    with pytest.raises(ValueError, match=message):
        finding_report([ct], [finding], ALGORITHM, SERIES_UID, SOP_UID, when=WHEN)
    with pytest.raises((AttributeError, KeyError, ValueError)):
        oracle_report([ct], [finding], ALGORITHM, SERIES_UID, SOP_UID, when=WHEN)


@pytest.mark.parametrize(
    ("algorithm", "series_number", "message"),
    [
        (replace(ALGORITHM, name="x" * 65), 9001, "algorithm name"),
        (replace(ALGORITHM, version="1\\2"), 9001, "algorithm version"),
        (ALGORITHM, 0, "must be positive"),
    ],
)
def test_a_header_highdicom_cannot_write_is_refused(
    algorithm: Algorithm, series_number: int, message: str
) -> None:
    ct = dicom_file("CT_small.dcm")
    args = ([ct], [make_finding(ct)], algorithm, SERIES_UID, SOP_UID, series_number, 1, WHEN)
    with pytest.raises(ValueError, match=message):
        finding_report(*args)
    with pytest.raises(ValueError):
        oracle_report(*args)


def test_the_codec_uses_no_private_module_of_highdicom_or_pydicom() -> None:
    """What the writer asks of the standard's tables (the Patient and Study modules of a SOP
    class's IOD, whether it is an image, whether it is known) goes through highdicom's public
    API: a private module may change in any release."""
    private = []
    for path in sorted(Path(sr.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            private += [
                f"{path.name}: {name}"
                for name in names
                if name.split(".")[0] in ("highdicom", "pydicom")
                and any(part.startswith("_") for part in name.split(".")[1:])
            ]
    assert private == []


@pytest.mark.parametrize(
    ("source", "frame", "message"),
    [
        ("single_frame", 1, "no multi-frame image"),  # a CT slice: its IOD has one frame
        ("waveform", 1, "no multi-frame image"),
        ("multi_frame", 0, "not a frame number in 1..10"),
        ("multi_frame", 11, "not a frame number in 1..10"),
    ],
)
def test_a_frame_the_source_does_not_have_is_refused(source: str, frame: int, message: str) -> None:
    """A finding names a frame only of a multi-frame image, and one of its frames, as DICOM's
    Referenced Frame Number allows and highdicom's construction checks."""
    frames, _ = brain_ct().on_frame(3)
    study = str(frames[0].StudyInstanceUID)
    if source == "multi_frame":
        image = header(multiframe_sc(frames, study, "2.25.71", "2.25.72"))
    else:
        image = dicom_file("CT_small.dcm" if source == "single_frame" else "waveform_ecg.dcm")
    box = (1.0, 1.0, 2.0, 2.0) if source != "waveform" else None
    finding = make_finding(image, box=box, frame_number=frame)
    with pytest.raises(ValueError, match=message):
        finding_report([image], [finding], ALGORITHM, SERIES_UID, SOP_UID, when=WHEN)
    if source != "waveform":  # highdicom refuses the reference too (for a frame of 0 as well)
        with pytest.raises((TypeError, ValueError)):
            oracle_report([image], [finding], ALGORITHM, SERIES_UID, SOP_UID, when=WHEN)
