"""The AI findings of one study as a DICOM Comprehensive 3D SR: a TID 1500 Measurement Report.

One measurement group per finding: TID 1410 (a box on an image, as an image region; on a
multi-frame image its source reference names the frame) or TID 1501 (whole image, waveform, no
location), each with its tracking identifier, the finding, the algorithm and its measurements.
Encoded straight to the file's bytes (``lakehouse.sr.encode``), content item by content item as
highdicom's templates build them, because highdicom's construction costs several times the
study's own scoring, and pydicom's datasets as much as it; the oracle tests hold it to
highdicom's document, and its bytes to the file pydicom writes of it (docs/sr.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from io import BytesIO

import pydicom
from pydicom.sr.coding import Code
from pydicom.uid import VLWholeSlideMicroscopyImageStorage

from lakehouse.sr.codes import (
    ABSENT,
    ALGORITHM_MANUFACTURER,
    ALGORITHM_NAME,
    ALGORITHM_VERSION,
    CHARACTER_SET,
    COMMENT,
    CONTAINS,
    DEVICE,
    DEVICE_OBSERVER_MANUFACTURER,
    DEVICE_OBSERVER_MODEL,
    DEVICE_OBSERVER_NAME,
    DEVICE_OBSERVER_UID,
    DISCLAIMER_EN,
    DISCLAIMER_KO,
    ENGLISH,
    FINDING,
    HAS_CONCEPT_MOD,
    HAS_OBS_CONTEXT,
    IMAGE_REGION,
    IMAGING_MEASUREMENTS,
    KOREAN,
    LANGUAGE,
    MANUFACTURER,
    MEASUREMENT_GROUP,
    NO_UNITS,
    OBSERVER_TYPE,
    PRESENT,
    PROBABILITY,
    PROCEDURE_REPORTED,
    QUALITATIVE,
    REGION_SOURCE,
    SECOND,
    SEGMENT_END,
    SEGMENT_START,
    SELECTED_FROM,
    SOURCE,
    THRESHOLD,
    TRACKING_IDENTIFIER,
    TRACKING_UID,
    UNITS,
)
from lakehouse.sr.encode import (
    CONTENT_SEQUENCE,
    CodeKey,
    code_item,
    code_key,
    content_item,
    encoded_once,
    floats,
    num_item,
    number,
    reference_item,
    sq,
    tag_key,
    template_sequence,
    text,
    text_item,
    uid_item,
)
from lakehouse.sr.findings import (
    Algorithm,
    SrFinding,
    check_report,
    is_image,
    procedure,
)
from lakehouse.sr.header import (
    PREAMBLE,
    constant_header,
    copied_header,
    evidence,
    file_meta_group,
)


@encoded_once
def _language(language: CodeKey) -> list[bytes]:
    """TID 1204."""
    return [code_item(LANGUAGE, Code(*language), HAS_CONCEPT_MOD)]


@encoded_once
def _observer(algorithm: Algorithm) -> list[bytes]:
    """TID 1002 and 1004: the algorithm as the device observer."""
    return [
        code_item(OBSERVER_TYPE, DEVICE, HAS_OBS_CONTEXT),
        uid_item(DEVICE_OBSERVER_UID, algorithm.device_uid, HAS_OBS_CONTEXT),
        text_item(DEVICE_OBSERVER_NAME, algorithm.name, HAS_OBS_CONTEXT),
        text_item(DEVICE_OBSERVER_MANUFACTURER, MANUFACTURER, HAS_OBS_CONTEXT),
        text_item(DEVICE_OBSERVER_MODEL, f"{algorithm.name} {algorithm.version}", HAS_OBS_CONTEXT),
    ]


@encoded_once
def _procedure(reported: CodeKey) -> list[bytes]:
    return [code_item(PROCEDURE_REPORTED, Code(*reported), HAS_CONCEPT_MOD)]


@encoded_once
def _statement() -> list[bytes]:
    """TID 1500 row 12: the reference-model statement, English and Korean."""
    korean = text_item(
        COMMENT, DISCLAIMER_KO, CONTAINS, sq(CONTENT_SEQUENCE, _language(code_key(KOREAN)))
    )
    english = text_item(COMMENT, DISCLAIMER_EN, CONTAINS)
    return [content_item("CONTAINER", QUALITATIVE, CONTAINS, sq(CONTENT_SEQUENCE, english, korean))]


@encoded_once
def _algorithm_identification(algorithm: Algorithm) -> list[bytes]:
    """TID 4019."""
    return [
        text_item(ALGORITHM_NAME, algorithm.name, HAS_CONCEPT_MOD),
        text_item(ALGORITHM_VERSION, algorithm.version, HAS_CONCEPT_MOD),
        text_item(ALGORITHM_MANUFACTURER, MANUFACTURER, HAS_CONCEPT_MOD),
    ]


@encoded_once
def _finding_type(concept: CodeKey) -> list[bytes]:
    return [code_item(FINDING, Code(*concept), CONTAINS)]


@encoded_once
def _evaluation(concept: CodeKey, positive: bool) -> list[bytes]:
    """The qualitative evaluation: the finding present or absent."""
    return [code_item(Code(*concept), PRESENT if positive else ABSENT, CONTAINS)]


def _measurements(finding: SrFinding) -> list[bytes]:
    out: list[bytes] = []
    threshold_unit = NO_UNITS  # the score's; a regression's threshold is in its value's unit
    if finding.score is not None:
        out.append(num_item(PROBABILITY, float(finding.score), NO_UNITS))
    if finding.value is not None and finding.unit is not None:
        unit = UNITS[finding.unit]
        out.append(num_item(finding.concept, float(finding.value), unit))
        if finding.score is None:
            threshold_unit = unit
    out.append(num_item(THRESHOLD, float(finding.threshold), threshold_unit))
    for start, end in finding.segments_s:
        out.append(num_item(SEGMENT_START, float(start), SECOND))
        out.append(num_item(SEGMENT_END, float(end), SECOND))
    return out


def _region(
    box: tuple[float, float, float, float], source: pydicom.Dataset, frame: int | None
) -> bytes:
    """highdicom's ``ImageRegion``: a closed rectangle on the source, in its pixels, on
    ``frame`` of a multi-frame source (its source image reference names the frame, as
    TID 1410's SCOORD allows)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    parts = [
        text("GraphicType", "POLYLINE"),
        floats("GraphicData", [x0, y0, x1, y0, x1, y1, x0, y1, x0, y0]),
    ]
    if str(source.SOPClassUID) == VLWholeSlideMicroscopyImageStorage:
        parts.append(text("PixelOriginInterpretation", "VOLUME"))  # highdicom's for slides
    image = reference_item("IMAGE", REGION_SOURCE, source, SELECTED_FROM, frame)
    return content_item("SCOORD", IMAGE_REGION, CONTAINS, *parts, sq(CONTENT_SEQUENCE, image))


