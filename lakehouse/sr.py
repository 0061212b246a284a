"""The AI findings of one study as a DICOM Comprehensive 3D SR: a TID 1500 Measurement Report.

``finding_report`` writes one measurement group per finding:

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

Verification: ``verified_report`` re-issues a report with a clinician's verdicts (accepted,
rejected or amended, with a reason, a note, an amended value) as a new instance, verified by the
clinician (header: Verifying Observer Sequence, the original as the predecessor document) and
otherwise the AI's document as it was, each verdict an assessment item appended to its
finding's measurement group and observed by the clinician (a TID 1002 person observer context on
the item; the root keeps the device observer, whose findings they stay); ``read_verdicts``
reads them back. Codes: DICOM has none for assessing an AI result (PS3.16 as pydicom 3.0.2
ships it: the nearest, CID 3217 "Agreement / Disagreement with prior findings", compares with a
prior study, not with an AI; no code of the IHE AI Result Assessment profile is in those
tables either), so the assessment (``assessment``), its decisions (``accepted``, ``rejected``,
``amended``), the reason (``reason``) and the reason codes are in the platform's scheme 99GJH;
the person observer's items (DCM 121005, 121006, 121008, 121009, 121011, 128774), the role
(DCM 121098 Verifying, CID 7453) and the note (DCM 121106 Comment) are DICOM's. The verifier's
account is their coded identifier in the scheme 99GJHACCT (the platform's accounts), declared
beside 99GJH. This module lives in ``lakehouse`` so that the access layer, which re-issues
reports, needs nothing from ``pipelines``.

How it is written: with pydicom datasets, following highdicom 0.28.2's construction
(``MeasurementReport`` and the templates it includes, ``Comprehensive3DSR``): the same header
(the patient and study attributes of the first source's IOD Patient and Study modules, copied as
``SOPClass.copy_patient_and_study_information`` does; the first source's acquisition equipment
as contributing equipment), the same evidence and the same content tree, element for element.
Why: highdicom's construction costs about 60 ms a document on the scoring machines (the
``Comprehensive3DSR`` constructor alone about 50: deep copies, ``collect_evidence``, IOD table
look-ups) and its ``save_as`` about 20 more, several times the reading, preparation and
inference of the study itself (about 15 ms), and the scoring benchmark needs scoring, SR
included, at 0.8x a bare read/prepare/infer loop. Written directly, and with what every report
shares encoded once per process (see the note on writing below), ``finding_report`` and
``save_as`` cost about 10 ms for a one-instance radiograph and 13 ms for a 14-instance MR study,
against about 80 before. ``tests/pipelines/sr_oracle.py`` keeps highdicom's construction and
``tests/pipelines/test_sr.py`` holds this writer to it, comparing the two documents element by
element (in memory and as written) for every kind of finding; highdicom still reads every
document back (``read_findings``, and the tests through ``srread``).

Where the document differs from highdicom's: highdicom names itself (``highdicom``, its version,
the time it ran) as the processing equipment, last in the Contributing Equipment Sequence; this
writer names the platform there instead (``PLATFORM`` and its installed version, by
``PLATFORM_MANUFACTURER``, at the report's time), after the acquisition equipment entry, which
is highdicom's. The file meta names pydicom, which writes the file, as the implementation. In
memory, the content tree is already encoded (it decodes on access), so the box's Graphic Data
reads as the 32-bit floats written, where highdicom's dataset holds the 64-bit inputs until it
is saved. highdicom refuses sources its construction cannot take (the first source without a
patient or study attribute it copies, of an unknown SOP class or with a sex other than M, F or
O; an image source without a modality or of a non-image one such as SEG or SR) and header values
it cannot write (an algorithm name or version over 64 characters or with a backslash, a series
or instance number below 1); ``finding_report`` refuses the same, with ``ValueError``.
"""

from __future__ import annotations

import importlib.metadata
import re
import unicodedata
from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache, wraps
from io import BytesIO
from typing import Any, Final, ParamSpec, cast

import highdicom as hd
import numpy as np
import pydicom
from highdicom._standard_utils import (  # the IOD tables highdicom's constructors consult
    does_iod_have_pixel_data,
    get_iod_module_map,
    get_module_attribute_map,
    get_sop_class_iod_map,
)
from pydicom.charset import convert_encodings
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import data_element_generator
from pydicom.filewriter import write_dataset, write_file_meta_info, write_sequence_item
from pydicom.sr.coding import Code
from pydicom.tag import BaseTag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    RE_VALID_UID,
    UID,
    ExplicitVRLittleEndian,
    VLWholeSlideMicroscopyImageStorage,
)
from pydicom.valuerep import DA, DS, DT, TM

SCHEME: Final = "99GJH"
MANUFACTURER: Final = "Gwangju AI public medical service (reference model)"
DISCLAIMER_EN: Final = "Reference model trained on synthetic data, not for clinical use."
DISCLAIMER_KO: Final = "합성 데이터로 학습한 참조 모델입니다. 임상 진료에 사용할 수 없습니다."
CHARACTER_SET: Final = "ISO_IR 192"
PLATFORM: Final = "gwangju-ai-health"  # the distribution whose code writes the SR
PLATFORM_MANUFACTURER: Final = "Gwangju AI public medical service"

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

# The codes highdicom's templates write around ours.
REPORT_TITLE: Final = Code("126000", "DCM", "Imaging Measurement Report")
LANGUAGE: Final = Code("121049", "DCM", "Language of Content Item and Descendants")
OBSERVER_TYPE: Final = Code("121005", "DCM", "Observer Type")
DEVICE_OBSERVER_UID: Final = Code("121012", "DCM", "Device Observer UID")
DEVICE_OBSERVER_NAME: Final = Code("121013", "DCM", "Device Observer Name")
DEVICE_OBSERVER_MANUFACTURER: Final = Code("121014", "DCM", "Device Observer Manufacturer")
DEVICE_OBSERVER_MODEL: Final = Code("121015", "DCM", "Device Observer Model Name")
PROCEDURE_REPORTED: Final = Code("121058", "DCM", "Procedure reported")
MEASUREMENT_GROUP: Final = Code("125007", "DCM", "Measurement Group")
TRACKING_IDENTIFIER: Final = Code("112039", "DCM", "Tracking Identifier")
TRACKING_UID: Final = Code("112040", "DCM", "Tracking Unique Identifier")
FINDING: Final = Code("121071", "DCM", "Finding")
ALGORITHM_MANUFACTURER: Final = Code("122405", "DCM", "Algorithm Manufacturer")
IMAGE_REGION: Final = Code("111030", "DCM", "Image Region")
REGION_SOURCE: Final = Code("260753009", "SCT", "Source")
ACQUISITION_EQUIPMENT: Final = Code("109101", "DCM", "Acquisition Equipment")
PROCESSING_EQUIPMENT: Final = Code("109102", "DCM", "Processing Equipment")

