"""The SR's header as highdicom's ``SOPClass`` and ``_SR`` write it, but for the equipment,
encoded as elements (``lakehouse.sr.encode``).

The patient and study are the first source's, copied as highdicom copies them; the first
source's acquisition equipment is a contributing equipment, as in highdicom; the platform, not
highdicom, is the processing equipment (docs/sr.md, "Where the document differs").
"""

from __future__ import annotations

import importlib.metadata
import struct
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any, Final

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian
from pydicom.valuerep import DA, DT, TM

from lakehouse.sr.codes import (
    ACQUISITION_EQUIPMENT,
    COMPREHENSIVE_3D_SR,
    CREATED,
    MANUFACTURER,
    MAX_LO,
    MAX_SH,
    MAX_ST,
    PLATFORM,
    PLATFORM_MANUFACTURER,
    PROCESSING_EQUIPMENT,
    REPORT_TITLE,
    SCHEME,
)
from lakehouse.sr.encode import (
    code_key,
    code_sequence,
    content_head,
    dataset_encoded,
    dataset_of,
    element,
    encoded,
    item,
    pydicom_encoded,
    sq,
    tag_of,
    template_sequence,
    text,
)
from lakehouse.sr.findings import Algorithm, check_string, is_image_iod, patient_and_study_tags

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
# The patient and study attributes highdicom's ``SOPClass`` sets from the first source before it
# copies the IOD's modules (which, for every standard IOD, hold them all again).
PATIENT_AND_STUDY: Final = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
PREAMBLE: Final = b"\x00" * 128 + b"DICM"


def evidence(sources: Sequence[pydicom.Dataset]) -> bytes:
    """The Current Requested Procedure Evidence Sequence: every source (one study), by series,
    in order of appearance, duplicates once, as highdicom's ``collect_evidence``."""
    by_series: dict[str, list[bytes]] = {}
    seen: set[str] = set()
    for source in sources:
        instance = str(source.SOPInstanceUID)
        if instance in seen:
            continue
        seen.add(instance)
        reference = item(
            text("ReferencedSOPClassUID", str(source.SOPClassUID)),
            text("ReferencedSOPInstanceUID", instance),
        )
        by_series.setdefault(str(source.SeriesInstanceUID), []).append(reference)
    series = [
        item(text("SeriesInstanceUID", uid), sq("ReferencedSOPSequence", *references))
        for uid, references in by_series.items()
    ]
    study = item(
        text("StudyInstanceUID", str(sources[0].StudyInstanceUID)),
        sq("ReferencedSeriesSequence", *series),
    )
    return sq("CurrentRequestedProcedureEvidenceSequence", study)


def _acquisition_equipment(source: pydicom.Dataset) -> bytes | None:
    """highdicom's ``ContributingEquipment.for_image_acquisition`` of the first source, or
    nothing where highdicom gives up silently (no image, no manufacturer, a value it refuses)."""
    if not is_image_iod(str(source.SOPClassUID)):
        return None
    manufacturer = source.get("Manufacturer")
    if manufacturer is None or manufacturer == "":
        return None
    parts = [code_sequence("PurposeOfReferenceCodeSequence", ACQUISITION_EQUIPMENT)]
    try:
        parts.append(_equipment("Manufacturer", manufacturer))
        for keyword in EQUIPMENT_STRINGS:
            value = source.get(keyword)
            if value is not None:
                parts.append(_equipment(keyword, value))
        acquired = source.get("AcquisitionDateTime")
        if acquired is None:
            day, clock = source.get("AcquisitionDate"), source.get("AcquisitionTime")
            if isinstance(day, date) and isinstance(clock, time):  # only with datetime_conversion
                acquired = datetime.combine(day, clock)
        if acquired is not None:
            parts.append(pydicom_encoded("ContributionDateTime", DT(acquired)))
    except (TypeError, ValueError):  # highdicom drops the entry on any error
        return None
    parts.append(text("ContributionDescription", "Acquisition equipment of the source image(s)"))
    return item(*parts)


def _equipment(keyword: str, value: Any) -> bytes:
    """A source's equipment attribute, checked as highdicom's ``ContributingEquipment`` does."""
    if keyword == "SoftwareVersions" and not isinstance(value, str):
        versions = list(value)
        if not versions:
            raise ValueError("no software version")
        for version in versions:
            check_string(version, MAX_LO, keyword)
        return pydicom_encoded(keyword, versions)
    check_string(value, EQUIPMENT_STRINGS.get(keyword, MAX_LO), keyword)
    return text(keyword, value) if isinstance(value, str) else pydicom_encoded(keyword, value)


@lru_cache(maxsize=1)
def _platform_version() -> str | None:
    try:
        return importlib.metadata.version(PLATFORM)
    except importlib.metadata.PackageNotFoundError:  # running from a tree nobody installed
        return None


@lru_cache(maxsize=4)
def _platform(description: str) -> tuple[bytes, ...]:
    parts = [
        code_sequence("PurposeOfReferenceCodeSequence", PROCESSING_EQUIPMENT),
        text("Manufacturer", PLATFORM_MANUFACTURER),
        text("ManufacturerModelName", PLATFORM),
        text("ContributionDescription", description),
    ]
    version = _platform_version()
    if version is not None:
        parts.append(text("SoftwareVersions", version))
    return tuple(parts)


def platform_item(moment: datetime, description: str = CREATED) -> bytes:
    """The platform as the processing equipment, where highdicom names itself."""
    return item(*_platform(description), pydicom_encoded("ContributionDateTime", DT(moment)))


