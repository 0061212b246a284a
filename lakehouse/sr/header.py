"""The SR's header as highdicom's ``SOPClass`` and ``_SR`` write it, but for the equipment.

The patient and study are the first source's, copied as highdicom copies them; the first
source's acquisition equipment is a contributing equipment, as in highdicom; the platform, not
highdicom, is the processing equipment (docs/sr.md, "Where the document differs").
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any, Final

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian
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
    Raw,
    code_key,
    code_sequence,
    content_head,
    new_item,
    raw_elements,
    template_sequence,
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


def evidence(sources: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """The Current Requested Procedure Evidence Sequence: every source (one study), by series,
    in order of appearance, duplicates once, as highdicom's ``collect_evidence``."""
    by_series: dict[str, list[pydicom.Dataset]] = {}
    seen: set[str] = set()
    for source in sources:
        if source.SOPInstanceUID in seen:
            continue
        seen.add(source.SOPInstanceUID)
        reference = new_item()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
        by_series.setdefault(source.SeriesInstanceUID, []).append(reference)
    series = []
    for series_uid, references in by_series.items():
        item = new_item()
        item.SeriesInstanceUID = series_uid
        item.ReferencedSOPSequence = references
        series.append(item)
    study = new_item()
    study.StudyInstanceUID = sources[0].StudyInstanceUID
    study.ReferencedSeriesSequence = series
    return [study]


def _acquisition_equipment(source: pydicom.Dataset) -> pydicom.Dataset | None:
    """highdicom's ``ContributingEquipment.for_image_acquisition`` of the first source, or
    nothing where highdicom gives up silently (no image, no manufacturer, a value it refuses)."""
    if not is_image_iod(str(source.SOPClassUID)):
        return None
    manufacturer = source.get("Manufacturer")
    if manufacturer is None or manufacturer == "":
        return None
    item = new_item(code_sequence("PurposeOfReferenceCodeSequence", ACQUISITION_EQUIPMENT))
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


def _equipment_value(keyword: str, value: Any) -> Any:
    """A source's equipment attribute, checked as highdicom's ``ContributingEquipment`` does."""
    if keyword == "SoftwareVersions" and not isinstance(value, str):
        versions = list(value)
        if not versions:
            raise ValueError("no software version")
        for version in versions:
            check_string(version, MAX_LO, keyword)
        return versions
    check_string(value, EQUIPMENT_STRINGS.get(keyword, MAX_LO), keyword)
    return value


@lru_cache(maxsize=1)
def _platform_version() -> str | None:
    try:
        return importlib.metadata.version(PLATFORM)
    except importlib.metadata.PackageNotFoundError:  # running from a tree nobody installed
        return None


def platform_equipment(moment: datetime, description: str = CREATED) -> pydicom.Dataset:
    """The platform as the processing equipment, where highdicom names itself."""
    item = new_item(code_sequence("PurposeOfReferenceCodeSequence", PROCESSING_EQUIPMENT))
    item.Manufacturer = PLATFORM_MANUFACTURER
    item.ManufacturerModelName = PLATFORM
    version = _platform_version()
    if version is not None:
        item.SoftwareVersions = version
    item.ContributionDateTime = DT(moment)
    item.ContributionDescription = description
    return item


def file_meta(sop_instance_uid: str) -> FileMetaDataset:
    """The file meta group, pydicom named as the implementation that writes the file."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(COMPREHENSIVE_3D_SR)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
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
    write_file_meta_info(buffer, file_meta(""), enforce_standard=False)
    return len(buffer.getvalue())


@lru_cache(maxsize=64)
def constant_header(algorithm: Algorithm) -> Raw:
    """The header elements every report of the algorithm shares, and the root content item's
    (TID 1500: its elements are the document's), encoded once."""
    header = new_item(
        *content_head("CONTAINER", code_key(REPORT_TITLE), None), template_sequence("1500")
    )
    header.Modality = "SR"
    header.SeriesDescription = series_description(algorithm.service)
    header.Manufacturer = MANUFACTURER
    header.ManufacturerModelName = algorithm.name
    header.SoftwareVersions = algorithm.version
    header.SOPClassUID = COMPREHENSIVE_3D_SR
    scheme = new_item()
    scheme.CodingSchemeDesignator = SCHEME
    scheme.CodingSchemeName = "Gwangju AI public medical service platform codes"
    scheme.CodingSchemeResponsibleOrganization = "Gwangju AI public medical service"
    header.CodingSchemeIdentificationSequence = [scheme]
    header.CompletionFlag = "COMPLETE"
    header.VerificationFlag = "UNVERIFIED"
    header.PreliminaryFlag = "PRELIMINARY"
    header.PerformedProcedureCodeSequence = []
    header.ReferencedPerformedProcedureStepSequence = []
    return raw_elements(header)


def copy_header(document: pydicom.Dataset, first: pydicom.Dataset, moment: datetime) -> None:
    """highdicom's ``SOPClass`` and ``_SR`` header attributes that vary, and the equipment."""
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
    for tag in patient_and_study_tags(str(first.SOPClassUID)):
        if tag in first:
            document.add(first[tag])  # the source's own element, as highdicom copies it
    acquisition = _acquisition_equipment(first)
    equipment = [] if acquisition is None else [acquisition]
    document.ContributingEquipmentSequence = [*equipment, platform_equipment(moment)]


def series_description(service: str) -> str:
    text = f"AI {service} (reference model, not for clinical use)"
    return text if len(text) <= MAX_LO else "AI findings (reference model, not for clinical use)"
