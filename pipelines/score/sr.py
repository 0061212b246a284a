"""The AI findings of one study as a DICOM Comprehensive 3D SR: a TID 1500 Measurement Report.

``finding_report`` writes, with highdicom, one measurement group per finding:

* a TID 1410 planar ROI group when the finding has a box on an image: the box is an
  ``ImageRegion``, a closed POLYLINE rectangle in the source image's pixels;
* otherwise a TID 1501 group (whole image, waveform, no location) whose source is the instance.

Every group carries the tracking identifier (id and UID), the finding as ``Finding`` (DCM 121071)
with the platform's code (coding scheme 99GJH, declared in the Coding Scheme Identification
Sequence), the algorithm (TID 4019: name, version, manufacturer) and these items:

======================  =========================================  ==========================
item                    concept name                               value / unit
======================  =========================================  ==========================
score (classifiers)     (122157, DCM, "Probability")               0..1, UCUM ``1``
regression value        the finding's own 99GJH code               UCUM ``mo`` or ``mm``
threshold               (122411, DCM, "Threshold Value")           the score's or value's unit
positive flag           the finding's 99GJH code                   SCT Present / Absent
ECG segments            99GJH ``segment_start`` / ``segment_end``  seconds, UCUM ``s``
======================  =========================================  ==========================

Units: highdicom takes any coded unit; ``1`` ("no units") is the UCUM unit DICOM lists for
ratios and probabilities in CID 7181, the context group highdicom documents for ``Measurement``
units, while the annotation ``{probability}`` is in no DICOM context group (to UCUM it means
``1`` anyway). Months are UCUM ``mo`` (CID 7456, units for age), millimetres ``mm``.

ECG: a waveform has no pixel space, so there is no image region. The right SR value types would
be a WAVEFORM reference and TCOORD segments selected from it, but highdicom 0.28.2 cannot read a
WAVEFORM content item back (``WaveformContentItem.from_dataset`` asserts value type IMAGE, so
``srread`` fails on the whole document), and a TCOORD needs a WAVEFORM or IMAGE to select from.
So the waveform instance is referenced as a COMPOSITE item "Source of Measurement" (DCM 121112)
in the group, and each contributing segment is a pair of TID 300 measurements in seconds from
the start of the recording (``segment_start`` then ``segment_end``, in order), which any TID 1500
reader gets with ``get_measurements``. The waveform is in the evidence like every source.
PS3.3 C.17.3.2.1 keeps COMPOSITE for objects that are neither images nor waveforms, so this is a
known deviation, the smaller one: highdicom itself refuses an IMAGE reference to a waveform. Once
highdicom reads WAVEFORM items, ``_group`` can switch to a WAVEFORM reference.

The report is from a device observer (TID 1004: the algorithm's UID, name, manufacturer and a
model name with its version), in English, and its root holds a "Qualitative Evaluations"
container (TID 1500 row 12) with the statement that the model is a reference model trained on
synthetic data, not for clinical use, in English and in Korean (text in UTF-8, ISO_IR 192). The
series description says the same. The document is complete, unverified and preliminary: a
physician's reading is the final one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import highdicom as hd
import numpy as np
import pydicom
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.sr.coding import Code
from pydicom.uid import RE_VALID_UID, UID
from pydicom.valuerep import DA, TM

SCHEME: Final = "99GJH"
MANUFACTURER: Final = "Gwangju AI public medical service (reference model)"
DISCLAIMER_EN: Final = "Reference model trained on synthetic data, not for clinical use."
DISCLAIMER_KO: Final = "합성 데이터로 학습한 참조 모델입니다. 임상 진료에 사용할 수 없습니다."
CHARACTER_SET: Final = "ISO_IR 192"

IMAGING_PROCEDURE: Final = Code("363679005", "SCT", "Imaging procedure")
ECG_PROCEDURE: Final = Code("268400002", "SCT", "12-Lead ECG")
PROBABILITY: Final = Code("122157", "DCM", "Probability")
THRESHOLD: Final = Code("122411", "DCM", "Threshold Value")
PRESENT: Final = Code("52101004", "SCT", "Present")
ABSENT: Final = Code("272519000", "SCT", "Absent")
SEGMENT_START: Final = Code("segment_start", SCHEME, "Contributing segment start")
SEGMENT_END: Final = Code("segment_end", SCHEME, "Contributing segment end")
SOURCE: Final = Code("121112", "DCM", "Source of Measurement")
COMMENT: Final = Code("121106", "DCM", "Comment")
QUALITATIVE: Final = Code("C0034375", "UMLS", "Qualitative Evaluations")
IMAGING_MEASUREMENTS: Final = Code("126010", "DCM", "Imaging Measurements")
ALGORITHM_NAME: Final = Code("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION: Final = Code("111003", "DCM", "Algorithm Version")
DEVICE: Final = Code("121007", "DCM", "Device")
ENGLISH: Final = Code("en-US", "RFC5646", "English (United States)")
KOREAN: Final = Code("ko-KR", "RFC5646", "Korean (Republic of Korea)")

NO_UNITS: Final = Code("1", "UCUM", "no units")
SECOND: Final = Code("s", "UCUM", "second")
UNITS: Final = {
    "month": Code("mo", "UCUM", "month"),
    "mm": Code("mm", "UCUM", "millimeter"),
}
MAX_LO: Final = 64
MAX_UID: Final = 64
COMPREHENSIVE_3D_SR: Final = "1.2.840.10008.5.1.4.1.1.88.34"


@dataclass(frozen=True)
class Algorithm:
    """The model that made the findings: the SR's device observer and each group's algorithm."""

    name: str  # e.g. "GJH reference chest"
    version: str  # e.g. "1.0.0"
    device_uid: str  # the algorithm's DICOM UID
    service: str  # routing key, e.g. "chest"


@dataclass(frozen=True)
class SrFinding:
    """One finding: a measurement group of the report."""

    finding_code: str  # platform code, e.g. "lung_nodule" (coding scheme designator 99GJH)
    finding_meaning: str  # English meaning, e.g. "Suspected lung nodule"
    sop_instance_uid: str  # the source instance where it is located (one of the sources)
    tracking_id: str  # human-readable tracking identifier
    tracking_uid: str  # a DICOM UID
    score: float | None  # 0..1 probability (classifiers), None for regressions
    threshold: float
    positive: bool
    value: float | None = None  # regression value (bone age months, leg-length mm)
    unit: str | None = None  # "month" | "mm"
    box: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1) in source pixels
    segments_s: tuple[tuple[float, float], ...] = ()  # waveforms: contributing segments, seconds

    @property
    def concept(self) -> Code:
        return Code(self.finding_code, SCHEME, self.finding_meaning)


def _is_image(ds: pydicom.Dataset) -> bool:
    return "Rows" in ds and "Columns" in ds


def _is_waveform(ds: pydicom.Dataset) -> bool:
    return "Waveform" in UID(str(ds.SOPClassUID)).name or "WaveformSequence" in ds


def _check_uid(value: str, what: str) -> None:
    if not (isinstance(value, str) and len(value) <= MAX_UID and RE_VALID_UID.match(value)):
        raise ValueError(f"{what} {value!r} is not a valid DICOM UID")


def _finite(value: float, what: str) -> float:
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _check_sources(sources: Sequence[pydicom.Dataset]) -> dict[str, pydicom.Dataset]:
    if not sources:
        raise ValueError("an SR needs at least one source instance")
    by_uid: dict[str, pydicom.Dataset] = {}
    for ds in sources:
        for keyword in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
            if keyword not in ds:
                raise ValueError(f"a source instance lacks {keyword}")
        by_uid[str(ds.SOPInstanceUID)] = ds
    studies = {str(ds.StudyInstanceUID) for ds in sources}
    if len(studies) > 1:
        raise ValueError(f"the sources belong to {len(studies)} studies; an SR reports one study")
    return by_uid


def _check_finding(finding: SrFinding, source: pydicom.Dataset | None) -> None:
    label = f"finding {finding.tracking_id!r}"
    if source is None:
        raise ValueError(
            f"{label} references instance {finding.sop_instance_uid}, "
            "which is not among the sources"
        )
    if not finding.finding_code or not finding.finding_meaning:
        raise ValueError(f"{label} needs a finding code and meaning")
    if len(finding.finding_meaning) > MAX_LO:
        raise ValueError(f"{label}: the finding meaning exceeds {MAX_LO} characters")
    if not finding.tracking_id:
        raise ValueError(f"{label} needs a tracking identifier")
    _check_uid(finding.tracking_uid, f"{label}: tracking UID")
    _check_numbers(finding, label)
    _check_location(finding, source, label)


def _check_numbers(finding: SrFinding, label: str) -> None:
    if finding.score is None and finding.value is None:
        raise ValueError(f"{label} has neither a score nor a value")
    if finding.score is not None and not 0.0 <= _finite(finding.score, "score") <= 1.0:
        raise ValueError(f"{label}: score {finding.score} is not a probability in 0..1")
    _finite(finding.threshold, f"{label}: threshold")
    if finding.value is not None:
        _finite(finding.value, f"{label}: value")
        if finding.unit not in UNITS:
            raise ValueError(f"{label}: unit {finding.unit!r} is not one of {sorted(UNITS)}")
    elif finding.unit is not None:
        raise ValueError(f"{label} has a unit but no value")


def _check_location(finding: SrFinding, source: pydicom.Dataset, label: str) -> None:
    if finding.box is not None:
        if not _is_image(source):
            raise ValueError(f"{label} has a box but its source is not an image")
        x0, y0, x1, y1 = (_finite(v, f"{label}: box") for v in finding.box)
        columns, rows = int(source.Columns), int(source.Rows)
        if not (0 <= x0 <= x1 <= columns and 0 <= y0 <= y1 <= rows):
            raise ValueError(
                f"{label}: box {finding.box} is not (x0, y0, x1, y1) inside the "
                f"{columns} x {rows} image"
            )
    if finding.segments_s:
        if not _is_waveform(source):
            raise ValueError(f"{label} has time segments but its source is not a waveform")
        for start, end in finding.segments_s:
            if not 0 <= _finite(start, "segment start") < _finite(end, "segment end"):
                raise ValueError(f"{label}: segment ({start}, {end}) is not 0 <= start < end")


def _measurements(finding: SrFinding) -> list[hd.sr.Measurement]:
    out: list[hd.sr.Measurement] = []
    threshold_unit = NO_UNITS  # the score's; a regression's threshold is in its value's unit
    if finding.score is not None:
        out.append(hd.sr.Measurement(PROBABILITY, float(finding.score), NO_UNITS))
    if finding.value is not None and finding.unit is not None:
        unit = UNITS[finding.unit]
        out.append(hd.sr.Measurement(finding.concept, float(finding.value), unit))
        if finding.score is None:
            threshold_unit = unit
    out.append(hd.sr.Measurement(THRESHOLD, float(finding.threshold), threshold_unit))
    for start, end in finding.segments_s:
        out.append(hd.sr.Measurement(SEGMENT_START, float(start), SECOND))
        out.append(hd.sr.Measurement(SEGMENT_END, float(end), SECOND))
    return out


def _group(
    finding: SrFinding, source: pydicom.Dataset, algorithm: Algorithm
) -> (
    hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
    | hd.sr.MeasurementsAndQualitativeEvaluations
):
    common: dict[str, Any] = {
        "tracking_identifier": hd.sr.TrackingIdentifier(
            uid=finding.tracking_uid, identifier=finding.tracking_id
        ),
        "finding_type": finding.concept,
        "algorithm_id": hd.sr.AlgorithmIdentification(
            name=algorithm.name, version=algorithm.version, manufacturer=MANUFACTURER
        ),
        "measurements": _measurements(finding),
        "qualitative_evaluations": [
            hd.sr.QualitativeEvaluation(finding.concept, PRESENT if finding.positive else ABSENT)
        ],
    }
    if finding.box is not None:
        x0, y0, x1, y1 = (float(v) for v in finding.box)
        rectangle = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=rectangle,
            source_image=hd.sr.SourceImageForRegion.from_source_image(source),
        )
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            referenced_region=region, **common
        )
    if _is_image(source):
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
            **common,
        )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(**common)
    group[0].ContentSequence.append(
        hd.sr.CompositeContentItem(
            name=SOURCE,
            referenced_sop_class_uid=str(source.SOPClassUID),
            referenced_sop_instance_uid=str(source.SOPInstanceUID),
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
    )
    return group


def _statement() -> hd.sr.ContainerContentItem:
    """TID 1500 row 12: the reference-model statement, English and Korean."""
    container = hd.sr.ContainerContentItem(
        name=QUALITATIVE, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    english = hd.sr.TextContentItem(
        name=COMMENT, value=DISCLAIMER_EN, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    korean = hd.sr.TextContentItem(
        name=COMMENT, value=DISCLAIMER_KO, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    korean.ContentSequence = hd.sr.LanguageOfContentItemAndDescendants(
        hd.sr.CodedConcept.from_code(KOREAN)
    )
    container.ContentSequence = hd.sr.ContentSequence([english, korean])
    return container


def _series_description(service: str) -> str:
    text = f"AI {service} (reference model, not for clinical use)"
    return text if len(text) <= MAX_LO else "AI findings (reference model, not for clinical use)"


def finding_report(
    sources: Sequence[pydicom.Dataset],
    findings: Sequence[SrFinding],
    algorithm: Algorithm,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 9001,
    instance_number: int = 1,
    when: datetime | None = None,
) -> pydicom.Dataset:
    """The study's findings as a Comprehensive 3D SR (TID 1500), ready to save.

    ``sources`` are the study's original instances (headers suffice); every one goes into the
    evidence, and the SR takes its patient and study from them. Raises ``ValueError`` when there
    is no finding (a scored study always has one; failures get no SR), when a finding references
    an instance that is not a source, or when a finding is malformed.
    """
    if not findings:
        raise ValueError("an SR needs at least one finding (failed studies get no SR)")
    by_uid = _check_sources(sources)
    uids = [f.tracking_uid for f in findings]
    if len(set(uids)) != len(uids):
        raise ValueError("two findings share a tracking UID")
    for finding in findings:
        _check_finding(finding, by_uid.get(finding.sop_instance_uid))
    _check_uid(algorithm.device_uid, "algorithm device UID")
    _check_uid(series_instance_uid, "series instance UID")
    _check_uid(sop_instance_uid, "SOP instance UID")
    if not algorithm.name or not algorithm.version:
        raise ValueError("the algorithm needs a name and a version")
    moment = when or datetime.now()

    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept.from_code(DEVICE),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=algorithm.device_uid,
            name=algorithm.name,
            manufacturer_name=MANUFACTURER,
            model_name=f"{algorithm.name} {algorithm.version}",
        ),
    )
    waveforms_only = all(_is_waveform(ds) for ds in sources)
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=ECG_PROCEDURE if waveforms_only else IMAGING_PROCEDURE,
        imaging_measurements=[_group(f, by_uid[f.sop_instance_uid], algorithm) for f in findings],
        language_of_content_item_and_descendants=hd.sr.LanguageOfContentItemAndDescendants(
            hd.sr.CodedConcept.from_code(ENGLISH)
        ),
    )
    report[0].ContentSequence.append(_statement())

    document = hd.sr.Comprehensive3DSR(
        evidence=list(sources),
        content=report,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        specific_character_set=CHARACTER_SET,
        series_description=_series_description(algorithm.service),
        manufacturer_model_name=algorithm.name,
        software_versions=algorithm.version,
        coding_schemes=[
            CodingSchemeIdentificationItem(
                designator=SCHEME,
                name="Gwangju AI public medical service platform codes",
                responsible_organization="Gwangju AI public medical service",
            )
        ],
        content_date=moment.date(),
        content_time=moment.time().replace(tzinfo=None),
        series_date=moment.date(),
        series_time=moment.time().replace(tzinfo=None),
    )
    document.InstanceCreationDate = DA(moment.date())
    document.InstanceCreationTime = TM(moment.time().replace(tzinfo=None))
    if moment.utcoffset() is not None:  # dates and times above are local to this offset
        document.TimezoneOffsetFromUTC = moment.strftime("%z")
    return document


def _float32(value: float) -> float:
    """A coordinate as written (SCOORD data are 32-bit floats): the shortest decimal for it."""
    return float(str(np.float32(value)))


def _texts(item: pydicom.Dataset, name: Code) -> list[str]:
    return [
        str(i.value)
        for i in hd.sr.utils.find_content_items(
            item, name=name, value_type=hd.sr.ValueTypeValues.TEXT
        )
    ]


def _values(
    group: hd.sr.MeasurementsAndQualitativeEvaluations
    | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations,
    name: Code,
) -> list[tuple[float, str]]:
    return [(float(m.value), str(m.unit.value)) for m in group.get_measurements(name=name)]


def _location(
    group: hd.sr.MeasurementsAndQualitativeEvaluations
    | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations,
) -> tuple[str | None, tuple[float, float, float, float] | None]:
    """The group's source instance, and its box when it is a planar ROI."""
    if isinstance(group, hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations):
        roi = group.roi
        if not isinstance(roi, hd.sr.ImageRegion):
            return None, None
        points = roi.value
        xs, ys = points[:, 0], points[:, 1]
        box = (
            _float32(xs.min()),
            _float32(ys.min()),
            _float32(xs.max()),
            _float32(ys.max()),
        )
        source = hd.sr.SourceImageForRegion.from_dataset(roi.ContentSequence[0])
        return str(source.referenced_sop_instance_uid), box
    images = group.source_images
    if images:
        return str(images[0].referenced_sop_instance_uid), None
    composites = hd.sr.utils.find_content_items(
        group[0], name=SOURCE, value_type=hd.sr.ValueTypeValues.COMPOSITE
    )
    if composites:
        reference = hd.sr.CompositeContentItem.from_dataset(composites[0])
        return str(reference.referenced_sop_instance_uid), None
    return None, None


