"""The AI findings SR (TID 1500 in a Comprehensive 3D SR) on real DICOM sources.

Sources are pydicom's CT, MR and 12-lead ECG test files and studies the synthetic city renders
(a chest radiograph, a four-view mammogram, a bone-age hand, a leg-length radiograph, an ECG,
a two-series brain MR). Every report is written to bytes, read back with pydicom and with
highdicom, and compared; and the document itself is compared, element by element, with the one
highdicom's own constructors build from the same inputs (``sr_oracle``).
"""

from __future__ import annotations

import io
from collections import Counter
from copy import deepcopy
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.multival import MultiValue
from pydicom.sr.coding import Code
from pydicom.valuerep import DT

from lakehouse import sr
from lakehouse.sr import (
    Algorithm,
    SrFinding,
    Verdict,
    Verifier,
    finding_report,
    read_findings,
    read_verdicts,
    verified_report,
)
from synth.imaging.assemble import assemble
from synth.imaging.orders import ImagingOrder
from tests.pipelines.sr_oracle import oracle_report

SEED = 20240601
WHEN = datetime(2024, 6, 3, 10, 15, 30)
ALGORITHM = Algorithm("GJH reference chest", "1.0.0", "2.25.31415926535897932384626", "chest")
SERIES_UID = "2.25.1000000000000000000001"
SOP_UID = "2.25.1000000000000000000002"


def _file(name: str) -> pydicom.Dataset:
    path = get_testdata_file(name)
    assert path is not None, name
    return pydicom.dcmread(path, stop_before_pixels=True)