NO_UNITS: Final = Code("1", "UCUM", "no units")
SECOND: Final = Code("s", "UCUM", "second")
UNITS: Final = {
    "month": Code("mo", "UCUM", "month"),
    "mm": Code("mm", "UCUM", "millimeter"),
}
MAX_LO: Final = 64
MAX_SH: Final = 16
MAX_ST: Final = 1024
MAX_UID: Final = 64
CREATED: Final = "Software that created this instance (lakehouse.sr)"
COMPREHENSIVE_3D_SR: Final = "1.2.840.10008.5.1.4.1.1.88.34"

# Relationship and value types (PS3.3 C.17.3).
CONTAINS: Final = "CONTAINS"
HAS_OBS_CONTEXT: Final = "HAS OBS CONTEXT"
HAS_CONCEPT_MOD: Final = "HAS CONCEPT MOD"
SELECTED_FROM: Final = "SELECTED FROM"

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
# The first source's equipment attributes highdicom copies, and their length limits.
EQUIPMENT_STRINGS: Final = {
    "ManufacturerModelName": MAX_LO,
    "InstitutionName": MAX_LO,
    "InstitutionalDepartmentName": MAX_LO,
    "InstitutionAddress": MAX_ST,
    "StationName": MAX_SH,
    "DeviceSerialNumber": MAX_LO,
    "SoftwareVersions": MAX_LO,
}
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


def _check_string(value: str, limit: int, what: str) -> None:
    """A string for an LO, SH or ST element: highdicom refuses longer ones and backslashes."""
    if len(value) > limit or "\\" in value:
        raise ValueError(f"{what} {value!r} is longer than {limit} characters or has a backslash")


def _finite(value: float, what: str) -> float:
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _iod(sop_class_uid: str, what: str) -> str:
    """The IOD of a SOP class, from highdicom's tables (which fail on unknown classes)."""
    iod = get_sop_class_iod_map().get(str(sop_class_uid))
    if iod is None:
        raise ValueError(f"{what} has SOP class {sop_class_uid}, which is not a standard IOD")
    return iod


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
    _iod(first.SOPClassUID, "the first source")
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
        _iod(source.SOPClassUID, f"{label}: the boxed source")
    if _is_image(source) and source.get("Modality") in (None, *NOT_SOURCE_IMAGES):
        raise ValueError(f"{label}: an image of modality {source.get('Modality')!r} is no source")
    if finding.segments_s:
        if not _is_waveform(source):
            raise ValueError(f"{label} has time segments but its source is not a waveform")
        for start, end in finding.segments_s:
            if not 0 <= _finite(start, "segment start") < _finite(end, "segment end"):
                raise ValueError(f"{label}: segment ({start}, {end}) is not 0 <= start < end")


def _check_report(algorithm: Algorithm, series_number: int, instance_number: int) -> None:
    if not algorithm.name or not algorithm.version:
        raise ValueError("the algorithm needs a name and a version")
    _check_string(algorithm.name, MAX_LO, "the algorithm name (Manufacturer's Model Name)")
    _check_string(algorithm.version, MAX_LO, "the algorithm version (Software Versions)")
    if series_number < 1 or instance_number < 1:
        raise ValueError("the series and instance numbers must be positive")


# -- Writing ---------------------------------------------------------------------------------
#
# The document is built with pydicom datasets, content item by content item as highdicom's
# templates build them, and each content sequence is encoded as soon as its items are built
# (with pydicom's writer, into a raw element that ``save_as`` copies as it is). What every report
# of a process or of an algorithm shares is encoded once per process: the coded concepts, the
# head (value type, concept name, relationship) of each kind of content item, the language,
# observer, procedure, algorithm, finding and statement items, the constant header elements.
# Why: pydicom's writer costs about 45 us an element on the scoring machines, a report has about
# 290, and most of them are the same in every report. Measured on one-instance reports: coded
# concepts encoded once take two fifths off ``save_as``; content sequences encoded as built,
# with the shared items as bytes, a fifth off building and saving; raw heads and header about a
# tenth each.
#
# Every dataset is marked as already encoded the way the file is (explicit VR little endian, the
# document's character set): otherwise pydicom's writer runs its ambiguous-VR pass over each
# dataset and converts each of its raw elements back to a value before writing it (marking
# alone takes a fifth off writing highdicom's document). The document has no element of
# ambiguous VR (US or SS, OB or OW...; none in the Patient and Study modules the header copies
# either), so the pass has nothing to do. A raw element is decoded only when something reads it.

ENCODINGS: Final = convert_encodings(CHARACTER_SET)
CONTENT_SEQUENCE: Final = BaseTag(0x0040A730)
Raw = tuple[RawDataElement, ...]
CodeKey = tuple[str, str, str, str | None]
P = ParamSpec("P")


def _item(*raw: RawDataElement) -> pydicom.Dataset:
    """A new dataset of the document holding ``raw`` elements (see the note above)."""
    item = pydicom.Dataset(parent_encoding=ENCODINGS)
    item.set_original_encoding(False, True, ENCODINGS)
    for element in raw:
        item[element.tag] = element
    return item


def _encoded(*items: pydicom.Dataset | bytes) -> bytes:
    """Sequence items as pydicom writes them in the document (bytes: items encoded before)."""
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = False, True
    for item in items:
        if isinstance(item, bytes):
            buffer.write(item)
        else:
            write_sequence_item(buffer, item, ENCODINGS)
    return buffer.getvalue()


def _sequence(tag: BaseTag, *items: pydicom.Dataset | bytes) -> RawDataElement:
    """A sequence element of ``items``, encoded now: pydicom copies it into the file as it is."""
    value = _encoded(*items)
    return RawDataElement(tag, "SQ", len(value), value, 0, False, True)


def _tag(keyword: str) -> BaseTag:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - a typo
        raise KeyError(keyword)
    return BaseTag(tag)


def _encoded_once(build: Callable[P, list[pydicom.Dataset]]) -> Callable[P, bytes]:
    """``build``'s content items, encoded on the first call for these arguments and reused (see
    the note on writing).

    The arguments, hashable, must tell apart whatever differs: codes go in as plain tuples
    (``_key``), since ``Code`` equality ignores the meaning.
    """

    def encoded(*args: P.args, **kwargs: P.kwargs) -> bytes:
        return _encoded(*build(*args, **kwargs))

    return cast(Callable[P, bytes], wraps(build)(lru_cache(maxsize=256)(encoded)))


def _elements(item: pydicom.Dataset) -> Raw:
    """``item``'s elements encoded as in the document and read back raw."""
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = False, True
    write_dataset(buffer, item, ENCODINGS)
    elements = tuple(data_element_generator(BytesIO(buffer.getvalue()), False, True))
    raw = tuple(element for element in elements if isinstance(element, RawDataElement))
    if len(raw) != len(elements):  # pragma: no cover - only undefined lengths read back parsed
        raise AssertionError("an encoded element did not read back raw")
    return raw


