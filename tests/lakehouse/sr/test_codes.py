"""The SR's standard codes are the standard's: each DICOM, SNOMED CT and UCUM code has the value
and scheme of the concept of the same name in the tables pydicom ships (PS3.16).

The oracle tests cannot catch a wrong value here: they build highdicom's document from these
same constants.
"""

from __future__ import annotations

from pydicom.sr.codedict import codes as standard

from lakehouse.sr import codes

# Each constant, and the name of its concept in pydicom's tables.
STANDARD = {
    "IMAGING_PROCEDURE": ("SCT", "ImagingProcedure"),
    "PROBABILITY": ("DCM", "Probability"),
    "THRESHOLD": ("DCM", "ThresholdValue"),
    "PRESENT": ("SCT", "Present"),
    "ABSENT": ("SCT", "Absent"),
    "SOURCE": ("DCM", "SourceOfMeasurement"),
    "COMMENT": ("DCM", "Comment"),
    "IMAGING_MEASUREMENTS": ("DCM", "ImagingMeasurements"),
    "ALGORITHM_NAME": ("DCM", "AlgorithmName"),
    "ALGORITHM_VERSION": ("DCM", "AlgorithmVersion"),
    "DEVICE": ("DCM", "Device"),
    "REPORT_TITLE": ("DCM", "ImagingMeasurementReport"),
    "LANGUAGE": ("DCM", "LanguageOfContentItemAndDescendants"),
    "OBSERVER_TYPE": ("DCM", "ObserverType"),
    "DEVICE_OBSERVER_UID": ("DCM", "DeviceObserverUID"),
    "DEVICE_OBSERVER_NAME": ("DCM", "DeviceObserverName"),
    "DEVICE_OBSERVER_MANUFACTURER": ("DCM", "DeviceObserverManufacturer"),
    "DEVICE_OBSERVER_MODEL": ("DCM", "DeviceObserverModelName"),
    "PROCEDURE_REPORTED": ("DCM", "ProcedureReported"),
    "MEASUREMENT_GROUP": ("DCM", "MeasurementGroup"),
    "TRACKING_IDENTIFIER": ("DCM", "TrackingIdentifier"),
    "TRACKING_UID": ("DCM", "TrackingUniqueIdentifier"),
    "FINDING": ("DCM", "Finding"),
    "ALGORITHM_MANUFACTURER": ("DCM", "AlgorithmManufacturer"),
    "IMAGE_REGION": ("DCM", "ImageRegion"),
    "REGION_SOURCE": ("SCT", "Source"),
    "ACQUISITION_EQUIPMENT": ("DCM", "AcquisitionEquipment"),
    "PROCESSING_EQUIPMENT": ("DCM", "ProcessingEquipment"),
    "PERSON": ("DCM", "Person"),
    "PERSON_OBSERVER_NAME": ("DCM", "PersonObserverName"),
    "PERSON_OBSERVER_LOGIN": ("DCM", "PersonObserverLoginName"),
    "PERSON_OBSERVER_ORGANIZATION": ("DCM", "PersonObserverOrganizationName"),
    "PERSON_OBSERVER_ROLE": ("DCM", "PersonObserverRoleInThisProcedure"),
    "VERIFYING": ("DCM", "Verifying"),
    "NO_UNITS": ("UCUM", "NoUnits"),
    "SECOND": ("UCUM", "Second"),
}


def test_the_standard_codes_have_the_standards_values() -> None:
    ours = {name: getattr(codes, name) for name in STANDARD} | {
        f"UNITS[{unit!r}]": code for unit, code in codes.UNITS.items()
    }
    theirs = {
        name: getattr(getattr(standard, s), concept) for name, (s, concept) in STANDARD.items()
    }
    theirs |= {"UNITS['month']": standard.UCUM.Month, "UNITS['mm']": standard.UCUM.Millimeter}
    wrong = {
        name: (code.value, code.scheme_designator)
        for name, code in ours.items()
        if (code.value, code.scheme_designator)
        != (theirs[name].value, theirs[name].scheme_designator)
    }
    assert wrong == {}