@cache
def _synthetic(exam: str, sex: str, born: date) -> tuple[tuple[pydicom.Dataset, ...], Any]:
    """A study of the synthetic city: its instances' headers and its ground truth."""
    order = ImagingOrder(
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
    study, _ = assemble(order, SEED)
    headers = tuple(
        pydicom.dcmread(io.BytesIO(o.data), stop_before_pixels=True) for o in study.objects
    )
    return headers, study.truth


def _uid(n: int) -> str:
    return f"2.25.{7000000000000000000000 + n}"


def _finding(source: pydicom.Dataset, n: int = 1, **changes: Any) -> SrFinding:
    base = SrFinding(
        finding_code="lung_nodule",
        finding_meaning="Suspected lung nodule",
        sop_instance_uid=str(source.SOPInstanceUID),
        tracking_id=f"chest:lung_nodule:{n}",
        tracking_uid=_uid(n),
        score=0.8123456478118896,  # a float32 score, as the ONNX model returns it
        threshold=0.5,
        positive=True,
    )
    return replace(base, **changes)


def _write(sources: Any, findings: list[SrFinding], algorithm: Algorithm = ALGORITHM) -> bytes:
    report = finding_report(sources, findings, algorithm, SERIES_UID, SOP_UID, when=WHEN)
    buffer = io.BytesIO()
    report.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _expected(finding: SrFinding, algorithm: Algorithm = ALGORITHM) -> dict[str, Any]:
    return asdict(finding) | {
        "algorithm_name": algorithm.name,
        "algorithm_version": algorithm.version,
        "device_uid": algorithm.device_uid,
    }


def _report(data: bytes) -> hd.sr.MeasurementReport:
    document = hd.sr.srread(io.BytesIO(data))
    assert isinstance(document, hd.sr.Comprehensive3DSR)
    assert isinstance(document.content, hd.sr.MeasurementReport)
    return document.content


def _groups(report: hd.sr.MeasurementReport) -> list[Any]:
    return [*report.get_planar_roi_measurement_groups(), *report.get_image_measurement_groups()]


def _texts(item: Any, code: Code) -> list[str]:
    found = hd.sr.utils.find_content_items(
        item, name=code, value_type=hd.sr.ValueTypeValues.TEXT, recursive=True
    )
    return [str(i.TextValue) for i in found]


def _assert_same_patient_and_study(ds: pydicom.Dataset, source: pydicom.Dataset) -> None:
    for keyword in ("PatientID", "PatientName", "PatientSex", "StudyInstanceUID", "StudyDate"):
        assert str(ds.get(keyword)) == str(source.get(keyword)), keyword
    assert ds.AccessionNumber == source.AccessionNumber


def _assert_evidence(data: bytes, sources: Any) -> None:
    document = hd.sr.srread(io.BytesIO(data))
    current = document.get_evidence(current_procedure_only=True)
    assert {e[2] for e in current} == {str(s.SOPInstanceUID) for s in sources}
    assert {e[0] for e in current} == {str(s.StudyInstanceUID) for s in sources}
    assert "PertinentOtherEvidenceSequence" not in document


def _assert_algorithm_everywhere(report: hd.sr.MeasurementReport, count: int) -> None:
    groups = _groups(report)
    assert len(groups) == count
    for group in groups:
        assert _texts(group[0], sr.ALGORITHM_NAME) == [ALGORITHM.name]
        assert _texts(group[0], sr.ALGORITHM_VERSION) == [ALGORITHM.version]
    (device,) = report.get_observer_contexts(observer_type=sr.DEVICE)
    attributes = device.observer_identifying_attributes
    assert isinstance(attributes, hd.sr.DeviceObserverIdentifyingAttributes)
    assert attributes.uid == ALGORITHM.device_uid
    assert attributes.name == ALGORITHM.name
    assert attributes.model_name == f"{ALGORITHM.name} {ALGORITHM.version}"


def test_a_chest_radiograph_report_round_trips_with_its_box() -> None:
    (source,), truth = _synthetic("CXR_PA", "M", date(1961, 4, 12))
    assert source.Modality == "DX" and str(source.PatientName) == "남궁^민수"
    (location,) = truth["locations"]
    box = tuple(float(v) + 0.3 for v in location["box"])  # sub-pixel, as the heatmap gives
    finding = _finding(source, box=box, finding_code=truth["finding_code"])
    data = _write([source], [finding])

    ds = pydicom.dcmread(io.BytesIO(data))
    assert read_findings(ds) == [_expected(finding)]
    assert ds.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert (ds.Modality, ds.SeriesInstanceUID, ds.SOPInstanceUID) == ("SR", SERIES_UID, SOP_UID)
    assert (ds.SeriesNumber, ds.InstanceNumber) == (9001, 1)
    assert (ds.ContentDate, ds.ContentTime[:6]) == ("20240603", "101530")
    assert ds.Manufacturer == sr.MANUFACTURER
    assert "not for clinical use" in ds.SeriesDescription
    assert (ds.CompletionFlag, ds.VerificationFlag) == ("COMPLETE", "UNVERIFIED")
    _assert_same_patient_and_study(ds, source)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "남궁^민수"
    assert "남궁^민수".encode() in data  # UTF-8 on disk, not replaced
    _assert_evidence(data, [source])

    report = _report(data)
    (group,) = report.get_planar_roi_measurement_groups(
        tracking_uid=finding.tracking_uid,
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        referenced_sop_instance_uid=str(source.SOPInstanceUID),
    )
    roi = group.roi
    assert isinstance(roi, hd.sr.ImageRegion)
    points = roi.value
    assert points.shape == (5, 2) and (points[0] == points[-1]).all()  # a closed rectangle
    (probability,) = group.get_measurements(name=sr.PROBABILITY)
    assert (probability.value, probability.unit.value) == (finding.score, "1")
    (threshold,) = group.get_measurements(name=sr.THRESHOLD)
    assert (threshold.value, threshold.unit.value) == (0.5, "1")
    (flag,) = group.get_qualitative_evaluations(name=finding.concept)
    assert flag.value == sr.PRESENT
    assert group.finding_type == finding.concept
    _assert_algorithm_everywhere(report, 1)

    statements = _texts(report[0], sr.COMMENT)
    assert statements == [sr.DISCLAIMER_EN, sr.DISCLAIMER_KO]
    assert sr.DISCLAIMER_KO.encode() in data


def test_a_four_view_mammogram_carries_one_group_per_finding() -> None:
    views, truth = _synthetic("MAMMO_SCREEN", "F", date(1972, 9, 30))
    assert len(views) == 4 and {v.Modality for v in views} == {"MG"}
    by_uid = {str(v.SOPInstanceUID): v for v in views}
    located = [loc["sop_instance_uid"] for loc in truth["locations"]]
    assert len(located) == 2 and set(located) <= set(by_uid)
    findings = [
        _finding(
            by_uid[loc["sop_instance_uid"]],
            n,
            finding_code="mass",
            finding_meaning="Suspected mass",
            tracking_id=f"mammography:mass:{n}",
            score=0.9 - n / 10,
            threshold=0.42,
            box=tuple(float(v) for v in loc["box"]),
        )
        for n, loc in enumerate(truth["locations"], start=1)
    ]
    clear = next(v for uid, v in by_uid.items() if uid not in located)
    findings.append(
        _finding(
            clear,
            3,
            finding_code="calcification",
            finding_meaning="Suspected calcification",
            score=0.03,
            threshold=0.42,
            positive=False,
        )
    )
    data = _write(list(views), findings)

    assert read_findings(pydicom.dcmread(io.BytesIO(data))) == [_expected(f) for f in findings]
    _assert_evidence(data, views)
    ds = pydicom.dcmread(io.BytesIO(data))
    _assert_same_patient_and_study(ds, views[0])

    report = _report(data)
    _assert_algorithm_everywhere(report, 3)
    assert len(report.get_planar_roi_measurement_groups()) == 2
    for finding in findings[:2]:
        (group,) = report.get_planar_roi_measurement_groups(
            referenced_sop_instance_uid=finding.sop_instance_uid
        )
        assert group.tracking_identifier == finding.tracking_id
    (whole,) = report.get_image_measurement_groups(
        referenced_sop_instance_uid=str(clear.SOPInstanceUID)
    )
    (flag,) = whole.get_qualitative_evaluations(name=findings[2].concept)
    assert flag.value == sr.ABSENT
    assert [s.referenced_sop_instance_uid for s in whole.source_images] == [clear.SOPInstanceUID]


@pytest.mark.parametrize(
    ("name", "box"),
    [("CT_small.dcm", (10.5, 12.3, 40.0, 50.75)), ("MR_small.dcm", None)],
)
def test_pydicom_ct_and_mr_sources(
    name: str, box: tuple[float, float, float, float] | None
) -> None:
    """Latin-1 sources (or none declared) give a UTF-8 SR; the box's float32 coordinates read
    back as the decimals written."""
    source = _file(name)
    finding = _finding(source, box=box)
    data = _write([source], [finding])
    ds = pydicom.dcmread(io.BytesIO(data))
    assert read_findings(ds) == [_expected(finding)]
    _assert_same_patient_and_study(ds, source)
    _assert_evidence(data, [source])
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    group = _groups(_report(data))[0]
    if box is None:
        assert isinstance(group, hd.sr.MeasurementsAndQualitativeEvaluations)
        assert [s.referenced_sop_instance_uid for s in group.source_images] == [
            source.SOPInstanceUID
        ]
    else:
        assert isinstance(group, hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations)


@pytest.mark.parametrize(
    ("exam", "sex", "born", "code", "unit", "ucum", "threshold"),
    [
        ("HAND_BONEAGE", "F", date(2014, 3, 1), "bone_age", "month", "mo", 12.0),
        ("LEG_LENGTH", "M", date(2012, 8, 20), "leg_length_discrepancy", "mm", "mm", 20.0),
    ],
)
def test_a_regression_value_is_a_measurement_in_ucum_units(
    exam: str, sex: str, born: date, code: str, unit: str, ucum: str, threshold: float
) -> None:
    (source,), truth = _synthetic(exam, sex, born)
    assert truth["value"] is not None  # the synthetic city's rendered value
    value = float(truth["value"])
    finding = _finding(
        source,
        finding_code=code,
        finding_meaning=code.replace("_", " ").capitalize(),
        tracking_id=f"{exam}:{code}:1",
        score=None,
        threshold=threshold,
        value=value,
        unit=unit,
    )
    data = _write([source], [finding])
    assert read_findings(pydicom.dcmread(io.BytesIO(data))) == [_expected(finding)]

    (group,) = _report(data).get_image_measurement_groups()
    assert group.get_measurements(name=sr.PROBABILITY) == []
    (measured,) = group.get_measurements(name=finding.concept)
    assert (measured.value, measured.unit.value, measured.unit.scheme_designator) == (
        value,
        ucum,
        "UCUM",
    )
    (limit,) = group.get_measurements(name=sr.THRESHOLD)
    assert (limit.value, limit.unit.value) == (threshold, ucum)


def _ecg_sources() -> list[tuple[pydicom.Dataset, tuple[tuple[float, float], ...]]]:
    (synthetic,), truth = _synthetic("ECG_12LEAD", "M", date(1958, 1, 5))
    rate = float(synthetic.WaveformSequence[0].SamplingFrequency)
    truth_segments = tuple((a / rate, b / rate) for a, b in truth["ecg_segments"])
    return [(_file("waveform_ecg.dcm"), ((1.6, 2.4), (7.2, 8.0))), (synthetic, truth_segments)]


@pytest.mark.parametrize("index", [0, 1], ids=["pydicom_ecg", "synthetic_ecg"])
def test_an_ecg_finding_references_the_waveform_and_its_segments(index: int) -> None:
    source, segments = _ecg_sources()[index]
    assert source.Modality == "ECG"
    assert source.SOPClassUID == pydicom.uid.TwelveLeadECGWaveformStorage
    assert segments
    finding = _finding(
        source,
        finding_code="premature_ventricular_contractions",  # longer than 16: a Long Code Value
        finding_meaning="Premature ventricular contractions",
        tracking_id="ecg:pvc:1",
        score=0.77,
        segments_s=segments,
    )
    data = _write([source], [finding])
    ds = pydicom.dcmread(io.BytesIO(data))
    assert read_findings(ds) == [_expected(finding)]
    _assert_same_patient_and_study(ds, source)
    _assert_evidence(data, [source])

    report = _report(data)
    assert report.get_planar_roi_measurement_groups() == []
    (group,) = report.get_image_measurement_groups()
    assert group.source_images == []  # a waveform is not an image
    (reference,) = hd.sr.utils.find_content_items(
        group[0], name=sr.SOURCE, value_type=hd.sr.ValueTypeValues.COMPOSITE
    )
    assert reference.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    starts = group.get_measurements(name=sr.SEGMENT_START)
    ends = group.get_measurements(name=sr.SEGMENT_END)
    assert [(s.value, e.value) for s, e in zip(starts, ends, strict=True)] == list(segments)
    assert {m.unit.value for m in [*starts, *ends]} == {"s"}
    procedures = hd.sr.utils.find_content_items(
        report[0], name=Code("121058", "DCM", "Procedure reported")
    )
    assert [p.value for p in procedures] == [sr.ECG_PROCEDURE]


def test_an_aware_time_is_written_with_its_utc_offset() -> None:
    ct = _file("CT_small.dcm")
    kst = WHEN.replace(tzinfo=timezone(timedelta(hours=9)))
    report = finding_report([ct], [_finding(ct)], ALGORITHM, SERIES_UID, SOP_UID, when=kst)
    assert (str(report.ContentDate), str(report.ContentTime)[:6]) == ("20240603", "101530")
    assert report.TimezoneOffsetFromUTC == "+0900"
    naive = finding_report([ct], [_finding(ct)], ALGORITHM, SERIES_UID, SOP_UID, when=WHEN)
    assert "TimezoneOffsetFromUTC" not in naive


def test_a_finding_on_an_instance_outside_the_sources_is_refused() -> None:
    ct, mr = _file("CT_small.dcm"), _file("MR_small.dcm")
    with pytest.raises(ValueError, match="not among the sources"):
        finding_report([ct], [_finding(mr)], ALGORITHM, SERIES_UID, SOP_UID)


def test_a_report_without_findings_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one finding"):
        finding_report([_file("CT_small.dcm")], [], ALGORITHM, SERIES_UID, SOP_UID)


def test_sources_from_two_studies_are_refused() -> None:
    ct, mr = _file("CT_small.dcm"), _file("MR_small.dcm")
    with pytest.raises(ValueError, match="2 studies"):
        finding_report([ct, mr], [_finding(ct)], ALGORITHM, SERIES_UID, SOP_UID)


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
    ct = _file("CT_small.dcm")
    with pytest.raises(ValueError, match=message):
        finding_report([ct], [_finding(ct, **changes)], ALGORITHM, SERIES_UID, SOP_UID)


def test_a_box_on_a_waveform_and_shared_tracking_uids_are_refused() -> None:
    ecg, ct = _file("waveform_ecg.dcm"), _file("CT_small.dcm")
    with pytest.raises(ValueError, match="not an image"):
        finding_report(
            [ecg], [_finding(ecg, box=(0.0, 0.0, 1.0, 1.0))], ALGORITHM, SERIES_UID, SOP_UID
        )
    twice = [_finding(ct, 1), _finding(ct, 1, finding_code="other")]
    with pytest.raises(ValueError, match="share a tracking UID"):
        finding_report([ct], twice, ALGORITHM, SERIES_UID, SOP_UID)


def test_read_findings_refuses_what_is_not_a_comprehensive_3d_sr() -> None:
    with pytest.raises(ValueError, match="not a Comprehensive 3D SR"):
        read_findings(_file("CT_small.dcm"))


# -- The document against highdicom's own construction ---------------------------------------

# What legitimately differs: pydicom, not highdicom, writes the file (implementation UID and
# name, hence the group length), and the last contributing equipment is the platform, where
# highdicom names itself with the time it ran.
FILE_META_DIFFERENCES = frozenset(
    {"FileMetaInformationGroupLength", "ImplementationClassUID", "ImplementationVersionName"}
)


def _comparable(value: Any, vr: str) -> Any:
    """A value as written: pydicom's value types (DA, TM, PersonName, UID, DSfloat) by their
    text, numbers as numbers (FL ones as 32-bit floats), multiple values as lists."""
    if isinstance(value, list | MultiValue):
        return [_comparable(v, vr) for v in value]
    if vr == "FL":
        return np.float32(value)
    if isinstance(value, bool | int | float | bytes) and not hasattr(value, "original_string"):
        return value
    return None if value is None else str(value)


def _differences(ours: pydicom.Dataset, theirs: pydicom.Dataset, path: str = "") -> list[str]:
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
                out.extend(_differences(a, b, f"{where}[{n}]."))
    return out


def _without_platform(ds: pydicom.Dataset) -> tuple[pydicom.Dataset, list[pydicom.Dataset]]:
    """The document with its last contributing equipment (ours or highdicom's) taken out."""
    copy = deepcopy(ds)
    *kept, last = copy.ContributingEquipmentSequence
    copy.ContributingEquipmentSequence = kept
    meta = copy.file_meta
    for keyword in FILE_META_DIFFERENCES:
        if keyword in meta:
            del meta[keyword]
    return copy, [last]


def _assert_as_highdicom_builds_it(
    sources: Any, findings: list[SrFinding], when: datetime = WHEN
) -> pydicom.Dataset:
    """Our document equals highdicom's, in memory and as written, but for the equipment that
    created it; returns ours as read back."""
    args = (list(sources), findings, ALGORITHM, SERIES_UID, SOP_UID, 9001, 1, when)
    ours, theirs = finding_report(*args), oracle_report(*args)
    written = []
    for document in (ours, theirs):
        buffer = io.BytesIO()
        document.save_as(buffer, enforce_file_format=True)
        written.append(pydicom.dcmread(io.BytesIO(buffer.getvalue())))
    for pair in ((ours, theirs), tuple(written)):
        (mine, (platform,)), (other, (library,)) = (_without_platform(ds) for ds in pair)
        assert _differences(mine, other) == []
        assert _differences(mine.file_meta, other.file_meta) == []
        assert (platform.Manufacturer, platform.ManufacturerModelName) == (
            sr.PLATFORM_MANUFACTURER,
            sr.PLATFORM,
        )
        assert str(platform.ContributionDateTime) == str(DT(when))  # the report's time
        assert library.ManufacturerModelName == "highdicom"
        assert platform.PurposeOfReferenceCodeSequence[0].CodeValue == "109102"  # processing
        assert (
            _differences(
                platform.PurposeOfReferenceCodeSequence[0],
                library.PurposeOfReferenceCodeSequence[0],
            )
            == []
        )
    assert written[0].file_meta.ImplementationClassUID == pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    length = "FileMetaInformationGroupLength"
    assert ours.file_meta[length].value == written[0].file_meta[length].value  # as highdicom's
    assert read_findings(ours) == read_findings(theirs) == read_findings(written[0])
    assert read_findings(written[0]) == [_expected(f) for f in findings]
    return written[0]


def test_a_box_on_a_chest_radiograph_is_written_as_highdicom_builds_it() -> None:
    (source,), truth = _synthetic("CXR_PA", "M", date(1961, 4, 12))
    (location,) = truth["locations"]
    box = tuple(float(v) + 0.3 for v in location["box"])
    ds = _assert_as_highdicom_builds_it([source], [_finding(source, box=box)])
    (acquisition, _) = ds.ContributingEquipmentSequence  # the radiograph's, then ours
    assert acquisition.Manufacturer == source.Manufacturer
    measurements = ds.ContentSequence[7]  # after the language, the observer and the procedure
    assert measurements.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurements"
    (group,) = measurements.ContentSequence
    assert group.ContentTemplateSequence[0].TemplateIdentifier == "1410"
    assert ds.PatientAge == source.PatientAge  # the Patient Study module, copied as highdicom does


@pytest.mark.parametrize("name", ["MR_small.dcm", "CT_small.dcm"])
def test_a_whole_image_finding_is_written_as_highdicom_builds_it(name: str) -> None:
    source = _file(name)
    _assert_as_highdicom_builds_it([source], [_finding(source, positive=False, score=0.125)])


@pytest.mark.parametrize(
    ("exam", "sex", "born", "code", "unit", "threshold"),
    [
        ("HAND_BONEAGE", "F", date(2014, 3, 1), "bone_age", "month", 12.0),
        ("LEG_LENGTH", "M", date(2012, 8, 20), "leg_length_discrepancy", "mm", 20.0),
    ],
)
def test_a_regression_is_written_as_highdicom_builds_it(
    exam: str, sex: str, born: date, code: str, unit: str, threshold: float
) -> None:
    (source,), truth = _synthetic(exam, sex, born)
    finding = _finding(
        source,
        finding_code=code,
        finding_meaning=code.replace("_", " ").capitalize(),
        score=None,
        threshold=threshold,
        value=float(truth["value"]),
        unit=unit,
    )
    _assert_as_highdicom_builds_it([source], [finding])


# pydicom's ECG names its patient "Anonymous"; highdicom (the oracle) warns that a PN has one
# component.
@pytest.mark.filterwarnings('ignore:The string "Anonymous":UserWarning')
@pytest.mark.parametrize("index", [0, 1], ids=["pydicom_ecg", "synthetic_ecg"])
def test_an_ecg_with_segments_is_written_as_highdicom_builds_it(index: int) -> None:
    source, segments = _ecg_sources()[index]
    finding = _finding(
        source,
        finding_code="premature_ventricular_contractions",  # a Long Code Value
        finding_meaning="Premature ventricular contractions",
        segments_s=segments,
    )
    kst = WHEN.replace(tzinfo=timezone(timedelta(hours=9)))
    ds = _assert_as_highdicom_builds_it([source], [finding], when=kst)
    assert ds.TimezoneOffsetFromUTC == "+0900"
    assert len(ds.ContributingEquipmentSequence) == 1  # a waveform has no acquisition entry


def test_two_findings_in_one_report_are_written_as_highdicom_builds_it() -> None:
    ct = _file("CT_small.dcm")
    findings = [
        _finding(ct, 1, box=(10.5, 12.3, 40.0, 50.75)),
        _finding(ct, 2, finding_code="emphysema", finding_meaning="Emphysema", score=0.25),
    ]
    _assert_as_highdicom_builds_it([ct], findings)


def test_a_two_series_study_is_written_as_highdicom_builds_it() -> None:
    instances, _ = _synthetic("BRAIN_DWI", "F", date(1950, 2, 2))
    per_series = Counter(str(i.SeriesInstanceUID) for i in instances)
    assert len(instances) > 12 and len(per_series) == 2
    findings = [
        _finding(
            instances[-1],
            1,
            finding_code="infarct",
            finding_meaning="Infarct",
            box=(4.0, 5.0, 30.5, 31.5),
        ),
        _finding(instances[0], 2, finding_code="bleed", finding_meaning="Haemorrhage", score=0.01),
    ]
    ds = _assert_as_highdicom_builds_it(instances, findings)
    (study,) = ds.CurrentRequestedProcedureEvidenceSequence
    evidence = {
        s.SeriesInstanceUID: len(s.ReferencedSOPSequence) for s in study.ReferencedSeriesSequence
    }
    assert evidence == per_series


def test_codes_encoded_once_are_told_apart_by_their_meaning() -> None:
    """The writer encodes each code once per process; ``Code`` equality ignores the meaning,
    so a cache keyed by it would give the second report the first one's meaning."""
    ct = _file("CT_small.dcm")
    for meaning in ("Suspected lung nodule", "Lung nodule, suspected"):
        finding = _finding(ct, finding_meaning=meaning)
        data = _write([ct], [finding])
        assert read_findings(pydicom.dcmread(io.BytesIO(data))) == [_expected(finding)]


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
    ct = deepcopy(_file("CT_small.dcm"))
    change(ct)
    finding = _finding(ct, box=(1.0, 1.0, 2.0, 2.0))
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
    ct = _file("CT_small.dcm")
    args = ([ct], [_finding(ct)], algorithm, SERIES_UID, SOP_UID, series_number, 1, WHEN)
    with pytest.raises(ValueError, match=message):
        finding_report(*args)
    with pytest.raises(ValueError):
        oracle_report(*args)


# -- The report re-issued with a clinician's verification ------------------------------------

VERIFIER = Verifier("김^의사", "상무중앙영상의학과의원", "dr.kim")
VERIFIED_WHEN = datetime(2024, 6, 4, 14, 5, 9)
VERIFIED_SERIES_UID = "2.25.1000000000000000000003"
VERIFIED_SOP_UID = "2.25.1000000000000000000004"
# A clinician's note may hold anything: markup, quotes, a backslash, Korean, line breaks.
NOTE = '<script>alert("x")</script> \\ 판독 소견: 늑골 골절 의심, "재촬영" 권고\r\n& 끝'
# What a verification changes in the header; every other element stays the original's.
VERIFIED_HEADER = frozenset(
    {
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SeriesDescription",
        "InstanceCreationDate",
        "InstanceCreationTime",
        "ContentDate",
        "ContentTime",
        "SeriesDate",
        "SeriesTime",
        "TimezoneOffsetFromUTC",
        "ObservationDateTime",
        "VerificationFlag",
        "PreliminaryFlag",
        "VerifyingObserverSequence",
        "PredecessorDocumentsSequence",
        "CodingSchemeIdentificationSequence",
        "ContributingEquipmentSequence",
    }
)


def _written(document: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    document.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _original(sources: Any, findings: list[SrFinding]) -> pydicom.Dataset:
    """The AI's report as the object store holds it: written, then read back."""
    return pydicom.dcmread(io.BytesIO(_write(list(sources), findings)))


def _verify(
    original: pydicom.Dataset,
    verdicts: list[Verdict],
    verifier: Verifier = VERIFIER,
    when: datetime = VERIFIED_WHEN,
) -> pydicom.Dataset:
    args = (VERIFIED_SERIES_UID, VERIFIED_SOP_UID, 1, when)
    return verified_report(original, verdicts, verifier, *args)


def _reread(document: pydicom.Dataset) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(_written(document)))


def _measurement_groups(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    (container,) = [
        item
        for item in ds.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurements"
    ]
    return list(container.ContentSequence)


def _tracking(group: pydicom.Dataset) -> str:
    (uid,) = [str(i.UID) for i in group.ContentSequence if i.ValueType == "UIDREF"]
    return uid


def _ct_findings(ct: pydicom.Dataset) -> list[SrFinding]:
    """A boxed and a whole-image classifier finding and a measured one (a regression) on CT."""
    return [
        _finding(ct, 1, box=(10.5, 12.3, 40.0, 50.75)),
        _finding(ct, 2, finding_code="emphysema", finding_meaning="Emphysema", score=0.25),
        _finding(
            ct,
            3,
            finding_code="leg_length_discrepancy",
            finding_meaning="Leg length discrepancy",
            score=None,
            threshold=20.0,
            value=23.5,
            unit="mm",
        ),
    ]


def test_a_verified_report_is_read_by_highdicom_with_its_verifier() -> None:
    (source,), truth = _synthetic("CXR_PA", "M", date(1961, 4, 12))
    (location,) = truth["locations"]
    finding = _finding(source, box=tuple(float(v) + 0.3 for v in location["box"]))
    original = _original([source], [finding])
    verdict = Verdict(finding.tracking_uid, "accepted", "confirmed_on_reading")
    data = _written(_verify(original, [verdict]))

    document = hd.sr.srread(io.BytesIO(data))
    assert isinstance(document, hd.sr.Comprehensive3DSR)
    assert isinstance(document.content, hd.sr.MeasurementReport)
    assert (document.VerificationFlag, document.CompletionFlag) == ("VERIFIED", "COMPLETE")
    assert document.PreliminaryFlag == "FINAL"
    (observer,) = document.VerifyingObserverSequence
    assert str(observer.VerifyingObserverName) == VERIFIER.name
    assert observer.VerifyingOrganization == VERIFIER.organization
    assert str(observer.VerificationDateTime) == str(DT(VERIFIED_WHEN)) == "20240604140509"
    (identifier,) = observer.VerifyingObserverIdentificationCodeSequence
    assert (identifier.CodeValue, identifier.CodingSchemeDesignator) == ("dr.kim", "99GJHACCT")
    schemes = [s.CodingSchemeDesignator for s in document.CodingSchemeIdentificationSequence]
    assert schemes == [sr.SCHEME, sr.ACCOUNT_SCHEME]

    # A new instance of a new series, in the same study of the same patient.
    assert (document.SeriesInstanceUID, document.SOPInstanceUID) == (
        VERIFIED_SERIES_UID,
        VERIFIED_SOP_UID,
    )
    assert document.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    _assert_same_patient_and_study(document, source)
    assert (document.SeriesNumber, document.InstanceNumber) == (9001, 1)
    assert document.SeriesDescription == "Verified AI chest (reference model, not for clinical use)"
    for moment in ("Content", "InstanceCreation", "Series"):  # the verification's time
        day, clock = document[f"{moment}Date"].value, document[f"{moment}Time"].value
        assert (str(day), str(clock)) == ("20240604", "140509")
    assert "TimezoneOffsetFromUTC" not in document  # a naive time, as the original's
    assert document.ObservationDateTime == "20240603101530"  # the AI's items keep their time
    assert document.ContributingEquipmentSequence[-1].ContributionDescription == sr.REISSUED

    # The assessment is the clinician's: its own person observer context, as highdicom reads it.
    (group,) = document.content.get_planar_roi_measurement_groups(tracking_uid=finding.tracking_uid)
    (assessment,) = hd.sr.utils.find_content_items(group[0], name=sr.ASSESSMENT)
    assert assessment.value == sr.DECISIONS["accepted"]
    assert assessment.ObservationDateTime == "20240604140509"
    person = hd.sr.PersonObserverIdentifyingAttributes.from_sequence(assessment.ContentSequence)
    assert (person.name, person.login_name, person.organization_name) == (
        VERIFIER.name,
        VERIFIER.account,
        VERIFIER.organization,
    )
    assert person.role_in_procedure == sr.VERIFYING
    (device,) = document.content.get_observer_contexts()  # the document's observer: the device
    assert device.observer_type == sr.DEVICE


def _without_verification(ds: pydicom.Dataset, assessed: set[str]) -> pydicom.Dataset:
    """A report without what a verification changes in the header and adds to the groups."""
    copy = deepcopy(ds)
    for keyword in VERIFIED_HEADER:
        if keyword in copy:
            del copy[keyword]
    for group in _measurement_groups(copy):
        if _tracking(group) in assessed:
            *kept, last = group.ContentSequence
            assert last.ConceptNameCodeSequence[0].CodeValue == sr.ASSESSMENT.value
            group.ContentSequence = kept
    return copy


def _verification_cases() -> list[tuple[str, Any]]:
    def chest() -> tuple[list[pydicom.Dataset], list[SrFinding]]:
        (source,), truth = _synthetic("CXR_PA", "M", date(1961, 4, 12))
        (location,) = truth["locations"]
        return [source], [_finding(source, box=tuple(float(v) for v in location["box"]))]

    def ct() -> tuple[list[pydicom.Dataset], list[SrFinding]]:
        source = _file("CT_small.dcm")
        return [source], _ct_findings(source)

    def ecg() -> tuple[list[pydicom.Dataset], list[SrFinding]]:
        source, segments = _ecg_sources()[1]
        return [source], [_finding(source, score=0.77, segments_s=segments)]

    def brain() -> tuple[list[pydicom.Dataset], list[SrFinding]]:
        instances, _ = _synthetic("BRAIN_DWI", "F", date(1950, 2, 2))
        findings = [
            _finding(instances[-1], 1, finding_code="infarct", box=(4.0, 5.0, 30.5, 31.5)),
            _finding(instances[0], 2, finding_code="bleed", score=0.01, positive=False),
        ]
        return list(instances), findings

    return [("chest", chest), ("ct", ct), ("ecg", ecg), ("brain", brain)]


@pytest.mark.parametrize(
    ("name", "case"), _verification_cases(), ids=[n for n, _ in _verification_cases()]
)
def test_a_verified_report_keeps_every_ai_group_element_by_element(name: str, case: Any) -> None:
    sources, findings = case()
    original = _original(sources, findings)
    # The first finding is assessed, the others (if any) are left as the AI wrote them.
    first = findings[0].tracking_uid
    verdict = Verdict(first, "rejected", "artefact", NOTE)
    verified = _reread(_verify(original, [verdict]))

    assert read_findings(verified) == read_findings(original) == [_expected(f) for f in findings]
    assert len(_measurement_groups(verified)) == len(findings)
    mine, theirs = _without_verification(verified, {first}), _without_verification(original, set())
    assert _differences(mine, theirs) == []  # header, evidence and content tree, but the above
    # The header's sequences only grow: the original's items first, as they were.
    for keyword in ("CodingSchemeIdentificationSequence", "ContributingEquipmentSequence"):
        *kept, _ = verified[keyword].value
        assert len(kept) == len(original[keyword].value)
        for a, b in zip(kept, original[keyword].value, strict=True):
            assert _differences(a, b) == []
    # In the assessed group, the AI's items are the original's, the assessment last.
    for group, before in zip(
        _measurement_groups(verified), _measurement_groups(original), strict=True
    ):
        added = len(group.ContentSequence) - len(before.ContentSequence)
        assert added == (1 if _tracking(group) == first else 0)
    assert read_verdicts(verified) == [verdict]
    assert read_verdicts(original) == []


def test_verdicts_read_back_as_given_notes_exactly() -> None:
    ct = _file("CT_small.dcm")
    boxed, whole, measured = _ct_findings(ct)
    original = _original([ct], [boxed, whole, measured])
    verdicts = [
        Verdict(measured.tracking_uid, "amended", "measurement", "재측정: 31 mm", 31.25),
        Verdict(boxed.tracking_uid, "rejected", "artefact", NOTE),
        Verdict(whole.tracking_uid, "accepted", "confirmed_on_reading"),  # no note
    ]
    document = _verify(original, verdicts)
    data = _written(document)
    expected = [verdicts[1], verdicts[2], verdicts[0]]  # in document order, as the findings
    assert read_verdicts(document) == expected  # in memory
    assert read_verdicts(pydicom.dcmread(io.BytesIO(data))) == expected  # as written
    assert NOTE.encode() in data  # stored as UTF-8 text as it is, nothing escaped or replaced

    report = _report(data)
    (group,) = report.get_image_measurement_groups(tracking_uid=measured.tracking_uid)
    (assessment,) = hd.sr.utils.find_content_items(group[0], name=sr.ASSESSMENT)
    (amended,) = hd.sr.utils.find_content_items(assessment, value_type=hd.sr.ValueTypeValues.NUM)
    assert amended.name == measured.concept  # the finding's quantity, in its unit
    assert (amended.value, amended.unit.value) == (31.25, "mm")
    (reason,) = hd.sr.utils.find_content_items(assessment, name=sr.ASSESSMENT_REASON)
    assert reason.value == Code("measurement", sr.SCHEME, "Measurement")
    (ai_value,) = group.get_measurements(name=measured.concept)  # the AI's, unchanged
    assert ai_value.value == 23.5


@pytest.mark.parametrize(
    ("exam", "sex", "born", "code", "unit", "ucum"),
    [
        ("HAND_BONEAGE", "F", date(2014, 3, 1), "bone_age", "month", "mo"),
        ("LEG_LENGTH", "M", date(2012, 8, 20), "leg_length_discrepancy", "mm", "mm"),
    ],
)
def test_an_amended_regression_is_in_the_findings_unit(
    exam: str, sex: str, born: date, code: str, unit: str, ucum: str
) -> None:
    (source,), truth = _synthetic(exam, sex, born)
    finding = _finding(
        source,
        finding_code=code,
        finding_meaning=code.replace("_", " ").capitalize(),
        score=None,
        threshold=12.0,
        value=float(truth["value"]),
        unit=unit,
    )
    amended = float(truth["value"]) + 7.5
    verdict = Verdict(finding.tracking_uid, "amended", "measurement", None, amended)
    verified = _reread(_verify(_original([source], [finding]), [verdict]))
    assert read_verdicts(verified) == [verdict]
    assert read_findings(verified) == [_expected(finding)]  # the AI's value stays
    (group,) = _report(_written(verified)).get_image_measurement_groups()
    (assessment,) = hd.sr.utils.find_content_items(group[0], name=sr.ASSESSMENT)
    (number,) = hd.sr.utils.find_content_items(assessment, value_type=hd.sr.ValueTypeValues.NUM)
    assert (number.value, number.unit.value) == (amended, ucum)


def test_the_predecessor_is_the_original() -> None:
    ct = _file("CT_small.dcm")
    original = _original([ct], [_finding(ct)])
    verified = _reread(_verify(original, [Verdict(_uid(1), "accepted", "confirmed_by_prior")]))
    (study,) = verified.PredecessorDocumentsSequence
    assert study.StudyInstanceUID == original.StudyInstanceUID == ct.StudyInstanceUID
    (series,) = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == original.SeriesInstanceUID == SERIES_UID
    (instance,) = series.ReferencedSOPSequence
    assert instance.ReferencedSOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert instance.ReferencedSOPInstanceUID == original.SOPInstanceUID == SOP_UID
    # The evidence stays the study's own instances, not the predecessor.
    _assert_evidence(_written(verified), [ct])


def test_the_verification_time_is_in_the_originals_time_zone() -> None:
    ct = _file("CT_small.dcm")
    kst = timezone(timedelta(hours=9))
    report = finding_report(
        [ct], [_finding(ct)], ALGORITHM, SERIES_UID, SOP_UID, when=WHEN.replace(tzinfo=kst)
    )
    original = pydicom.dcmread(io.BytesIO(_written(report)))
    utc = datetime(2024, 6, 4, 5, 5, 9, tzinfo=UTC)  # 14:05:09 in Seoul
    verified = _reread(
        _verify(original, [Verdict(_uid(1), "accepted", "confirmed_on_reading")], when=utc)
    )
    assert verified.TimezoneOffsetFromUTC == "+0900"
    assert (verified.ContentDate, verified.ContentTime) == ("20240604", "140509")
    assert verified.VerifyingObserverSequence[0].VerificationDateTime == "20240604140509+0900"
    assert verified.ObservationDateTime == "20240603101530"  # the AI's, in the same zone


def test_a_verified_report_saves_as_a_file_and_reads_back(tmp_path: Any) -> None:
    ct = _file("CT_small.dcm")
    original = _original([ct], _ct_findings(ct))
    verdicts = [Verdict(_uid(2), "rejected", "not_relevant", NOTE)]
    document = _verify(original, verdicts)
    path = tmp_path / "verified.dcm"
    document.save_as(path, enforce_file_format=True)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.MediaStorageSOPInstanceUID == VERIFIED_SOP_UID
    assert ds.file_meta.MediaStorageSOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert (
        ds.file_meta.FileMetaInformationGroupLength
        == pydicom.dcmread(io.BytesIO(_written(ds))).file_meta.FileMetaInformationGroupLength
    )
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert read_verdicts(ds) == verdicts
    assert read_findings(ds) == read_findings(original)
    # The original is left as it was: the same verification gives the same bytes again, and
    # so does the report as finding_report returns it, before it is stored.
    assert _written(_verify(original, verdicts)) == _written(document)
    in_memory = finding_report([ct], _ct_findings(ct), ALGORITHM, SERIES_UID, SOP_UID, when=WHEN)
    assert _written(_verify(in_memory, verdicts)) == _written(document)


def _verification_refusals() -> list[tuple[str, dict[str, Any], str]]:
    """(id, changes to the verification, message)."""
    accept = Verdict(_uid(1), "accepted", "confirmed_on_reading")
    return [
        (
            "unknown tracking UID",
            {"verdicts": [replace(accept, tracking_uid=_uid(99))]},
            "no finding",
        ),
        ("unknown decision", {"verdicts": [replace(accept, decision="maybe")]}, "decision 'maybe'"),
        (
            "organization too long",
            {"verifier": replace(VERIFIER, organization="가" * 65)},
            "longer than 64",
        ),
        ("no verdict", {"verdicts": []}, "at least one verdict"),
        ("two verdicts on one finding", {"verdicts": [accept, accept]}, "two verdicts"),
        (
            "reason code",
            {"verdicts": [replace(accept, reason_code="Bad code!")]},
            "not a platform code",
        ),
        ("note too long", {"verdicts": [replace(accept, note="가" * 1025)]}, "at most 1024"),
        ("note with NUL", {"verdicts": [replace(accept, note="a\x00b")]}, "control character"),
        (
            "amended value on an acceptance",
            {"verdicts": [replace(accept, amended_value=3.0)]},
            "only an amendment",
        ),
        (
            "amended value on a classifier",
            {"verdicts": [Verdict(_uid(1), "amended", "severity", None, 3.0)]},
            "no measured value",
        ),
        (
            "amended value not finite",
            {"verdicts": [Verdict(_uid(3), "amended", "measurement", None, float("nan"))]},
            "finite",
        ),
        ("name with four groups", {"verifier": replace(VERIFIER, name="a=b=c=d")}, "person name"),
        ("empty name", {"verifier": replace(VERIFIER, name=" ^ ")}, "person name"),
        ("account with a space", {"verifier": replace(VERIFIER, account="dr kim")}, "account"),
        ("the original's UID", {"sop_instance_uid": SOP_UID}, "new instance"),
        ("invalid series UID", {"series_instance_uid": "1.2.abc"}, "not a valid DICOM UID"),
        ("instance number", {"instance_number": 0}, "must be positive"),
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [(c, m) for _, c, m in _verification_refusals()],
    ids=[i for i, _, _ in _verification_refusals()],
)
def test_a_malformed_verification_is_refused(changes: dict[str, Any], message: str) -> None:
    ct = _file("CT_small.dcm")
    original = _original([ct], _ct_findings(ct))
    args: dict[str, Any] = {
        "original": original,
        "verdicts": [Verdict(_uid(1), "accepted", "confirmed_on_reading")],
        "verifier": VERIFIER,
        "series_instance_uid": VERIFIED_SERIES_UID,
        "sop_instance_uid": VERIFIED_SOP_UID,
        "instance_number": 1,
        "when": VERIFIED_WHEN,
    } | changes
    with pytest.raises(ValueError, match=message):
        verified_report(**args)


def test_only_the_ais_own_report_is_verified() -> None:
    ct = _file("CT_small.dcm")
    original = _original([ct], [_finding(ct)])
    verdict = Verdict(_uid(1), "accepted", "confirmed_on_reading")
    verified = _reread(_verify(original, [verdict]))
    with pytest.raises(ValueError, match="verified already"):
        verified_report(verified, [verdict], VERIFIER, "2.25.5", "2.25.6", 1, VERIFIED_WHEN)
    with pytest.raises(ValueError, match="not a Comprehensive 3D SR"):
        _verify(ct, [verdict])
    with pytest.raises(ValueError, match="not a Comprehensive 3D SR"):
        read_verdicts(ct)


def test_a_single_component_name_and_a_long_account_are_written() -> None:
    """A display name without a caret is a valid PN (family name only); an account over 16
    characters is a Long Code Value."""
    ct = _file("CT_small.dcm")
    original = _original([ct], [_finding(ct)])
    verifier = Verifier("김의사", "  광주 의원  ", "clinician.account.0001")
    verified = _reread(
        _verify(original, [Verdict(_uid(1), "accepted", "confirmed_on_reading")], verifier)
    )
    (observer,) = verified.VerifyingObserverSequence
    assert (str(observer.VerifyingObserverName), observer.VerifyingOrganization) == (
        "김의사",
        "광주 의원",
    )
    (identifier,) = observer.VerifyingObserverIdentificationCodeSequence
    assert identifier.LongCodeValue == "clinician.account.0001" and "CodeValue" not in identifier