def _key(code: Code) -> CodeKey:
    """A code as a cache key: ``Code`` itself compares equal to codes of other meanings."""
    return (code.value, code.scheme_designator, code.meaning, code.scheme_version)


def _concept(code: CodeKey) -> pydicom.Dataset:
    """A coded concept as highdicom's ``CodedConcept`` writes it."""
    value, scheme, meaning, version = code
    concept = _item()
    if len(value) > MAX_SH:
        if value.startswith("urn") or "://" in value:
            concept.URNCodeValue = value
        else:
            concept.LongCodeValue = value
    else:
        concept.CodeValue = value
    concept.CodeMeaning = meaning
    concept.CodingSchemeDesignator = scheme
    if version is not None:
        concept.CodingSchemeVersion = version
    return concept


@lru_cache(maxsize=1024)
def _coded_sequence(keyword: str, code: CodeKey) -> RawDataElement:
    return _sequence(_tag(keyword), _concept(code))


def _code(keyword: str, code: Code) -> RawDataElement:
    """The sequence element ``keyword`` holding one coded concept, encoded once."""
    return _coded_sequence(keyword, _key(code))


@lru_cache(maxsize=1024)
def _head(value_type: str, name: CodeKey, relationship: str | None) -> Raw:
    item = _item(_coded_sequence("ConceptNameCodeSequence", name))
    item.ValueType = value_type
    if relationship is not None:
        item.RelationshipType = relationship
    if value_type == "CONTAINER":
        item.ContinuityOfContent = "CONTINUOUS"  # highdicom's containers all are
    return _elements(item)


def _content_item(value_type: str, name: Code, relationship: str | None) -> pydicom.Dataset:
    """A content item with its value type, concept name and relationship (encoded once)."""
    return _item(*_head(value_type, _key(name), relationship))


@lru_cache(maxsize=8)
def _template(identifier: str) -> RawDataElement:
    """A container's Content Template Sequence (TID ``identifier``)."""
    reference = _item()
    reference.MappingResource = "DCMR"
    reference.TemplateIdentifier = identifier
    return _sequence(_tag("ContentTemplateSequence"), reference)


def _text(name: Code, value: str, relationship: str) -> pydicom.Dataset:
    item = _content_item("TEXT", name, relationship)
    item.TextValue = str(value)
    return item


def _coded(name: Code, value: Code, relationship: str) -> pydicom.Dataset:
    item = _content_item("CODE", name, relationship)
    element = _code("ConceptCodeSequence", value)
    item[element.tag] = element
    return item


def _uid_ref(name: Code, value: str, relationship: str) -> pydicom.Dataset:
    item = _content_item("UIDREF", name, relationship)
    item.UID = value
    return item


def _num(name: Code, value: float, unit: Code, relationship: str = CONTAINS) -> pydicom.Dataset:
    """TID 300 as highdicom writes it: the value as DS and, being a float, as FD too."""
    measured = _item(_code("MeasurementUnitsCodeSequence", unit))
    measured.NumericValue = DS(value, auto_format=True)
    measured.FloatingPointValue = value
    item = _content_item("NUM", name, relationship)
    item.MeasuredValueSequence = [measured]
    return item


def _reference(
    value_type: str, name: Code, source: pydicom.Dataset, relationship: str
) -> pydicom.Dataset:
    item = _content_item(value_type, name, relationship)
    reference = _item()
    reference.ReferencedSOPClassUID = str(source.SOPClassUID)
    reference.ReferencedSOPInstanceUID = str(source.SOPInstanceUID)
    item.ReferencedSOPSequence = [reference]
    return item


@_encoded_once
def _language(language: CodeKey) -> list[pydicom.Dataset]:
    """TID 1204."""
    return [_coded(LANGUAGE, Code(*language), HAS_CONCEPT_MOD)]


@_encoded_once
def _observer(algorithm: Algorithm) -> list[pydicom.Dataset]:
    """TID 1002 and 1004: the algorithm as the device observer."""
    return [
        _coded(OBSERVER_TYPE, DEVICE, HAS_OBS_CONTEXT),
        _uid_ref(DEVICE_OBSERVER_UID, algorithm.device_uid, HAS_OBS_CONTEXT),
        _text(DEVICE_OBSERVER_NAME, algorithm.name, HAS_OBS_CONTEXT),
        _text(DEVICE_OBSERVER_MANUFACTURER, MANUFACTURER, HAS_OBS_CONTEXT),
        _text(DEVICE_OBSERVER_MODEL, f"{algorithm.name} {algorithm.version}", HAS_OBS_CONTEXT),
    ]


@_encoded_once
def _procedure(waveforms_only: bool) -> list[pydicom.Dataset]:
    procedure = ECG_PROCEDURE if waveforms_only else IMAGING_PROCEDURE
    return [_coded(PROCEDURE_REPORTED, procedure, HAS_CONCEPT_MOD)]


@_encoded_once
def _statement() -> list[pydicom.Dataset]:
    """TID 1500 row 12: the reference-model statement, English and Korean."""
    korean = _text(COMMENT, DISCLAIMER_KO, CONTAINS)
    korean[CONTENT_SEQUENCE] = _sequence(CONTENT_SEQUENCE, _language(_key(KOREAN)))
    container = _content_item("CONTAINER", QUALITATIVE, CONTAINS)
    english = _text(COMMENT, DISCLAIMER_EN, CONTAINS)
    container[CONTENT_SEQUENCE] = _sequence(CONTENT_SEQUENCE, english, korean)
    return [container]


@_encoded_once
def _algorithm_identification(algorithm: Algorithm) -> list[pydicom.Dataset]:
    """TID 4019."""
    return [
        _text(ALGORITHM_NAME, algorithm.name, HAS_CONCEPT_MOD),
        _text(ALGORITHM_VERSION, algorithm.version, HAS_CONCEPT_MOD),
        _text(ALGORITHM_MANUFACTURER, MANUFACTURER, HAS_CONCEPT_MOD),
    ]


@_encoded_once
def _finding_type(concept: CodeKey) -> list[pydicom.Dataset]:
    return [_coded(FINDING, Code(*concept), CONTAINS)]


@_encoded_once
def _evaluation(concept: CodeKey, positive: bool) -> list[pydicom.Dataset]:
    """The qualitative evaluation: the finding present or absent."""
    return [_coded(Code(*concept), PRESENT if positive else ABSENT, CONTAINS)]


