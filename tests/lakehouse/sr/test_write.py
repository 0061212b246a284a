"""The document against highdicom's own construction (``oracle``): element by element, in memory
and as written, for every kind of finding; and the file ``report_file`` encodes directly against
the file pydicom's writer makes of the same document, byte for byte.
"""

from __future__ import annotations

import io
from collections import Counter
from copy import deepcopy
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pydicom
import pytest
from pydicom.valuerep import DT

from lakehouse.sr import SrFinding, codes, finding_report, read_findings, report_file
from tests.lakehouse.sr.cases import (
    ALGORITHM,
    SERIES_UID,
    SOP_UID,
    WHEN,
    dicom_file,
    differences,
    ecg_sources,
    expected_fields,
    make_finding,
    synthetic_study,
)
from tests.lakehouse.sr.oracle import oracle_report
from tests.multiframe import brain_ct, enhanced_ct, header, multiframe_sc

# What legitimately differs: pydicom, not highdicom, writes the file (implementation UID and
# name, hence the group length), and the last contributing equipment is the platform, where
# highdicom names itself with the time it ran.
FILE_META_DIFFERENCES = frozenset(
    {"FileMetaInformationGroupLength", "ImplementationClassUID", "ImplementationVersionName"}
)


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
    created it, and the file ``report_file`` encodes is the file pydicom writes of it (the
    element layout, lengths, padding and number formats are pydicom's); returns ours as read
    back."""
    args = (list(sources), findings, ALGORITHM, SERIES_UID, SOP_UID, 9001, 1, when)
    ours, theirs = finding_report(*args), oracle_report(*args)
    written, files = [], []
    for document in (ours, theirs):
        buffer = io.BytesIO()
        document.save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
        written.append(pydicom.dcmread(io.BytesIO(buffer.getvalue())))
    assert report_file(*args) == files[0]
    for pair in ((ours, theirs), tuple(written)):
        (mine, (platform,)), (other, (library,)) = (_without_platform(ds) for ds in pair)
        assert differences(mine, other) == []
        assert differences(mine.file_meta, other.file_meta) == []
        assert (platform.Manufacturer, platform.ManufacturerModelName) == (
            codes.PLATFORM_MANUFACTURER,
            codes.PLATFORM,
        )
        assert str(platform.ContributionDateTime) == str(DT(when))  # the report's time
        assert library.ManufacturerModelName == "highdicom"
        assert platform.PurposeOfReferenceCodeSequence[0].CodeValue == "109102"  # processing
        assert (
            differences(
                platform.PurposeOfReferenceCodeSequence[0],
                library.PurposeOfReferenceCodeSequence[0],
            )
            == []
        )
    assert written[0].file_meta.ImplementationClassUID == pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    length = "FileMetaInformationGroupLength"
    assert ours.file_meta[length].value == written[0].file_meta[length].value  # as highdicom's
    assert read_findings(ours) == read_findings(theirs) == read_findings(written[0])
    assert read_findings(written[0]) == [expected_fields(f) for f in findings]
    return written[0]


def test_a_box_on_a_chest_radiograph_is_written_as_highdicom_builds_it() -> None:
    (source,), truth = synthetic_study("CXR_PA", "M", date(1961, 4, 12))
    (location,) = truth["locations"]
    box = tuple(float(v) + 0.3 for v in location["box"])
    ds = _assert_as_highdicom_builds_it([source], [make_finding(source, box=box)])
    (acquisition, _) = ds.ContributingEquipmentSequence  # the radiograph's, then ours
    assert acquisition.Manufacturer == source.Manufacturer
    measurements = ds.ContentSequence[7]  # after the language, the observer and the procedure
    assert measurements.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurements"
    (group,) = measurements.ContentSequence
    assert group.ContentTemplateSequence[0].TemplateIdentifier == "1410"
    assert ds.PatientAge == source.PatientAge  # the Patient Study module, copied as highdicom does


@pytest.mark.parametrize("name", ["MR_small.dcm", "CT_small.dcm"])
def test_a_whole_image_finding_is_written_as_highdicom_builds_it(name: str) -> None:
    source = dicom_file(name)
    _assert_as_highdicom_builds_it([source], [make_finding(source, positive=False, score=0.125)])


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
    (source,), truth = synthetic_study(exam, sex, born)
    finding = make_finding(
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
    source, segments = ecg_sources()[index]
    finding = make_finding(
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
    ct = dicom_file("CT_small.dcm")
    findings = [
        make_finding(ct, 1, box=(10.5, 12.3, 40.0, 50.75)),
        make_finding(ct, 2, finding_code="emphysema", finding_meaning="Emphysema", score=0.25),
    ]
    _assert_as_highdicom_builds_it([ct], findings)


def test_a_two_series_study_is_written_as_highdicom_builds_it() -> None:
    instances, _ = synthetic_study("BRAIN_DWI", "F", date(1950, 2, 2))
    per_series = Counter(str(i.SeriesInstanceUID) for i in instances)
    assert len(instances) > 12 and len(per_series) == 2
    findings = [
        make_finding(
            instances[-1],
            1,
            finding_code="infarct",
            finding_meaning="Infarct",
            box=(4.0, 5.0, 30.5, 31.5),
        ),
        make_finding(
            instances[0], 2, finding_code="bleed", finding_meaning="Haemorrhage", score=0.01
        ),
    ]
    ds = _assert_as_highdicom_builds_it(instances, findings)
    (study,) = ds.CurrentRequestedProcedureEvidenceSequence
    evidence = {
        s.SeriesInstanceUID: len(s.ReferencedSOPSequence) for s in study.ReferencedSeriesSequence
    }
    assert evidence == per_series


@pytest.mark.parametrize(
    ("sop_class_uid", "image", "patient_study"),
    [
        (pydicom.uid.SecondaryCaptureImageStorage, True, True),
        (pydicom.uid.EncapsulatedPDFStorage, False, True),
        (pydicom.uid.ProcedureLogStorage, False, False),  # its IOD has no Patient Study module
        (pydicom.uid.HangingProtocolStorage, False, False),  # nor any Patient or Study module
    ],
    ids=["secondary_capture", "pdf", "procedure_log", "hanging_protocol"],
)
def test_the_header_follows_the_sources_iod_as_highdicom_builds_it(
    sop_class_uid: str, image: bool, patient_study: bool
) -> None:
    """What the header copies from the first source (its IOD's Patient and Study modules, the
    acquisition equipment of an image) depends on its SOP class, which the writer asks
    highdicom's public API about: SOP classes of every kind give highdicom's document."""
    source = deepcopy(dicom_file("CT_small.dcm"))
    source.SOPClassUID = sop_class_uid
    if not image:  # a document, referenced as COMPOSITE
        del source.Rows, source.Columns
    ds = _assert_as_highdicom_builds_it([source], [make_finding(source)])
    assert len(ds.ContributingEquipmentSequence) == (2 if image else 1)
    assert "PatientAge" in source
    assert ("PatientAge" in ds) == patient_study


def test_an_aware_time_is_written_with_its_utc_offset() -> None:
    ct = dicom_file("CT_small.dcm")
    kst = WHEN.replace(tzinfo=timezone(timedelta(hours=9)))
    report = finding_report([ct], [make_finding(ct)], ALGORITHM, SERIES_UID, SOP_UID, when=kst)
    assert (str(report.ContentDate), str(report.ContentTime)[:6]) == ("20240603", "101530")
    assert report.TimezoneOffsetFromUTC == "+0900"
    naive = finding_report([ct], [make_finding(ct)], ALGORITHM, SERIES_UID, SOP_UID, when=WHEN)
    assert "TimezoneOffsetFromUTC" not in naive


@pytest.mark.parametrize("kind", ["secondary_capture", "enhanced_ct"])
def test_findings_on_frames_of_a_multiframe_image_are_written_as_highdicom_builds_it(
    kind: str,
) -> None:
    """A box on frame k (TID 1410) and a whole-frame finding (TID 1501): each source image
    reference names its frame (Referenced Frame Number), as highdicom's ``SourceImageForRegion``
    and ``SourceImageForMeasurementGroup`` write it, and the frames read back."""
    ct = brain_ct()
    frames, box = ct.on_frame(6)
    study = str(frames[0].StudyInstanceUID)
    source = header(
        multiframe_sc(frames, study, "2.25.81", "2.25.82")
        if kind == "secondary_capture"
        else enhanced_ct(ct.slices)
    )
    findings = [
        make_finding(source, 1, box=box, frame_number=6),
        make_finding(
            source, 2, finding_code="bleed", finding_meaning="Haemorrhage", frame_number=2
        ),
    ]
    ds = _assert_as_highdicom_builds_it([source], findings)
    region_group, whole_group = ds.ContentSequence[7].ContentSequence
    (region,) = [i for i in region_group.ContentSequence if i.ValueType == "SCOORD"]
    (image,) = region.ContentSequence
    assert image.ReferencedSOPSequence[0].ReferencedFrameNumber == 6
    (whole,) = [i for i in whole_group.ContentSequence if i.ValueType == "IMAGE"]
    assert whole.ReferencedSOPSequence[0].ReferencedFrameNumber == 2
    assert [f["frame_number"] for f in read_findings(ds)] == [6, 2]


def test_a_single_frame_source_is_referenced_without_a_frame() -> None:
    (source,), truth = synthetic_study("CXR_PA", "M", date(1961, 4, 12))
    (location,) = truth["locations"]
    box = tuple(float(v) for v in location["box"])
    ds = _assert_as_highdicom_builds_it([source], [make_finding(source, box=box)])
    (group,) = ds.ContentSequence[7].ContentSequence
    (region,) = [i for i in group.ContentSequence if i.ValueType == "SCOORD"]
    assert "ReferencedFrameNumber" not in region.ContentSequence[0].ReferencedSOPSequence[0]
    assert read_findings(ds)[0]["frame_number"] is None
