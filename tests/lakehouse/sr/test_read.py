"""Reports written to bytes and read back, with pydicom, with highdicom and with ``read_findings``,
for every kind of finding.
"""

from __future__ import annotations

import io
from datetime import date

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.coding import Code

from lakehouse.sr import codes, read_findings
from tests.lakehouse.sr.cases import (
    ALGORITHM,
    SERIES_UID,
    SOP_UID,
    all_groups,
    assert_evidence,
    assert_same_patient_and_study,
    dicom_file,
    ecg_sources,
    expected_fields,
    make_finding,
    measurement_report,
    report_bytes,
    synthetic_study,
    texts_under,
)


def _assert_algorithm_everywhere(report: hd.sr.MeasurementReport, count: int) -> None:
    groups = all_groups(report)
    assert len(groups) == count
    for group in groups:
        assert texts_under(group[0], codes.ALGORITHM_NAME) == [ALGORITHM.name]
        assert texts_under(group[0], codes.ALGORITHM_VERSION) == [ALGORITHM.version]
    (device,) = report.get_observer_contexts(observer_type=codes.DEVICE)
    attributes = device.observer_identifying_attributes
    assert isinstance(attributes, hd.sr.DeviceObserverIdentifyingAttributes)
    assert attributes.uid == ALGORITHM.device_uid
    assert attributes.name == ALGORITHM.name
    assert attributes.model_name == f"{ALGORITHM.name} {ALGORITHM.version}"


def test_a_chest_radiograph_report_round_trips_with_its_box() -> None:
    (source,), truth = synthetic_study("CXR_PA", "M", date(1961, 4, 12))
    assert source.Modality == "DX" and str(source.PatientName) == "남궁^민수"
    (location,) = truth["locations"]
    box = tuple(float(v) + 0.3 for v in location["box"])  # sub-pixel, as the heatmap gives
    finding = make_finding(source, box=box, finding_code=truth["finding_code"])
    data = report_bytes([source], [finding])

    ds = pydicom.dcmread(io.BytesIO(data))
    assert read_findings(ds) == [expected_fields(finding)]
    assert ds.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert (ds.Modality, ds.SeriesInstanceUID, ds.SOPInstanceUID) == ("SR", SERIES_UID, SOP_UID)
    assert (ds.SeriesNumber, ds.InstanceNumber) == (9001, 1)
    assert (ds.ContentDate, ds.ContentTime[:6]) == ("20240603", "101530")
    assert ds.Manufacturer == codes.MANUFACTURER
    assert "not for clinical use" in ds.SeriesDescription
    assert (ds.CompletionFlag, ds.VerificationFlag) == ("COMPLETE", "UNVERIFIED")
    assert_same_patient_and_study(ds, source)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "남궁^민수"
    assert "남궁^민수".encode() in data  # UTF-8 on disk, not replaced
    assert_evidence(data, [source])

    report = measurement_report(data)
    (group,) = report.get_planar_roi_measurement_groups(
        tracking_uid=finding.tracking_uid,
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        referenced_sop_instance_uid=str(source.SOPInstanceUID),
    )
    roi = group.roi
    assert isinstance(roi, hd.sr.ImageRegion)
    points = roi.value
    assert points.shape == (5, 2) and (points[0] == points[-1]).all()  # a closed rectangle
    (probability,) = group.get_measurements(name=codes.PROBABILITY)
    assert (probability.value, probability.unit.value) == (finding.score, "1")
    (threshold,) = group.get_measurements(name=codes.THRESHOLD)
    assert (threshold.value, threshold.unit.value) == (0.5, "1")
    (flag,) = group.get_qualitative_evaluations(name=finding.concept)
    assert flag.value == codes.PRESENT
    assert group.finding_type == finding.concept
    _assert_algorithm_everywhere(report, 1)

    statements = texts_under(report[0], codes.COMMENT)
    assert statements == [codes.DISCLAIMER_EN, codes.DISCLAIMER_KO]
    assert codes.DISCLAIMER_KO.encode() in data