def _measurements(finding: SrFinding) -> list[pydicom.Dataset]:
    out: list[pydicom.Dataset] = []
    threshold_unit = NO_UNITS  # the score's; a regression's threshold is in its value's unit
    if finding.score is not None:
        out.append(_num(PROBABILITY, float(finding.score), NO_UNITS))
    if finding.value is not None and finding.unit is not None:
        unit = UNITS[finding.unit]
        out.append(_num(finding.concept, float(finding.value), unit))
        if finding.score is None:
            threshold_unit = unit
    out.append(_num(THRESHOLD, float(finding.threshold), threshold_unit))
    for start, end in finding.segments_s:
        out.append(_num(SEGMENT_START, float(start), SECOND))
        out.append(_num(SEGMENT_END, float(end), SECOND))
    return out


def _region(box: tuple[float, float, float, float], source: pydicom.Dataset) -> pydicom.Dataset:
    """highdicom's ``ImageRegion``: a closed rectangle on the source, in its pixels."""
    x0, y0, x1, y1 = (float(v) for v in box)
    region = _content_item("SCOORD", IMAGE_REGION, CONTAINS)
    region.GraphicType = "POLYLINE"
    region.GraphicData = [x0, y0, x1, y0, x1, y1, x0, y1, x0, y0]
    if str(source.SOPClassUID) == VLWholeSlideMicroscopyImageStorage:
        region.PixelOriginInterpretation = "VOLUME"  # highdicom's default for slides
    image = _reference("IMAGE", REGION_SOURCE, source, SELECTED_FROM)
    region[CONTENT_SEQUENCE] = _sequence(CONTENT_SEQUENCE, image)
    return region


def _group(finding: SrFinding, source: pydicom.Dataset, algorithm: Algorithm) -> pydicom.Dataset:
    """TID 1410 (a box on an image) or TID 1501 (whole image, waveform)."""
    concept = _key(finding.concept)
    if finding.box is not None:
        location = _region(finding.box, source)
    elif _is_image(source):
        location = _reference("IMAGE", SOURCE, source, CONTAINS)
    else:  # a waveform: see the module docstring
        location = _reference("COMPOSITE", SOURCE, source, CONTAINS)
    content = _sequence(
        CONTENT_SEQUENCE,
        _text(TRACKING_IDENTIFIER, finding.tracking_id, HAS_OBS_CONTEXT),
        _uid_ref(TRACKING_UID, finding.tracking_uid, HAS_OBS_CONTEXT),
        _finding_type(concept),
        _algorithm_identification(algorithm),
        *_measurements(finding),
        _evaluation(concept, finding.positive),
        location,
    )
    group = _content_item("CONTAINER", MEASUREMENT_GROUP, CONTAINS)
    template = _template("1410" if finding.box is not None else "1501")
    group[template.tag], group[content.tag] = template, content
    return group


