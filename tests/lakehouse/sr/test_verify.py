"""The AI's report re-issued with a clinician's verdicts: read by highdicom with its verifier,
the AI's content kept element by element, and what a verification refuses.
"""

from __future__ import annotations

import io
from copy import deepcopy
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.coding import Code
from pydicom.valuerep import DT

from lakehouse.sr import (
    SrFinding,
    Verdict,
    Verifier,
    codes,
    finding_report,
    read_findings,
    read_verdicts,
    verified_report,
)
from tests.lakehouse.sr.cases import (
    ALGORITHM,
    SERIES_UID,
    SOP_UID,
    WHEN,
    assert_evidence,
    assert_same_patient_and_study,
    dicom_file,
    differences,
    ecg_sources,
    expected_fields,
    make_finding,
    measurement_report,
    nth_uid,
    report_bytes,
    synthetic_study,
)
from tests.multiframe import brain_ct, header, multiframe_sc

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
    return pydicom.dcmread(io.BytesIO(report_bytes(list(sources), findings)))


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
        make_finding(ct, 1, box=(10.5, 12.3, 40.0, 50.75)),
        make_finding(ct, 2, finding_code="emphysema", finding_meaning="Emphysema", score=0.25),
        make_finding(
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
    (source,), truth = synthetic_study("CXR_PA", "M", date(1961, 4, 12))
    (location,) = truth["locations"]
    finding = make_finding(source, box=tuple(float(v) + 0.3 for v in location["box"]))
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
    assert schemes == [codes.SCHEME, codes.ACCOUNT_SCHEME]

    # A new instance of a new series, in the same study of the same patient.
    assert (document.SeriesInstanceUID, document.SOPInstanceUID) == (
        VERIFIED_SERIES_UID,
        VERIFIED_SOP_UID,
    )
    assert document.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert_same_patient_and_study(document, source)
    assert (document.SeriesNumber, document.InstanceNumber) == (9001, 1)
    assert document.SeriesDescription == "Verified AI chest (reference model, not for clinical use)"
    for moment in ("Content", "InstanceCreation", "Series"):  # the verification's time
        day, clock = document[f"{moment}Date"].value, document[f"{moment}Time"].value
        assert (str(day), str(clock)) == ("20240604", "140509")
    assert "TimezoneOffsetFromUTC" not in document  # a naive time, as the original's
    assert document.ObservationDateTime == "20240603101530"  # the AI's items keep their time
    assert document.ContributingEquipmentSequence[-1].ContributionDescription == codes.REISSUED

    # The assessment is the clinician's: its own person observer context, as highdicom reads it.
    (group,) = document.content.get_planar_roi_measurement_groups(tracking_uid=finding.tracking_uid)
    (assessment,) = hd.sr.utils.find_content_items(group[0], name=codes.ASSESSMENT)
    assert assessment.value == codes.DECISIONS["accepted"]
    assert assessment.ObservationDateTime == "20240604140509"
    person = hd.sr.PersonObserverIdentifyingAttributes.from_sequence(assessment.ContentSequence)
    assert (person.name, person.login_name, person.organization_name) == (
        VERIFIER.name,
        VERIFIER.account,
        VERIFIER.organization,
    )
    assert person.role_in_procedure == codes.VERIFYING
    (device,) = document.content.get_observer_contexts()  # the document's observer: the device
    assert device.observer_type == codes.DEVICE


def _without_verification(ds: pydicom.Dataset, assessed: set[str]) -> pydicom.Dataset:
    """A report without what a verification changes in the header and adds to the groups."""
    copy = deepcopy(ds)
    for keyword in VERIFIED_HEADER:
        if keyword in copy:
            del copy[keyword]
    for group in _measurement_groups(copy):
        if _tracking(group) in assessed:
            *kept, last = group.ContentSequence
            assert last.ConceptNameCodeSequence[0].CodeValue == codes.ASSESSMENT.value
            group.ContentSequence = kept
    return copy


def _verification_cases() -> list[tuple[str, Any]]:
    def chest() -> tuple[list[pydicom.Dataset], list[SrFinding]]:
        (source,), truth = synthetic_study("CXR_PA", "M", date(1961, 4, 12))
        (location,) = truth["locations"]
        return [source], [make_finding(source, box=tuple(float(v) for v in location["box"]))]

    def ct() -> tuple[list[pydicom.Dataset], list[SrFinding]]:
        source = dicom_file("CT_small.dcm")
        return [source], _ct_findings(source)

    def ecg() -> tuple[list[pydicom.Dataset], list[SrFinding]]:
        source, segments = ecg_sources()[1]
        return [source], [make_finding(source, score=0.77, segments_s=segments)]

    def brain() -> tuple[list[pydicom.Dataset], list[SrFinding]]:
        instances, _ = synthetic_study("BRAIN_DWI", "F", date(1950, 2, 2))
        findings = [
            make_finding(instances[-1], 1, finding_code="infarct", box=(4.0, 5.0, 30.5, 31.5)),
            make_finding(instances[0], 2, finding_code="bleed", score=0.01, positive=False),
        ]
        return list(instances), findings

    def multiframe() -> tuple[list[pydicom.Dataset], list[SrFinding]]:
        frames, box = brain_ct().on_frame(4)
        study = str(frames[0].StudyInstanceUID)
        source = header(multiframe_sc(frames, study, "2.25.91", "2.25.92"))
        findings = [
            make_finding(source, 1, finding_code="infarct", box=box, frame_number=4),
            make_finding(source, 2, finding_code="bleed", score=0.01, frame_number=7),
        ]
        return [source], findings

    return [("chest", chest), ("ct", ct), ("ecg", ecg), ("brain", brain), ("frames", multiframe)]


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

    assert (
        read_findings(verified) == read_findings(original) == [expected_fields(f) for f in findings]
    )
    assert len(_measurement_groups(verified)) == len(findings)
    mine, theirs = _without_verification(verified, {first}), _without_verification(original, set())
    assert differences(mine, theirs) == []  # header, evidence and content tree, but the above
    # The header's sequences only grow: the original's items first, as they were.
    for keyword in ("CodingSchemeIdentificationSequence", "ContributingEquipmentSequence"):
        *kept, _ = verified[keyword].value
        assert len(kept) == len(original[keyword].value)
        for a, b in zip(kept, original[keyword].value, strict=True):
            assert differences(a, b) == []
    # In the assessed group, the AI's items are the original's, the assessment last.
    for group, before in zip(
        _measurement_groups(verified), _measurement_groups(original), strict=True
    ):
        added = len(group.ContentSequence) - len(before.ContentSequence)
        assert added == (1 if _tracking(group) == first else 0)
    assert read_verdicts(verified) == [verdict]
    assert read_verdicts(original) == []


def test_verdicts_read_back_as_given_notes_exactly() -> None:
    ct = dicom_file("CT_small.dcm")
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

    report = measurement_report(data)
    (group,) = report.get_image_measurement_groups(tracking_uid=measured.tracking_uid)
    (assessment,) = hd.sr.utils.find_content_items(group[0], name=codes.ASSESSMENT)
    (amended,) = hd.sr.utils.find_content_items(assessment, value_type=hd.sr.ValueTypeValues.NUM)
    assert amended.name == measured.concept  # the finding's quantity, in its unit
    assert (amended.value, amended.unit.value) == (31.25, "mm")
    (reason,) = hd.sr.utils.find_content_items(assessment, name=codes.ASSESSMENT_REASON)
    assert reason.value == Code("measurement", codes.SCHEME, "Measurement")
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
    (source,), truth = synthetic_study(exam, sex, born)
    finding = make_finding(
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
    assert read_findings(verified) == [expected_fields(finding)]  # the AI's value stays
    (group,) = measurement_report(_written(verified)).get_image_measurement_groups()
    (assessment,) = hd.sr.utils.find_content_items(group[0], name=codes.ASSESSMENT)
    (number,) = hd.sr.utils.find_content_items(assessment, value_type=hd.sr.ValueTypeValues.NUM)
    assert (number.value, number.unit.value) == (amended, ucum)


def test_the_predecessor_is_the_original() -> None:
    ct = dicom_file("CT_small.dcm")
    original = _original([ct], [make_finding(ct)])
    verified = _reread(_verify(original, [Verdict(nth_uid(1), "accepted", "confirmed_by_prior")]))
    (study,) = verified.PredecessorDocumentsSequence
    assert study.StudyInstanceUID == original.StudyInstanceUID == ct.StudyInstanceUID
    (series,) = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == original.SeriesInstanceUID == SERIES_UID
    (instance,) = series.ReferencedSOPSequence
    assert instance.ReferencedSOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert instance.ReferencedSOPInstanceUID == original.SOPInstanceUID == SOP_UID
    # The evidence stays the study's own instances, not the predecessor.
    assert_evidence(_written(verified), [ct])


def test_the_verification_time_is_in_the_originals_time_zone() -> None:
    ct = dicom_file("CT_small.dcm")
    kst = timezone(timedelta(hours=9))
    report = finding_report(
        [ct], [make_finding(ct)], ALGORITHM, SERIES_UID, SOP_UID, when=WHEN.replace(tzinfo=kst)
    )
    original = pydicom.dcmread(io.BytesIO(_written(report)))
    utc = datetime(2024, 6, 4, 5, 5, 9, tzinfo=UTC)  # 14:05:09 in Seoul
    verified = _reread(
        _verify(original, [Verdict(nth_uid(1), "accepted", "confirmed_on_reading")], when=utc)
    )
    assert verified.TimezoneOffsetFromUTC == "+0900"
    assert (verified.ContentDate, verified.ContentTime) == ("20240604", "140509")
    assert verified.VerifyingObserverSequence[0].VerificationDateTime == "20240604140509+0900"
    assert verified.ObservationDateTime == "20240603101530"  # the AI's, in the same zone


def test_a_verified_report_saves_as_a_file_and_reads_back(tmp_path: Any) -> None:
    ct = dicom_file("CT_small.dcm")
    original = _original([ct], _ct_findings(ct))
    verdicts = [Verdict(nth_uid(2), "rejected", "not_relevant", NOTE)]
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
    accept = Verdict(nth_uid(1), "accepted", "confirmed_on_reading")
    return [
        (
            "unknown tracking UID",
            {"verdicts": [replace(accept, tracking_uid=nth_uid(99))]},
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
            {"verdicts": [Verdict(nth_uid(1), "amended", "severity", None, 3.0)]},
            "no measured value",
        ),
        (
            "amended value not finite",
            {"verdicts": [Verdict(nth_uid(3), "amended", "measurement", None, float("nan"))]},
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
    ct = dicom_file("CT_small.dcm")
    original = _original([ct], _ct_findings(ct))
    args: dict[str, Any] = {
        "original": original,
        "verdicts": [Verdict(nth_uid(1), "accepted", "confirmed_on_reading")],
        "verifier": VERIFIER,
        "series_instance_uid": VERIFIED_SERIES_UID,
        "sop_instance_uid": VERIFIED_SOP_UID,
        "instance_number": 1,
        "when": VERIFIED_WHEN,
    } | changes
    with pytest.raises(ValueError, match=message):
        verified_report(**args)


def test_only_the_ais_own_report_is_verified() -> None:
    ct = dicom_file("CT_small.dcm")
    original = _original([ct], [make_finding(ct)])
    verdict = Verdict(nth_uid(1), "accepted", "confirmed_on_reading")
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
    ct = dicom_file("CT_small.dcm")
    original = _original([ct], [make_finding(ct)])
    verifier = Verifier("김의사", "  광주 의원  ", "clinician.account.0001")
    verified = _reread(
        _verify(original, [Verdict(nth_uid(1), "accepted", "confirmed_on_reading")], verifier)
    )
    (observer,) = verified.VerifyingObserverSequence
    assert (str(observer.VerifyingObserverName), observer.VerifyingOrganization) == (
        "김의사",
        "광주 의원",
    )
    (identifier,) = observer.VerifyingObserverIdentificationCodeSequence
    assert identifier.LongCodeValue == "clinician.account.0001" and "CodeValue" not in identifier
