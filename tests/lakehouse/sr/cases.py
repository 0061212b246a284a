"""The sources, findings and checks the SR tests share.

Sources are pydicom's CT, MR and 12-lead ECG test files and studies the synthetic city renders
(a chest radiograph, a four-view mammogram, a bone-age hand, a leg-length radiograph, an ECG,
a two-series brain MR).
"""

from __future__ import annotations

import io
from dataclasses import asdict, replace
from datetime import date, datetime
from functools import cache
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.multival import MultiValue
from pydicom.sr.coding import Code

from lakehouse.sr import Algorithm, SrFinding, finding_report
from synth.imaging.assemble import assemble
from synth.imaging.orders import ImagingOrder

SEED = 20240601
WHEN = datetime(2024, 6, 3, 10, 15, 30)
ALGORITHM = Algorithm("GJH reference chest", "1.0.0", "2.25.31415926535897932384626", "chest")
SERIES_UID = "2.25.1000000000000000000001"
SOP_UID = "2.25.1000000000000000000002"


def dicom_file(name: str) -> pydicom.Dataset:
    path = get_testdata_file(name)
    assert path is not None, name
    return pydicom.dcmread(path, stop_before_pixels=True)


def imaging_order(exam: str, sex: str, born: date) -> ImagingOrder:
    """An abnormal study's order for one patient of the synthetic city (this module's studies,
    and the multi-frame images of ``tests.multiframe``)."""
    return ImagingOrder(
        accession=f"SR{exam[:8]}",
        exam=exam,
        patient_id=f"{born:%y%m%d}-{2 if sex == 'F' else 1}234567",
        patient_name="남궁민수",
        sex=sex,
        birth_date=born,
        institution_code="36100066",
        institution_name="상무중앙영상의학과의원",
        study_datetime=datetime(2024, 6, 3, 9, 30),
        abnormal=True,
        visit_key="S000000777",
    )


@cache
def synthetic_study(exam: str, sex: str, born: date) -> tuple[tuple[pydicom.Dataset, ...], Any]:
    """A study of the synthetic city: its instances' headers and its ground truth."""
    study, _ = assemble(imaging_order(exam, sex, born), SEED)
    headers = tuple(
        pydicom.dcmread(io.BytesIO(o.data), stop_before_pixels=True) for o in study.objects
    )
    return headers, study.truth


def nth_uid(n: int) -> str:
    return f"2.25.{7000000000000000000000 + n}"


def make_finding(source: pydicom.Dataset, n: int = 1, **changes: Any) -> SrFinding:
    base = SrFinding(
        finding_code="lung_nodule",
        finding_meaning="Suspected lung nodule",
        sop_instance_uid=str(source.SOPInstanceUID),
        tracking_id=f"chest:lung_nodule:{n}",
        tracking_uid=nth_uid(n),
        score=0.8123456478118896,  # a float32 score, as the ONNX model returns it
        threshold=0.5,
        positive=True,
    )
    return replace(base, **changes)


def report_bytes(
    sources: Any, findings: list[SrFinding], algorithm: Algorithm = ALGORITHM
) -> bytes:
    report = finding_report(sources, findings, algorithm, SERIES_UID, SOP_UID, when=WHEN)
    buffer = io.BytesIO()
    report.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def expected_fields(finding: SrFinding, algorithm: Algorithm = ALGORITHM) -> dict[str, Any]:
    return asdict(finding) | {
        "algorithm_name": algorithm.name,
        "algorithm_version": algorithm.version,
        "device_uid": algorithm.device_uid,
    }


def measurement_report(data: bytes) -> hd.sr.MeasurementReport:
    document = hd.sr.srread(io.BytesIO(data))
    assert isinstance(document, hd.sr.Comprehensive3DSR)
    assert isinstance(document.content, hd.sr.MeasurementReport)
    return document.content


def all_groups(report: hd.sr.MeasurementReport) -> list[Any]:
    return [*report.get_planar_roi_measurement_groups(), *report.get_image_measurement_groups()]


def texts_under(item: Any, code: Code) -> list[str]:
    found = hd.sr.utils.find_content_items(
        item, name=code, value_type=hd.sr.ValueTypeValues.TEXT, recursive=True
    )
    return [str(i.TextValue) for i in found]


def assert_same_patient_and_study(ds: pydicom.Dataset, source: pydicom.Dataset) -> None:
    for keyword in ("PatientID", "PatientName", "PatientSex", "StudyInstanceUID", "StudyDate"):
        assert str(ds.get(keyword)) == str(source.get(keyword)), keyword
    assert ds.AccessionNumber == source.AccessionNumber


def assert_evidence(data: bytes, sources: Any) -> None:
    document = hd.sr.srread(io.BytesIO(data))
    current = document.get_evidence(current_procedure_only=True)
    assert {e[2] for e in current} == {str(s.SOPInstanceUID) for s in sources}
    assert {e[0] for e in current} == {str(s.StudyInstanceUID) for s in sources}
    assert "PertinentOtherEvidenceSequence" not in document


def ecg_sources() -> list[tuple[pydicom.Dataset, tuple[tuple[float, float], ...]]]:
    """pydicom's 12-lead ECG with two made-up segments, and the synthetic city's with its own."""
    (synthetic,), truth = synthetic_study("ECG_12LEAD", "M", date(1958, 1, 5))
    rate = float(synthetic.WaveformSequence[0].SamplingFrequency)
    truth_segments = tuple((a / rate, b / rate) for a, b in truth["ecg_segments"])
    return [(dicom_file("waveform_ecg.dcm"), ((1.6, 2.4), (7.2, 8.0))), (synthetic, truth_segments)]


def _comparable(value: Any, vr: str) -> Any:
    """A value as written: pydicom's value types (DA, TM, PersonName, UID, DSfloat) by their
    text, numbers as numbers (FL ones as 32-bit floats), multiple values as lists, None as the
    empty text it is written as (highdicom's dataset holds None where a document read back
    holds '')."""
    if isinstance(value, list | MultiValue):
        return [_comparable(v, vr) for v in value]
    if vr == "FL":
        return np.float32(value)
    if isinstance(value, bool | int | float | bytes) and not hasattr(value, "original_string"):
        return value
    return "" if value is None else str(value)


def differences(ours: pydicom.Dataset, theirs: pydicom.Dataset, path: str = "") -> list[str]:
    """Every difference of tag, VR, value or sequence length, recursively, by path."""
    out = [
        f"{path}{tag} only in {'ours' if tag in ours else 'highdicom'}"
        for tag in sorted(set(ours.keys()) ^ set(theirs.keys()))
    ]
    for tag in sorted(set(ours.keys()) & set(theirs.keys())):
        mine, other = ours[tag], theirs[tag]
        where = f"{path}{mine.keyword or tag}"
        if mine.VR != other.VR:
            out.append(f"{where}: VR {mine.VR} != {other.VR}")
        elif mine.VR != "SQ":
            if _comparable(mine.value, mine.VR) != _comparable(other.value, other.VR):
                out.append(f"{where}: {mine.value!r} != {other.value!r}")
        elif len(mine.value) != len(other.value):
            out.append(f"{where}: {len(mine.value)} != {len(other.value)} items")
        else:
            for n, (a, b) in enumerate(zip(mine.value, other.value, strict=True)):
                out.extend(differences(a, b, f"{where}[{n}]."))
    return out