def _evidence(sources: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """The Current Requested Procedure Evidence Sequence: every source (one study), by series,
    in order of appearance, duplicates once, as highdicom's ``collect_evidence``."""
    by_series: dict[str, list[pydicom.Dataset]] = {}
    seen: set[str] = set()
    for source in sources:
        if source.SOPInstanceUID in seen:
            continue
        seen.add(source.SOPInstanceUID)
        reference = _item()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
        by_series.setdefault(source.SeriesInstanceUID, []).append(reference)
    series = []
    for series_uid, references in by_series.items():
        item = _item()
        item.SeriesInstanceUID = series_uid
        item.ReferencedSOPSequence = references
        series.append(item)
    study = _item()
    study.StudyInstanceUID = sources[0].StudyInstanceUID
    study.ReferencedSeriesSequence = series
    return [study]


@lru_cache(maxsize=64)
def _patient_and_study_tags(sop_class_uid: str) -> tuple[BaseTag, ...]:
    """The root attributes of the IOD's Patient and Study modules, highdicom's
    ``copy_patient_and_study_information`` (looked up once per SOP class: the look-up walks
    highdicom's module tables)."""
    modules = get_iod_module_map()[_iod(sop_class_uid, "a source")]
    attributes = get_module_attribute_map()
    keywords = [
        str(attribute["keyword"])
        for entity in ("Patient", "Study")
        for module in modules
        if module["ie"] == entity
        for attribute in attributes[module["key"]]
        if not attribute["path"]
    ]
    tags = [tag_for_keyword(keyword) for keyword in keywords]
    if None in tags:  # highdicom fails on them too
        raise ValueError(f"pydicom does not know some attributes of {sop_class_uid}'s IOD")
    return tuple(BaseTag(tag) for tag in tags if tag is not None)


def _acquisition_equipment(source: pydicom.Dataset) -> pydicom.Dataset | None:
    """highdicom's ``ContributingEquipment.for_image_acquisition`` of the first source, or
    nothing where highdicom gives up silently (no image, no manufacturer, a value it refuses)."""
    if not _is_image_iod(str(source.SOPClassUID)):
        return None
    manufacturer = source.get("Manufacturer")
    if manufacturer is None or manufacturer == "":
        return None
    item = _item(_code("PurposeOfReferenceCodeSequence", ACQUISITION_EQUIPMENT))
    try:
        item.Manufacturer = _equipment_value("Manufacturer", manufacturer)
        for keyword in EQUIPMENT_STRINGS:
            value = source.get(keyword)
            if value is not None:
                setattr(item, keyword, _equipment_value(keyword, value))
        acquired = source.get("AcquisitionDateTime")
        if acquired is None:
            day, clock = source.get("AcquisitionDate"), source.get("AcquisitionTime")
            if isinstance(day, date) and isinstance(clock, time):  # only with datetime_conversion
                acquired = datetime.combine(day, clock)
        if acquired is not None:
            item.ContributionDateTime = DT(acquired)
    except (TypeError, ValueError):  # highdicom drops the entry on any error
        return None
    item.ContributionDescription = "Acquisition equipment of the source image(s)"
    return item


@lru_cache(maxsize=64)
def _is_image_iod(sop_class_uid: str) -> bool:
    """Whether the IOD has pixel data (highdicom's test for an image; it walks the IOD's tables,
    milliseconds, so once per SOP class). Unknown classes are not images."""
    try:
        return bool(does_iod_have_pixel_data(sop_class_uid))
    except KeyError:
        return False


def _equipment_value(keyword: str, value: Any) -> Any:
    """A source's equipment attribute, checked as highdicom's ``ContributingEquipment`` does."""
    if keyword == "SoftwareVersions" and not isinstance(value, str):
        versions = list(value)
        if not versions:
            raise ValueError("no software version")
        for version in versions:
            _check_string(version, MAX_LO, keyword)
        return versions
    _check_string(value, EQUIPMENT_STRINGS.get(keyword, MAX_LO), keyword)
    return value


@lru_cache(maxsize=1)
def _platform_version() -> str | None:
    try:
        return importlib.metadata.version(PLATFORM)
    except importlib.metadata.PackageNotFoundError:  # running from a tree nobody installed
        return None


def _platform_equipment(moment: datetime, description: str = CREATED) -> pydicom.Dataset:
    """The platform as the processing equipment, where highdicom names itself."""
    item = _item(_code("PurposeOfReferenceCodeSequence", PROCESSING_EQUIPMENT))
    item.Manufacturer = PLATFORM_MANUFACTURER
    item.ManufacturerModelName = PLATFORM
    version = _platform_version()
    if version is not None:
        item.SoftwareVersions = version
    item.ContributionDateTime = DT(moment)
    item.ContributionDescription = description
    return item


def _file_meta(sop_instance_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(COMPREHENSIVE_3D_SR)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID  # pydicom writes the file
    meta.ImplementationVersionName = f"PYDICOM {'.'.join(pydicom.__version_info__)}"
    if sop_instance_uid:
        padded = len(sop_instance_uid) + len(sop_instance_uid) % 2
        meta.FileMetaInformationGroupLength = _file_meta_length() + padded
    return meta


@lru_cache(maxsize=1)
def _file_meta_length() -> int:
    """The encoded length of the file meta group but the group length and the instance UID's
    value, which is all that varies (highdicom encodes the group for every document: 1 ms)."""
    buffer = DicomBytesIO()
    write_file_meta_info(buffer, _file_meta(""), enforce_standard=False)
    return len(buffer.getvalue())


@lru_cache(maxsize=64)
def _constant_header(algorithm: Algorithm) -> Raw:
    """The header elements every report of the algorithm shares, and the root content item's
    (TID 1500: its elements are the document's), encoded once."""
    header = _item(*_head("CONTAINER", _key(REPORT_TITLE), None), _template("1500"))
    header.Modality = "SR"
    header.SeriesDescription = _series_description(algorithm.service)
    header.Manufacturer = MANUFACTURER
    header.ManufacturerModelName = algorithm.name
    header.SoftwareVersions = algorithm.version
    header.SOPClassUID = COMPREHENSIVE_3D_SR
    scheme = _item()
    scheme.CodingSchemeDesignator = SCHEME
    scheme.CodingSchemeName = "Gwangju AI public medical service platform codes"
    scheme.CodingSchemeResponsibleOrganization = "Gwangju AI public medical service"
    header.CodingSchemeIdentificationSequence = [scheme]
    header.CompletionFlag = "COMPLETE"
    header.VerificationFlag = "UNVERIFIED"
    header.PreliminaryFlag = "PRELIMINARY"
    header.PerformedProcedureCodeSequence = []
    header.ReferencedPerformedProcedureStepSequence = []
    return _elements(header)


def _header(document: pydicom.Dataset, first: pydicom.Dataset, moment: datetime) -> None:
    """highdicom's ``SOPClass`` and ``_SR`` header attributes that vary, but the equipment."""
    document.PatientID = first.PatientID
    document.PatientName = first.PatientName
    document.PatientBirthDate = DA(first.PatientBirthDate)
    document.PatientSex = first.PatientSex
    document.StudyInstanceUID = str(first.StudyInstanceUID)
    document.AccessionNumber = first.AccessionNumber
    document.StudyID = first.StudyID
    document.StudyDate = None if first.StudyDate is None else DA(first.StudyDate)
    document.StudyTime = None if first.StudyTime is None else TM(first.StudyTime)
    document.ReferringPhysicianName = first.get("ReferringPhysicianName")
    day, clock = DA(moment.date()), TM(moment.time().replace(tzinfo=None))
    document.InstanceCreationDate, document.InstanceCreationTime = day, clock
    document.ContentDate, document.ContentTime = day, clock
    document.SeriesDate, document.SeriesTime = day, clock
    if moment.utcoffset() is not None:  # dates and times above are local to this offset
        document.TimezoneOffsetFromUTC = moment.strftime("%z")
    for tag in _patient_and_study_tags(str(first.SOPClassUID)):
        if tag in first:
            document.add(first[tag])  # the source's own element, as highdicom copies it
    acquisition = _acquisition_equipment(first)
    equipment = [] if acquisition is None else [acquisition]
    document.ContributingEquipmentSequence = [*equipment, _platform_equipment(moment)]


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
    evidence, and the SR takes its patient and study from the first. Raises ``ValueError`` when
    there is no finding (a scored study always has one; failures get no SR), when a finding
    references an instance that is not a source, when a finding is malformed, or when the first
    source lacks what the header copies. Save it with ``save_as(..., enforce_file_format=True)``.
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
    _check_report(algorithm, series_number, instance_number)
    moment = when or datetime.now()

    document = pydicom.Dataset()
    document.SpecificCharacterSet = CHARACTER_SET
    document.set_original_encoding(False, True, ENCODINGS)  # see the note on writing
    document.file_meta = _file_meta(sop_instance_uid)
    document.preamble = b"\x00" * 128
    for element in _constant_header(algorithm):
        document[element.tag] = element
    document.SeriesInstanceUID = series_instance_uid
    document.SeriesNumber = series_number
    document.SOPInstanceUID = sop_instance_uid
    document.InstanceNumber = instance_number
    _header(document, sources[0], moment)
    document.CurrentRequestedProcedureEvidenceSequence = _evidence(sources)

    measurements = _content_item("CONTAINER", IMAGING_MEASUREMENTS, CONTAINS)
    groups = [_group(f, by_uid[f.sop_instance_uid], algorithm) for f in findings]
    measurements[CONTENT_SEQUENCE] = _sequence(CONTENT_SEQUENCE, *groups)
    document[CONTENT_SEQUENCE] = _sequence(
        CONTENT_SEQUENCE,
        _language(_key(ENGLISH)),
        _observer(algorithm),
        _procedure(all(_is_waveform(ds) for ds in sources)),
        measurements,
        _statement(),
    )
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


Group = (
    hd.sr.MeasurementsAndQualitativeEvaluations
    | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
)


def _parsed(ds: pydicom.Dataset) -> tuple[hd.sr.MeasurementReport, list[Group]]:
    """The TID 1500 report of an SR, parsed by highdicom, and its measurement groups in
    document order."""
    if str(ds.get("SOPClassUID", "")) != COMPREHENSIVE_3D_SR:
        raise ValueError("not a Comprehensive 3D SR document")
    # highdicom's copy leaves the content items of ``ds`` parsed into its own classes: a copy
    document = hd.sr.Comprehensive3DSR.from_dataset(deepcopy(ds), copy=False)
    report = document.content
    if not isinstance(report, hd.sr.MeasurementReport):
        raise ValueError("the SR is not a TID 1500 measurement report")
    containers = hd.sr.utils.find_content_items(
        report[0], name=IMAGING_MEASUREMENTS, value_type=hd.sr.ValueTypeValues.CONTAINER
    )
    groups: list[Group] = []
    for item in containers[0].ContentSequence if containers else []:
        if item.template_id == "1410":
            groups.append(
                hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations.from_sequence([item])
            )
        else:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations.from_sequence([item]))
    return report, groups


def read_findings(ds: pydicom.Dataset) -> list[dict[str, Any]]:
    """The findings of an SR written by ``finding_report``, parsed back with highdicom.

    One dict per measurement group, in document order, with the fields of ``SrFinding`` (unit
    back in the platform's words, box in source pixels) and ``algorithm_name``,
    ``algorithm_version`` (the group's TID 4019) and ``device_uid`` (the device observer).
    """
    report, groups = _parsed(ds)
    devices = report.get_observer_contexts(observer_type=DEVICE)
    device_uid: str | None = None
    if devices:
        attributes = devices[0].observer_identifying_attributes
        if isinstance(attributes, hd.sr.DeviceObserverIdentifyingAttributes):
            device_uid = str(attributes.uid)
    units = {code.value: word for word, code in UNITS.items()}
    out: list[dict[str, Any]] = []
    for group in groups:
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


# -- Verification ----------------------------------------------------------------------------

# The assessment of a finding, in the platform's scheme (see the module docstring: DICOM has no
# codes for accepting, rejecting or amending an AI result).
DECISIONS: Final = {
    "accepted": Code("accepted", SCHEME, "AI finding accepted by the clinician"),
    "rejected": Code("rejected", SCHEME, "AI finding rejected by the clinician"),
    "amended": Code("amended", SCHEME, "AI finding amended by the clinician"),
}
ASSESSMENT: Final = Code("assessment", SCHEME, "Clinician's assessment of the AI finding")
ASSESSMENT_REASON: Final = Code("reason", SCHEME, "Reason for the clinician's assessment")
# TID 1002 and 1003: the clinician as the person observer of the assessment.
PERSON: Final = Code("121006", "DCM", "Person")
PERSON_OBSERVER_NAME: Final = Code("121008", "DCM", "Person Observer Name")
PERSON_OBSERVER_LOGIN: Final = Code("128774", "DCM", "Person Observer's Login Name")
PERSON_OBSERVER_ORGANIZATION: Final = Code("121009", "DCM", "Person Observer's Organization Name")
PERSON_OBSERVER_ROLE: Final = Code("121011", "DCM", "Person Observer's Role in this Procedure")
VERIFYING: Final = Code("121098", "DCM", "Verifying")  # CID 7453 Performing Roles
HAS_PROPERTIES: Final = "HAS PROPERTIES"

ACCOUNT_SCHEME: Final = "99GJHACCT"  # the platform's accounts, as coded observer identifiers
MAX_NOTE: Final = 1024  # characters: ST's limit, though a TEXT item's value is a UT
MAX_PN_GROUP: Final = 64
REASON_CODE: Final = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
NOTE_CONTROLS: Final = frozenset("\r\n\f")  # the control characters a UT may hold but ESC
REISSUED: Final = (
    "Software that re-issued this instance with a clinician's verification (lakehouse.sr)"
)
VERIFIED_SERIES: Final = "Verified AI findings (reference model, not for clinical use)"


@dataclass(frozen=True)
class Verdict:
    """A clinician's assessment of one finding of the AI's report."""

    tracking_uid: str  # the finding's tracking UID (as in the original SR)
    decision: str  # "accepted" | "rejected" | "amended"
    reason_code: str  # short platform code, e.g. "confirmed_on_reading", "artefact", "location"
    note: str | None = None  # free text, stored as it is (a TEXT item), at most MAX_NOTE
    amended_value: float | None = None  # amendments of regressions: in the finding's unit


@dataclass(frozen=True)
class Verifier:
    """The clinician who verifies the report."""

    name: str  # person name (PN: "family^given", or one component; Korean is fine)
    organization: str  # their institution's name (LO, at most 64 characters)
    account: str  # their platform account id (the observer's coded identifier, login name)


def _unsafe(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether ``value`` holds a control character (but ``allowed``) or cannot be UTF-8."""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return True
    return False


def _check_verifier(verifier: Verifier) -> Verifier:
    """The verifier as written: names without their insignificant surrounding spaces."""
    name, organization = verifier.name.strip(), verifier.organization.strip()
    groups = name.split("=")
    if (
        not name.replace("=", "").replace("^", "").strip()
        or "\\" in name
        or _unsafe(name)
        or len(groups) > 3
        or any(len(g) > MAX_PN_GROUP or g.count("^") > 4 for g in groups)
    ):
        raise ValueError(
            f"the verifier's name {verifier.name!r} is not a DICOM person name (at most three "
            f"'='-separated groups of at most five '^'-separated components and {MAX_PN_GROUP} "
            "characters, no backslash or control character)"
        )
    if not organization or _unsafe(organization):
        raise ValueError(f"the verifier's organization {verifier.organization!r} is empty")
    _check_string(organization, MAX_LO, "the verifier's organization (Verifying Organization)")
    account = verifier.account
    if not account or _unsafe(account) or any(c.isspace() for c in account):
        raise ValueError(f"the verifier's account {account!r} is empty or has spaces")
    _check_string(account, MAX_LO, "the verifier's account")
    return Verifier(name, organization, account)


def _check_verdict(verdict: Verdict, finding: dict[str, Any] | None) -> Verdict:
    """The verdict as written: its note without trailing spaces (DICOM lets readers drop them),
    an empty note as none."""
    label = f"the verdict on {verdict.tracking_uid!r}"
    if finding is None:
        raise ValueError(f"{label}: the report has no finding with this tracking UID")
    if verdict.decision not in DECISIONS:
        raise ValueError(f"{label}: decision {verdict.decision!r} is not one of {list(DECISIONS)}")
    if not isinstance(verdict.reason_code, str) or not REASON_CODE.fullmatch(verdict.reason_code):
        raise ValueError(
            f"{label}: reason code {verdict.reason_code!r} is not a platform code "
            "(a-z, 0-9 and _, at most 64 characters)"
        )
    note = verdict.note
    if note is not None:
        note = note.rstrip(" ") or None
    if note is not None and (len(note) > MAX_NOTE or _unsafe(note, NOTE_CONTROLS)):
        raise ValueError(
            f"{label}: a note has at most {MAX_NOTE} characters and no control character "
            "but CR, LF and FF"
        )
    amended = verdict.amended_value
    if amended is not None:
        if verdict.decision != "amended":
            raise ValueError(f"{label}: only an amendment carries an amended value")
        if finding["unit"] is None:
            raise ValueError(f"{label}: the finding has no measured value to amend")
        amended = _finite(amended, f"{label}: amended value")
    return replace(verdict, note=note, amended_value=amended)


def _check_original(original: pydicom.Dataset) -> list[dict[str, Any]]:
    """The findings of an AI report ``finding_report`` wrote, which a verification re-issues."""
    if str(original.get("SOPClassUID", "")) != COMPREHENSIVE_3D_SR:
        raise ValueError("the original is not a Comprehensive 3D SR document")
    if original.get("SpecificCharacterSet") != CHARACTER_SET:
        raise ValueError(f"the original is not in {CHARACTER_SET}, as finding_report writes")
    if original.get("VerificationFlag") != "UNVERIFIED":
        raise ValueError("the original is verified already: re-issue the AI's own report")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if keyword not in original:
            raise ValueError(f"the original lacks {keyword}")
    if not original.get("ContentDate") or not original.get("ContentTime"):
        raise ValueError("the original lacks its content date and time")
    findings = read_findings(original)
    if not findings:
        raise ValueError("the original has no measurement group")
    return findings


def _local_time(when: datetime, original: pydicom.Dataset) -> tuple[datetime, str | None]:
    """``when`` in the original's time zone (its dates and times, copied, stay in it), and the
    document's offset from UTC: the original's, or else an aware ``when``'s."""
    offset = original.get("TimezoneOffsetFromUTC")
    if offset:
        match = re.fullmatch(r"([+-])(\d{2})(\d{2})", str(offset))
        if match is None:
            raise ValueError(f"the original's offset from UTC {offset!r} is not +HHMM or -HHMM")
        sign = 1 if match[1] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))
        return (when if when.utcoffset() is None else when.astimezone(zone)), str(offset)
    if when.utcoffset() is not None:
        return when, when.strftime("%z")
    return when, None