def _group(finding: SrFinding, source: pydicom.Dataset, algorithm: Algorithm) -> bytes:
    """TID 1410 (a box on an image) or TID 1501 (whole image, waveform)."""
    concept = code_key(finding.concept)
    if finding.box is not None:
        location = _region(finding.box, source, finding.frame_number)
    elif is_image(source):
        location = reference_item("IMAGE", SOURCE, source, CONTAINS, finding.frame_number)
    else:  # a waveform, referenced as COMPOSITE: see docs/sr.md, "ECG"
        location = reference_item("COMPOSITE", SOURCE, source, CONTAINS)
    content = sq(
        CONTENT_SEQUENCE,
        text_item(TRACKING_IDENTIFIER, finding.tracking_id, HAS_OBS_CONTEXT),
        uid_item(TRACKING_UID, finding.tracking_uid, HAS_OBS_CONTEXT),
        _finding_type(concept),
        _algorithm_identification(algorithm),
        *_measurements(finding),
        _evaluation(concept, finding.positive),
        location,
    )
    template = template_sequence("1410" if finding.box is not None else "1501")
    return content_item("CONTAINER", MEASUREMENT_GROUP, CONTAINS, template, content)


def report_file(
    sources: Sequence[pydicom.Dataset],
    findings: Sequence[SrFinding],
    algorithm: Algorithm,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 9001,
    instance_number: int = 1,
    when: datetime | None = None,
) -> bytes:
    """The study's findings as a Comprehensive 3D SR (TID 1500): the bytes of its file.

    ``sources`` are the study's original instances (headers suffice); every one goes into the
    evidence, and the SR takes its patient and study from the first. Raises ``ValueError`` when
    there is no finding (a scored study always has one; failures get no SR), when a finding
    references an instance that is not a source, when a finding is malformed, or when the first
    source lacks what the header copies.
    """
    by_uid = check_report(
        sources,
        findings,
        algorithm,
        series_instance_uid,
        sop_instance_uid,
        series_number,
        instance_number,
    )
    moment = when or datetime.now()
    groups = [_group(f, by_uid[f.sop_instance_uid], algorithm) for f in findings]
    measurements = content_item(
        "CONTAINER", IMAGING_MEASUREMENTS, CONTAINS, sq(CONTENT_SEQUENCE, *groups)
    )
    content = sq(
        CONTENT_SEQUENCE,
        _language(code_key(ENGLISH)),
        _observer(algorithm),
        _procedure(code_key(procedure(sources))),
        measurements,
        _statement(),
    )
    elements = {
        tag_key(e): e
        for e in (
            text("SpecificCharacterSet", CHARACTER_SET),
            *constant_header(algorithm),
            text("SeriesInstanceUID", series_instance_uid),
            number("SeriesNumber", series_number),
            text("SOPInstanceUID", sop_instance_uid),
            number("InstanceNumber", instance_number),
            *copied_header(sources[0], moment),
            evidence(sources),
            content,
        )
    }
    body = b"".join(elements[tag] for tag in sorted(elements))
    return PREAMBLE + file_meta_group(sop_instance_uid) + body


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
    """``report_file``'s document read back with pydicom: ready to save with
    ``save_as(..., enforce_file_format=True)``, or to read."""
    data = report_file(
        sources,
        findings,
        algorithm,
        series_instance_uid,
        sop_instance_uid,
        series_number,
        instance_number,
        when,
    )
    return pydicom.dcmread(BytesIO(data))