def read_findings(ds: pydicom.Dataset) -> list[dict[str, Any]]:
    """The findings of an SR written by ``finding_report``, parsed back with highdicom.

    One dict per measurement group, in document order, with the fields of ``SrFinding`` (unit
    back in the platform's words, box in source pixels) and ``algorithm_name``,
    ``algorithm_version`` (the group's TID 4019) and ``device_uid`` (the device observer).
    """
    if str(ds.get("SOPClassUID", "")) != COMPREHENSIVE_3D_SR:
        raise ValueError("not a Comprehensive 3D SR document")
    document = hd.sr.Comprehensive3DSR.from_dataset(ds)
    report = document.content
    if not isinstance(report, hd.sr.MeasurementReport):
        raise ValueError("the SR is not a TID 1500 measurement report")
    devices = report.get_observer_contexts(observer_type=DEVICE)
    device_uid: str | None = None
    if devices:
        attributes = devices[0].observer_identifying_attributes
        if isinstance(attributes, hd.sr.DeviceObserverIdentifyingAttributes):
            device_uid = str(attributes.uid)
    containers = hd.sr.utils.find_content_items(
        report[0], name=IMAGING_MEASUREMENTS, value_type=hd.sr.ValueTypeValues.CONTAINER
    )
    if not containers:
        return []
    units = {code.value: word for word, code in UNITS.items()}
    out: list[dict[str, Any]] = []
    for item in containers[0].ContentSequence:
        group: (
            hd.sr.MeasurementsAndQualitativeEvaluations
            | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
        )
        if item.template_id == "1410":
            group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations.from_sequence([item])
        else:
            group = hd.sr.MeasurementsAndQualitativeEvaluations.from_sequence([item])
        finding = group.finding_type
        if finding is None:
            raise ValueError("a measurement group has no finding")
        concept = Code(str(finding.value), str(finding.scheme_designator), str(finding.meaning))
        scores = _values(group, PROBABILITY)
        values = _values(group, concept)
        thresholds = _values(group, THRESHOLD)
        starts = [v for v, _ in _values(group, SEGMENT_START)]
        ends = [v for v, _ in _values(group, SEGMENT_END)]
        if len(starts) != len(ends):
            raise ValueError("segment starts and ends do not pair up")
        flags = group.get_qualitative_evaluations(name=concept)
        sop_instance_uid, box = _location(group)
        names = _texts(group[0], ALGORITHM_NAME)
        versions = _texts(group[0], ALGORITHM_VERSION)
        out.append(
            {
                "finding_code": concept.value,
                "finding_meaning": concept.meaning,
                "sop_instance_uid": sop_instance_uid,
                "tracking_id": group.tracking_identifier,
                "tracking_uid": None if group.tracking_uid is None else str(group.tracking_uid),
                "score": scores[0][0] if scores else None,
                "threshold": thresholds[0][0] if thresholds else None,
                "positive": bool(flags) and flags[0].value == PRESENT,
                "value": values[0][0] if values else None,
                "unit": units.get(values[0][1], values[0][1]) if values else None,
                "box": box,
                "segments_s": tuple(zip(starts, ends, strict=True)),
                "algorithm_name": names[0] if names else None,
                "algorithm_version": versions[0] if versions else None,
                "device_uid": device_uid,
            }
        )
    return out