def _is(concept: pydicom.Dataset, code: Code) -> bool:
    value = concept.get("CodeValue") or concept.get("LongCodeValue")
    return bool(value == code.value and concept.CodingSchemeDesignator == code.scheme_designator)


def _measurement_groups(document: pydicom.Dataset) -> list[pydicom.Dataset]:
    for item in document.ContentSequence:
        if item.ValueType == "CONTAINER" and _is(
            item.ConceptNameCodeSequence[0], IMAGING_MEASUREMENTS
        ):
            return list(item.ContentSequence)
    return []


def _tracking_uid(group: pydicom.Dataset) -> str | None:
    for item in group.ContentSequence:
        if item.ValueType == "UIDREF" and _is(item.ConceptNameCodeSequence[0], TRACKING_UID):
            return str(item.UID)
    return None


def _pname(name: Code, value: str, relationship: str) -> pydicom.Dataset:
    item = _content_item("PNAME", name, relationship)
    item.PersonName = value
    return item


def _assessment(
    verdict: Verdict, verifier: Verifier, finding: dict[str, Any], moment: datetime
) -> pydicom.Dataset:
    """The clinician's assessment of a finding: the decision, observed by the clinician (TID
    1002/1003 as highdicom's ``ObserverContext`` writes a person), at the verification time,
    with the reason, the note and the amended value as its properties."""
    reason = Code(verdict.reason_code, SCHEME, verdict.reason_code.replace("_", " ").capitalize())
    children = [
        _coded(OBSERVER_TYPE, PERSON, HAS_OBS_CONTEXT),
        _pname(PERSON_OBSERVER_NAME, verifier.name, HAS_OBS_CONTEXT),
        _text(PERSON_OBSERVER_LOGIN, verifier.account, HAS_OBS_CONTEXT),
        _text(PERSON_OBSERVER_ORGANIZATION, verifier.organization, HAS_OBS_CONTEXT),
        _coded(PERSON_OBSERVER_ROLE, VERIFYING, HAS_OBS_CONTEXT),
        _coded(ASSESSMENT_REASON, reason, HAS_PROPERTIES),
    ]
    if verdict.note is not None:
        children.append(_text(COMMENT, verdict.note, HAS_PROPERTIES))
    if verdict.amended_value is not None:
        concept = Code(finding["finding_code"], SCHEME, finding["finding_meaning"])
        unit = UNITS[finding["unit"]]
        children.append(_num(concept, verdict.amended_value, unit, HAS_PROPERTIES))
    item = _coded(ASSESSMENT, DECISIONS[verdict.decision], CONTAINS)
    item.ObservationDateTime = DT(moment)
    item[CONTENT_SEQUENCE] = _sequence(CONTENT_SEQUENCE, *children)
    return item


