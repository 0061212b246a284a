"""The AI's findings of a study as the SR writer takes them (with the algorithm and the study's
source instances), and what it refuses of them: whatever highdicom's construction could not take
(docs/sr.md), so that the document written directly is always one highdicom would have built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pydicom
from pydicom.sr.coding import Code
from pydicom.tag import BaseTag
from pydicom.uid import RE_VALID_UID, UID, TwelveLeadECGWaveformStorage

from lakehouse.sr.codes import (
    ECG_PROCEDURE,
    ECG_RECORDING,
    IMAGING_PROCEDURE,
    MAX_LO,
    MAX_UID,
    SCHEME,
    UNITS,
)
from lakehouse.sr.iods import iod

# Source attributes highdicom reads to build the header (``_SR.__init__``): without them it fails.
COPIED_TYPE_2: Final = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
)
# Modalities highdicom refuses as the source image of a region or measurement group.
NOT_SOURCE_IMAGES: Final = frozenset(
    {"SEG", "SR", "DOC", "KO", "PR", "PLAN", "RWV", "REG", "FID"}
    | {"RTDOSE", "RTPLAN", "RTRECORD", "RTSTRUCT"}
)


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
    frame_number: int | None = None  # 1-based frame of a multi-frame source; None: single-frame

    @property
    def concept(self) -> Code:
        return Code(self.finding_code, SCHEME, self.finding_meaning)


def is_image(ds: pydicom.Dataset) -> bool:
    return "Rows" in ds and "Columns" in ds


def is_waveform(ds: pydicom.Dataset) -> bool:
    return "Waveform" in UID(str(ds.SOPClassUID)).name or "WaveformSequence" in ds


def procedure(sources: Sequence[pydicom.Dataset]) -> Code:
    """The procedure the report is on: a 12-lead ECG only when every source is one (a Holter or
    a patch recording is an electrocardiographic procedure, not a 12-lead ECG), else imaging."""
    if not all(is_waveform(ds) for ds in sources):
        return IMAGING_PROCEDURE
    if all(str(ds.SOPClassUID) == TwelveLeadECGWaveformStorage for ds in sources):
        return ECG_PROCEDURE
    return ECG_RECORDING


# -- What highdicom knows of a SOP class's IOD (kept in ``lakehouse.sr.iods``) ------------------


def patient_and_study_tags(sop_class_uid: str) -> tuple[BaseTag, ...]:
    """The root attributes of the IOD's Patient and Study modules, which highdicom's
    ``SOPClass.copy_patient_and_study_information`` copies from a source of this class. Raises
    ``ValueError`` when highdicom knows no IOD for the class."""
    tags = iod(sop_class_uid).patient_and_study
    if tags is None:
        raise ValueError(f"SOP class {sop_class_uid} is not a standard IOD")
    return tags


def is_image_iod(sop_class_uid: str) -> bool:
    """Whether the IOD has pixel data, highdicom's test for an image (its
    ``ContributingEquipment.for_image_acquisition`` refuses any other source)."""
    return iod(sop_class_uid).image


def is_multiframe_iod(sop_class_uid: str) -> bool:
    """Whether the IOD is a multi-frame image (it has Number of Frames), highdicom's test for
    referencing a frame (its ``SourceImageForRegion.from_source_image`` refuses a frame number
    for an image of any other class, whatever the instance's frame count)."""
    return iod(sop_class_uid).multiframe


def _check_standard(sop_class_uid: str, what: str) -> None:
    try:
        patient_and_study_tags(str(sop_class_uid))
    except ValueError as error:
        message = f"{what} has SOP class {sop_class_uid}, which is not a standard IOD"
        raise ValueError(message) from error


# -- Refusals ----------------------------------------------------------------------------------


def check_uid(value: str, what: str) -> None:
    if not (isinstance(value, str) and len(value) <= MAX_UID and RE_VALID_UID.match(value)):
        raise ValueError(f"{what} {value!r} is not a valid DICOM UID")


def check_string(value: str, limit: int, what: str) -> None:
    """A string for an LO, SH or ST element: highdicom refuses longer ones and backslashes."""
    if len(value) > limit or "\\" in value:
        raise ValueError(f"{what} {value!r} is longer than {limit} characters or has a backslash")


def finite(value: float, what: str) -> float:
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def check_report(
    sources: Sequence[pydicom.Dataset],
    findings: Sequence[SrFinding],
    algorithm: Algorithm,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int,
    instance_number: int,
) -> dict[str, pydicom.Dataset]:
    """Everything ``finding_report`` is given, checked; returns the sources by instance UID."""
    if not findings:
        raise ValueError("an SR needs at least one finding (failed studies get no SR)")
    by_uid = _check_sources(sources)
    tracking = [f.tracking_uid for f in findings]
    if len(set(tracking)) != len(tracking):
        raise ValueError("two findings share a tracking UID")
    for finding in findings:
        _check_finding(finding, by_uid.get(finding.sop_instance_uid))
    check_uid(algorithm.device_uid, "algorithm device UID")
    check_uid(series_instance_uid, "series instance UID")
    check_uid(sop_instance_uid, "SOP instance UID")
    if not algorithm.name or not algorithm.version:
        raise ValueError("the algorithm needs a name and a version")
    check_string(algorithm.name, MAX_LO, "the algorithm name (Manufacturer's Model Name)")
    check_string(algorithm.version, MAX_LO, "the algorithm version (Software Versions)")
    if series_number < 1 or instance_number < 1:
        raise ValueError("the series and instance numbers must be positive")
    return by_uid


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
    _check_header(sources[0])
    return by_uid


def _check_header(first: pydicom.Dataset) -> None:
    """The first source gives the SR its patient and study, as in highdicom, which needs these."""
    _check_standard(first.SOPClassUID, "the first source")
    for keyword in COPIED_TYPE_2:
        if keyword not in first:
            raise ValueError(f"the first source lacks {keyword}, which the SR copies")
    if first.PatientSex not in (None, "", "M", "F", "O"):
        raise ValueError(f"the first source's patient sex {first.PatientSex!r} is not M, F or O")


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
    check_uid(finding.tracking_uid, f"{label}: tracking UID")
    _check_numbers(finding, label)
    _check_location(finding, source, label)


def _check_numbers(finding: SrFinding, label: str) -> None:
    if finding.score is None and finding.value is None:
        raise ValueError(f"{label} has neither a score nor a value")
    if finding.score is not None and not 0.0 <= finite(finding.score, "score") <= 1.0:
        raise ValueError(f"{label}: score {finding.score} is not a probability in 0..1")
    finite(finding.threshold, f"{label}: threshold")
    if finding.value is not None:
        finite(finding.value, f"{label}: value")
        if finding.unit not in UNITS:
            raise ValueError(f"{label}: unit {finding.unit!r} is not one of {sorted(UNITS)}")
    elif finding.unit is not None:
        raise ValueError(f"{label} has a unit but no value")


def _check_location(finding: SrFinding, source: pydicom.Dataset, label: str) -> None:
    if finding.box is not None:
        if not is_image(source):
            raise ValueError(f"{label} has a box but its source is not an image")
        x0, y0, x1, y1 = (finite(v, f"{label}: box") for v in finding.box)
        columns, rows = int(source.Columns), int(source.Rows)
        if not (0 <= x0 <= x1 <= columns and 0 <= y0 <= y1 <= rows):
            raise ValueError(
                f"{label}: box {finding.box} is not (x0, y0, x1, y1) inside the "
                f"{columns} x {rows} image"
            )
        _check_standard(source.SOPClassUID, f"{label}: the boxed source")
    if is_image(source) and source.get("Modality") in (None, *NOT_SOURCE_IMAGES):
        raise ValueError(f"{label}: an image of modality {source.get('Modality')!r} is no source")
    if finding.frame_number is not None:
        _check_frame(finding.frame_number, source, label)
    if finding.segments_s:
        if not is_waveform(source):
            raise ValueError(f"{label} has time segments but its source is not a waveform")
        for start, end in finding.segments_s:
            if not 0 <= finite(start, "segment start") < finite(end, "segment end"):
                raise ValueError(f"{label}: segment ({start}, {end}) is not 0 <= start < end")


def _check_frame(frame: int, source: pydicom.Dataset, label: str) -> None:
    """A frame is referenced only in a multi-frame image, and must be one of its frames."""
    if not is_image(source) or not is_multiframe_iod(str(source.SOPClassUID)):
        raise ValueError(f"{label} names frame {frame} but its source is no multi-frame image")
    frames = int(source.get("NumberOfFrames") or 1)
    if isinstance(frame, bool) or not isinstance(frame, int) or not 1 <= frame <= frames:
        raise ValueError(f"{label}: frame {frame!r} is not a frame number in 1..{frames}")