def test_a_four_view_mammogram_carries_one_group_per_finding() -> None:
    views, truth = synthetic_study("MAMMO_SCREEN", "F", date(1972, 9, 30))
    assert len(views) == 4 and {v.Modality for v in views} == {"MG"}
    by_uid = {str(v.SOPInstanceUID): v for v in views}
    located = [loc["sop_instance_uid"] for loc in truth["locations"]]
    assert len(located) == 2 and set(located) <= set(by_uid)
    findings = [
        make_finding(
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
        make_finding(
            clear,
            3,
            finding_code="calcification",
            finding_meaning="Suspected calcification",
            score=0.03,
            threshold=0.42,
            positive=False,
        )
    )
    data = report_bytes(list(views), findings)

    assert read_findings(pydicom.dcmread(io.BytesIO(data))) == [
        expected_fields(f) for f in findings
    ]
    assert_evidence(data, views)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert_same_patient_and_study(ds, views[0])

    report = measurement_report(data)
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
    assert flag.value == codes.ABSENT
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
    source = dicom_file(name)
    finding = make_finding(source, box=box)
    data = report_bytes([source], [finding])
    ds = pydicom.dcmread(io.BytesIO(data))
    assert read_findings(ds) == [expected_fields(finding)]
    assert_same_patient_and_study(ds, source)
    assert_evidence(data, [source])
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    group = all_groups(measurement_report(data))[0]
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
    (source,), truth = synthetic_study(exam, sex, born)
    assert truth["value"] is not None  # the synthetic city's rendered value
    value = float(truth["value"])
    finding = make_finding(
        source,
        finding_code=code,
        finding_meaning=code.replace("_", " ").capitalize(),
        tracking_id=f"{exam}:{code}:1",
        score=None,
        threshold=threshold,
        value=value,
        unit=unit,
    )
    data = report_bytes([source], [finding])
    assert read_findings(pydicom.dcmread(io.BytesIO(data))) == [expected_fields(finding)]

    (group,) = measurement_report(data).get_image_measurement_groups()
    assert group.get_measurements(name=codes.PROBABILITY) == []
    (measured,) = group.get_measurements(name=finding.concept)
    assert (measured.value, measured.unit.value, measured.unit.scheme_designator) == (
        value,
        ucum,
        "UCUM",
    )
    (limit,) = group.get_measurements(name=codes.THRESHOLD)
    assert (limit.value, limit.unit.value) == (threshold, ucum)


@pytest.mark.parametrize("index", [0, 1], ids=["pydicom_ecg", "synthetic_ecg"])
def test_an_ecg_finding_references_the_waveform_and_its_segments(index: int) -> None:
    source, segments = ecg_sources()[index]
    assert source.Modality == "ECG"
    assert source.SOPClassUID == pydicom.uid.TwelveLeadECGWaveformStorage
    assert segments
    finding = make_finding(
        source,
        finding_code="premature_ventricular_contractions",  # longer than 16: a Long Code Value
        finding_meaning="Premature ventricular contractions",
        tracking_id="ecg:pvc:1",
        score=0.77,
        segments_s=segments,
    )
    data = report_bytes([source], [finding])
    ds = pydicom.dcmread(io.BytesIO(data))
    assert read_findings(ds) == [expected_fields(finding)]
    assert_same_patient_and_study(ds, source)
    assert_evidence(data, [source])

    report = measurement_report(data)
    assert report.get_planar_roi_measurement_groups() == []
    (group,) = report.get_image_measurement_groups()
    assert group.source_images == []  # a waveform is not an image
    (reference,) = hd.sr.utils.find_content_items(
        group[0], name=codes.SOURCE, value_type=hd.sr.ValueTypeValues.COMPOSITE
    )
    assert reference.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    starts = group.get_measurements(name=codes.SEGMENT_START)
    ends = group.get_measurements(name=codes.SEGMENT_END)
    assert [(s.value, e.value) for s, e in zip(starts, ends, strict=True)] == list(segments)
    assert {m.unit.value for m in [*starts, *ends]} == {"s"}
    procedures = hd.sr.utils.find_content_items(
        report[0], name=Code("121058", "DCM", "Procedure reported")
    )
    assert [p.value for p in procedures] == [codes.ECG_PROCEDURE]


def test_read_findings_refuses_what_is_not_a_comprehensive_3d_sr() -> None:
    with pytest.raises(ValueError, match="not a Comprehensive 3D SR"):
        read_findings(dicom_file("CT_small.dcm"))