def _verifying_observer(verifier: Verifier, moment: datetime) -> pydicom.Dataset:
    """The Verifying Observer Sequence's item, the account as the observer's coded identifier
    (in the platform's account scheme, meaning the person's name)."""
    identifier = _item()
    if len(verifier.account) > MAX_SH:
        identifier.LongCodeValue = verifier.account
    else:
        identifier.CodeValue = verifier.account
    identifier.CodingSchemeDesignator = ACCOUNT_SCHEME
    identifier.CodeMeaning = next(g for g in verifier.name.split("=") if g.strip())
    item = _item()
    item.VerifyingObserverName = verifier.name
    item.VerifyingOrganization = verifier.organization
    item.VerificationDateTime = DT(moment)
    item.VerifyingObserverIdentificationCodeSequence = [identifier]
    return item


def _predecessor(original: pydicom.Dataset) -> pydicom.Dataset:
    """The Predecessor Documents Sequence's item: the original, by study, series and instance
    (highdicom's ``previous_versions``)."""
    reference = _item()
    reference.ReferencedSOPClassUID = str(original.SOPClassUID)
    reference.ReferencedSOPInstanceUID = str(original.SOPInstanceUID)
    series = _item()
    series.SeriesInstanceUID = str(original.SeriesInstanceUID)
    series.ReferencedSOPSequence = [reference]
    study = _item()
    study.StudyInstanceUID = str(original.StudyInstanceUID)
    study.ReferencedSeriesSequence = [series]
    return study


def _account_scheme() -> pydicom.Dataset:
    scheme = _item()
    scheme.CodingSchemeDesignator = ACCOUNT_SCHEME
    scheme.CodingSchemeName = "Gwangju AI public medical service platform accounts"
    scheme.CodingSchemeResponsibleOrganization = PLATFORM_MANUFACTURER
    return scheme


def _verified_description(original: pydicom.Dataset) -> str:
    text = f"Verified {original.get('SeriesDescription', '')}"
    return text if len(text) <= MAX_LO and "not for clinical use" in text else VERIFIED_SERIES


def _verification_header(
    document: pydicom.Dataset,
    original: pydicom.Dataset,
    verifier: Verifier,
    moment: datetime,
    offset: str | None,
) -> None:
    """The header attributes a verification changes, but the UIDs and the instance number."""
    document.SeriesDescription = _verified_description(original)
    day, clock = DA(moment.date()), TM(moment.time().replace(tzinfo=None))
    document.InstanceCreationDate, document.InstanceCreationTime = day, clock
    document.ContentDate, document.ContentTime = day, clock
    document.SeriesDate, document.SeriesTime = day, clock
    if offset is not None:
        document.TimezoneOffsetFromUTC = offset
    document.CompletionFlag = "COMPLETE"
    document.VerificationFlag = "VERIFIED"
    document.PreliminaryFlag = "FINAL"
    document.VerifyingObserverSequence = [_verifying_observer(verifier, moment)]
    document.PredecessorDocumentsSequence = [_predecessor(original)]
    schemes = list(document.get("CodingSchemeIdentificationSequence", []))
    if all(s.get("CodingSchemeDesignator") != ACCOUNT_SCHEME for s in schemes):
        schemes.append(_account_scheme())
    document.CodingSchemeIdentificationSequence = schemes
    equipment = list(document.get("ContributingEquipmentSequence", []))
    document.ContributingEquipmentSequence = [*equipment, _platform_equipment(moment, REISSUED)]