def platform_equipment(moment: datetime, description: str = CREATED) -> pydicom.Dataset:
    """``platform_item`` as a dataset, for a document pydicom saves (a verification's)."""
    return dataset_of(platform_item(moment, description))


def file_meta_group(sop_instance_uid: str) -> bytes:
    """The file meta group, pydicom named as the implementation that writes the file."""
    rest = b"".join(
        (
            element(0x00020001, "OB", b"\x00\x01"),
            text("MediaStorageSOPClassUID", COMPREHENSIVE_3D_SR),
            text("MediaStorageSOPInstanceUID", sop_instance_uid),
            text("TransferSyntaxUID", ExplicitVRLittleEndian),
            text("ImplementationClassUID", PYDICOM_IMPLEMENTATION_UID),
            text("ImplementationVersionName", f"PYDICOM {'.'.join(pydicom.__version_info__)}"),
        )
    )
    return element(0x00020000, "UL", struct.pack("<I", len(rest))) + rest


def file_meta(sop_instance_uid: str) -> FileMetaDataset:
    """``file_meta_group`` as a dataset, for a document pydicom saves (a verification's)."""
    group = file_meta_group(sop_instance_uid)
    return FileMetaDataset(dataset_of(item(group)[:8] + group))


@lru_cache(maxsize=64)
def constant_header(algorithm: Algorithm) -> tuple[bytes, ...]:
    """The header elements every report of the algorithm shares, and the root content item's
    (TID 1500: its elements are the document's), encoded once."""
    scheme = item(
        text("CodingSchemeDesignator", SCHEME),
        text("CodingSchemeName", "Gwangju AI public medical service platform codes"),
        text("CodingSchemeResponsibleOrganization", "Gwangju AI public medical service"),
    )
    return (
        *content_head("CONTAINER", code_key(REPORT_TITLE), None),
        template_sequence("1500"),
        text("Modality", "SR"),
        text("SeriesDescription", series_description(algorithm.service)),
        text("Manufacturer", MANUFACTURER),
        text("ManufacturerModelName", algorithm.name),
        text("SoftwareVersions", algorithm.version),
        text("SOPClassUID", COMPREHENSIVE_3D_SR),
        sq("CodingSchemeIdentificationSequence", scheme),
        text("CompletionFlag", "COMPLETE"),
        text("VerificationFlag", "UNVERIFIED"),
        text("PreliminaryFlag", "PRELIMINARY"),
        sq("PerformedProcedureCodeSequence"),
        sq("ReferencedPerformedProcedureStepSequence"),
    )


def copied_header(first: pydicom.Dataset, moment: datetime) -> list[bytes]:
    """highdicom's ``SOPClass`` and ``_SR`` header attributes that vary, and the equipment.

    The first source's own elements of its IOD's Patient and Study modules, as highdicom copies
    them (encoded by pydicom: any VR, any character set); the patient and study attributes
    highdicom sets before that copy, for the few a source lacks; the times of ``moment``.
    """
    copied = [tag for tag in patient_and_study_tags(str(first.SOPClassUID)) if tag in first]
    out = list(encoded(first[tag] for tag in copied))
    missing = set(PATIENT_AND_STUDY) - {k for k in map(_keyword, copied) if k}
    if missing:
        out.extend(_set_before_the_copy(first, missing))
    day = pydicom_encoded("InstanceCreationDate", DA(moment.date()))[8:]
    clock = pydicom_encoded("InstanceCreationTime", TM(moment.time().replace(tzinfo=None)))[8:]
    for keyword, value in (("InstanceCreation", day), ("Content", day), ("Series", day)):
        out.append(element(tag_of(f"{keyword}Date"), "DA", value))
    for keyword in ("InstanceCreation", "Content", "Series"):
        out.append(element(tag_of(f"{keyword}Time"), "TM", clock))
    if moment.utcoffset() is not None:  # dates and times above are local to this offset
        out.append(text("TimezoneOffsetFromUTC", moment.strftime("%z")))
    acquisition = _acquisition_equipment(first)
    equipment = [] if acquisition is None else [acquisition]
    out.append(sq("ContributingEquipmentSequence", *equipment, platform_item(moment)))
    return out


def _keyword(tag: int) -> str | None:
    return pydicom.datadict.keyword_for_tag(tag) or None


def _set_before_the_copy(first: pydicom.Dataset, keywords: set[str]) -> tuple[bytes, ...]:
    """The patient and study attributes the copy did not bring, as highdicom sets them."""
    values: dict[str, Callable[[], object]] = {
        "PatientID": lambda: first.PatientID,
        "PatientName": lambda: first.PatientName,
        "PatientBirthDate": lambda: DA(first.PatientBirthDate),
        "PatientSex": lambda: first.PatientSex,
        "StudyInstanceUID": lambda: str(first.StudyInstanceUID),
        "AccessionNumber": lambda: first.AccessionNumber,
        "StudyID": lambda: first.StudyID,
        "StudyDate": lambda: None if first.StudyDate is None else DA(first.StudyDate),
        "StudyTime": lambda: None if first.StudyTime is None else TM(first.StudyTime),
        "ReferringPhysicianName": lambda: first.get("ReferringPhysicianName"),
    }
    holder = pydicom.Dataset()
    for keyword in keywords:
        setattr(holder, keyword, values[keyword]())
    return dataset_encoded(holder)


def series_description(service: str) -> str:
    text = f"AI {service} (reference model, not for clinical use)"
    return text if len(text) <= MAX_LO else "AI findings (reference model, not for clinical use)"