def verified_report(
    original: pydicom.Dataset,
    verdicts: Sequence[Verdict],
    verifier: Verifier,
    series_instance_uid: str,
    sop_instance_uid: str,
    instance_number: int,
    when: datetime,
) -> pydicom.Dataset:
    """The AI's report (as ``finding_report`` wrote it) re-issued with a clinician's verdicts on
    its findings, verified by the clinician; ready to save.

    A new instance in a new series (the UIDs the caller gives; the series number is the
    original's) of the same patient and study, with the original's header, evidence and content
    tree as they are, and:

    * the verification: Verification Flag VERIFIED, Completion Flag COMPLETE, Preliminary Flag
      FINAL, one Verifying Observer (name, organization, ``when``, the account as the coded
      identifier in the platform's account scheme ``99GJHACCT``, declared in the Coding Scheme
      Identification Sequence);
    * the original in the Predecessor Documents Sequence (by study, series, instance and class);
    * in each measurement group with a verdict, one more item at its end: the assessment (a
      CODE, concept 99GJH ``assessment``, value 99GJH ``accepted``, ``rejected`` or
      ``amended``), observed by the clinician at ``when``: its own observer context (TID 1002
      person observer: name, login name (the account), organization, role Verifying) and
      Observation DateTime; its properties are the reason (99GJH ``reason``, the platform's
      reason code in 99GJH), the note (DCM Comment, TEXT) and the amended value (a NUM named as
      the finding, in its unit), those two only when given;
    * the Observation DateTime of the root: the original's content date and time, which every
      item of the AI's inherits (the document's content date and time become ``when``);
    * content date and time, instance creation, series date and time: ``when``, in the
      original's time zone when it has one; the series description says verified (and still
      reference model, not for clinical use); the platform is appended to the contributing
      equipment as the software that re-issued the instance.

    Nothing of the AI's own content changes: ``read_findings`` reads the same findings from
    both, and ``read_verdicts`` reads the verdicts back. Raises ``ValueError`` when the original
    is not an unverified report of ``finding_report`` (a verified one is not re-verified: the
    AI's own report is), when there is no verdict, two on one finding, or one naming a tracking
    UID the report lacks, with a decision other than the three, a reason code that is not a
    platform code, a note over ``MAX_NOTE`` characters or with a control character but CR, LF
    and FF, or an amended value on anything but an amendment of a measured finding; when the
    verifier's name is no person name, their organization is empty or over 64 characters, or
    their account is empty, over 64 characters or has spaces; or when a UID is invalid or the
    original's, or the instance number below 1.
    """
    findings = _check_original(original)
    by_uid = {str(f["tracking_uid"]): f for f in findings}
    if not verdicts:
        raise ValueError("a verified report needs at least one verdict")
    checked: dict[str, Verdict] = {}
    for verdict in verdicts:
        if verdict.tracking_uid in checked:
            raise ValueError(f"two verdicts on {verdict.tracking_uid!r}")
        checked[verdict.tracking_uid] = _check_verdict(verdict, by_uid.get(verdict.tracking_uid))
    person = _check_verifier(verifier)
    _check_uid(series_instance_uid, "series instance UID")
    _check_uid(sop_instance_uid, "SOP instance UID")
    if series_instance_uid == str(original.SeriesInstanceUID):
        raise ValueError("a re-issued report is a new series: its UID must not be the original's")
    if sop_instance_uid == str(original.SOPInstanceUID):
        raise ValueError("a re-issued report is a new instance: its UID must not be the original's")
    if instance_number < 1:
        raise ValueError("the instance number must be positive")
    moment, offset = _local_time(when, original)

    document = deepcopy(original)
    document.set_original_encoding(False, True, ENCODINGS)
    document.file_meta = _file_meta(sop_instance_uid)
    document.preamble = b"\x00" * 128
    if "ObservationDateTime" not in document:  # the AI's items keep their time
        document.ObservationDateTime = DT(f"{original.ContentDate}{original.ContentTime}")
    for group in _measurement_groups(document):
        uid = _tracking_uid(group)
        if uid is not None and uid in checked:
            assessment = _assessment(checked[uid], person, by_uid[uid], moment)
            content = _sequence(CONTENT_SEQUENCE, *group.ContentSequence, assessment)
            group[CONTENT_SEQUENCE] = content

    document.SeriesInstanceUID = series_instance_uid
    document.SOPInstanceUID = sop_instance_uid
    document.InstanceNumber = instance_number
    _verification_header(document, original, person, moment, offset)
    return document


def read_verdicts(ds: pydicom.Dataset) -> list[Verdict]:
    """The clinician's verdicts in a report ``verified_report`` wrote, one per assessed finding
    (each with its tracking UID) in document order, parsed back with highdicom: notes and
    amended values as written; none in an unverified report. A group assessed more than once
    gives its last assessment."""
    _, groups = _parsed(ds)
    decisions = {(code.value, code.scheme_designator): word for word, code in DECISIONS.items()}
    out: dict[str, Verdict] = {}
    for group in groups:
        uid = None if group.tracking_uid is None else str(group.tracking_uid)
        assessments = hd.sr.utils.find_content_items(
            group[0], name=ASSESSMENT, value_type=hd.sr.ValueTypeValues.CODE
        )
        for assessment in assessments:
            if uid is None:
                raise ValueError("an assessed measurement group has no tracking UID")
            value = assessment.value
            decision = decisions.get((str(value.value), str(value.scheme_designator)))
            if decision is None:
                raise ValueError(f"an assessment has an unknown decision {value.value!r}")
            reasons = hd.sr.utils.find_content_items(
                assessment, name=ASSESSMENT_REASON, value_type=hd.sr.ValueTypeValues.CODE
            )
            notes = _texts(assessment, COMMENT)
            amended = hd.sr.utils.find_content_items(
                assessment, value_type=hd.sr.ValueTypeValues.NUM
            )
            if len(reasons) != 1:
                raise ValueError("an assessment has no reason, or several")
            out[uid] = Verdict(
                tracking_uid=uid,
                decision=decision,
                reason_code=str(reasons[0].value.value),
                note=notes[0] if notes else None,
                amended_value=float(amended[0].value) if amended else None,
            )
    return list(out.values())
