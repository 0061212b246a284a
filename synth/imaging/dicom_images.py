"""Image IODs: one builder per SOP class, each adding its mandatory modules to the shared base.

| builder | SOP class | Modality |
| --- | --- | --- |
| ``cr`` | CR Image (1.2.840.10008.5.1.4.1.1.1) | CR |
| ``dx`` | DX For Presentation (...1.1.1) / For Processing (...1.1.1.1) | DX, PX (panoramic) |
| ``mg`` | Digital Mammography For Presentation (...1.1.2) / For Processing (...1.1.2.1) | MG |
| ``io`` | Digital Intra-Oral For Presentation (...1.1.3) | IO |
| ``ct`` | CT Image (...1.2) | CT |
| ``mr`` | MR Image (...1.4) | MR |
| ``op`` | Ophthalmic Photography 8 Bit (...77.1.5.1) | OP |
| ``es`` | VL Endoscopic Image (...77.1.1) | ES |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.valuerep import VR

from synth.imaging.dicom_common import (
    EMPTY_SEQUENCE,
    SeriesHeader,
    StudyHeader,
    base,
    code_sequence,
)
from synth.imaging.encoder import DicomObject, SharedSequence, dataset
from synth.imaging.rendered import RenderedImage, RenderedSeries

CR = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
MG_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
IO_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
OP_8BIT = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
ES = "1.2.840.10008.5.1.4.1.1.77.1.1"
PIXEL_DATA = 0x7FE00010
# Universal Coordinated Time, the synchronization frame of reference of a stand-alone camera.
UTC_SYNCHRONIZATION = "1.2.840.10008.15.1.1"

# Mammography views (SNOMED CT) and the patient orientation of each view as hung here.
MG_VIEWS = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}
MG_ORIENTATION = {
    ("R", "CC"): ["P", "L"],
    ("L", "CC"): ["A", "R"],
    ("R", "MLO"): ["P", "F"],
    ("L", "MLO"): ["A", "F"],
}
# MR protocol attributes per series role.
MR_PROTOCOL: dict[str, dict[str, object]] = {
    "T2W": {
        "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"],
        "ScanningSequence": "SE",
        "SequenceVariant": ["SK", "SP"],
        "MRAcquisitionType": "2D",
        "EchoTime": 104.0,
        "RepetitionTime": 4200.0,
        "EchoTrainLength": 16,
    },
    "DWI": {
        "ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION", "TRACEW"],
        "ScanningSequence": "EP",
        "SequenceVariant": ["SK", "SP"],
        "MRAcquisitionType": "2D",
        "EchoTime": 78.0,
        "RepetitionTime": 5200.0,
        "EchoTrainLength": 1,
    },
    "ADC": {
        "ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"],
        "ScanningSequence": "EP",
        "SequenceVariant": ["SK", "SP"],
        "MRAcquisitionType": "2D",
        "EchoTime": 78.0,
        "RepetitionTime": 5200.0,
        "EchoTrainLength": 1,
    },
    "TOF": {
        "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"],
        "ScanningSequence": "GR",
        "SequenceVariant": ["SP", "OSP"],
        "MRAcquisitionType": "3D",
        "EchoTime": 3.4,
        "RepetitionTime": 21.0,
        "EchoTrainLength": 1,
    },
}


@dataclass(frozen=True)
class ImageSpec:
    """One image to encode and how its sender encodes it.

    Attributes:
        rseries: The rendered series it belongs to (spacing, window, bits).
        image: The rendered frame.
        instance: InstanceNumber.
        sop_uid: SOPInstanceUID.
        monochrome1: Store inverted greyscale (MONOCHROME1), as many CR readers do.
        burned_in: The pixels carry burned-in text (BurnedInAnnotation YES).
        for_processing: A raw "for processing" image (held back by the router).
        rle: Encode the pixel data RLE Lossless.
    """

    rseries: RenderedSeries
    image: RenderedImage
    instance: int
    sop_uid: str
    monochrome1: bool = False
    burned_in: bool = False
    for_processing: bool = False
    rle: bool = False


def _grey(attributes: dict[str, Any], spec: ImageSpec) -> DicomObject:
    """Add the image pixel module and VOI window for greyscale, inverting for MONOCHROME1: the
    object with its pixel data."""
    bits = spec.rseries.bits_stored
    pixels = np.asarray(spec.image.pixels, dtype=np.uint16)
    centre, width = spec.rseries.window
    if spec.monochrome1:
        pixels = ((1 << bits) - 1 - pixels).astype(np.uint16)
        centre = (1 << bits) - 1 - centre
    attributes.update(
        {
            "SamplesPerPixel": 1,
            "PhotometricInterpretation": "MONOCHROME1" if spec.monochrome1 else "MONOCHROME2",
            "Rows": pixels.shape[0],
            "Columns": pixels.shape[1],
            "BitsAllocated": 16,
            "BitsStored": bits,
            "HighBit": bits - 1,
            "PixelRepresentation": 0,
        }
    )
    if not spec.for_processing:
        attributes["WindowCenter"] = f"{centre:.0f}"
        attributes["WindowWidth"] = f"{width:.0f}"
    if spec.rle:
        return DicomObject(attributes, rle_pixels=pixels)
    return DicomObject(attributes, (DataElement(PIXEL_DATA, VR.OW, pixels.tobytes()),))


def _rgb(attributes: dict[str, Any], spec: ImageSpec) -> DicomObject:
    """Add the image pixel module for 8-bit RGB: the object with its pixel data."""
    pixels = np.ascontiguousarray(spec.image.pixels, dtype=np.uint8)
    attributes.update(
        {
            "SamplesPerPixel": 3,
            "PhotometricInterpretation": "RGB",
            "PlanarConfiguration": 0,
            "Rows": pixels.shape[0],
            "Columns": pixels.shape[1],
            "BitsAllocated": 8,
            "BitsStored": 8,
            "HighBit": 7,
            "PixelRepresentation": 0,
            "LossyImageCompression": "00",
        }
    )
    return DicomObject(attributes, (DataElement(PIXEL_DATA, VR.OB, pixels.tobytes()),))


def _orientation(view: str) -> list[str]:
    return ["P", "F"] if view in ("LL", "LAT") else ["L", "F"]


def _projection(
    study: StudyHeader, series: SeriesHeader, spec: ImageSpec, sop_class: str
) -> dict[str, Any]:
    """The DX family's series, anatomy, image and detector modules (DX, PX, IO and MG)."""
    spacing = [f"{s:.3f}" for s in spec.rseries.pixel_spacing]
    anatomy = study.anatomy
    attributes = base(study, series, sop_class, spec.instance, spec.sop_uid, spec.instance)
    attributes.update(
        {
            "ImageType": ["ORIGINAL", "PRIMARY"],
            "PresentationIntentType": "FOR PROCESSING"
            if spec.for_processing
            else "FOR PRESENTATION",
            "BodyPartExamined": study.body_part,
            "AnatomicRegionSequence": code_sequence(anatomy.code, "SCT", anatomy.meaning)
            if anatomy.code
            else EMPTY_SEQUENCE,
            "ImageLaterality": spec.image.laterality,
            "ViewPosition": spec.image.view,
            "PatientOrientation": _orientation(spec.image.view),
            "BurnedInAnnotation": "YES" if spec.burned_in else "NO",
            "PixelIntensityRelationship": "LOG",
            "PixelIntensityRelationshipSign": 1 if spec.monochrome1 else -1,
            "RescaleIntercept": "0",
            "RescaleSlope": "1",
            "RescaleType": "US",
            "LossyImageCompression": "00",
            "PresentationLUTShape": "INVERSE" if spec.monochrome1 else "IDENTITY",
            "ImagerPixelSpacing": spacing,
            "PixelSpacing": spacing,
            "DetectorType": "SCINTILLATOR",
            "AcquisitionContextSequence": EMPTY_SEQUENCE,
            "KVP": "70",
        }
    )
    return attributes


def cr(study: StudyHeader, series: SeriesHeader, spec: ImageSpec) -> DicomObject:
    """Computed radiography (storage-phosphor reader); often MONOCHROME1."""
    attributes = base(study, series, CR, spec.instance, spec.sop_uid, spec.instance)
    spacing = [f"{s:.3f}" for s in spec.rseries.pixel_spacing]
    attributes.update(
        {
            "ImageType": ["ORIGINAL", "PRIMARY"],
            "BodyPartExamined": study.body_part,
            "ViewPosition": spec.image.view,
            "ImageLaterality": spec.image.laterality,
            "PatientOrientation": _orientation(spec.image.view),
            "BurnedInAnnotation": "YES" if spec.burned_in else "NO",
            "KVP": "90",
            "ImagerPixelSpacing": spacing,
            "PixelSpacing": spacing,
            "RescaleIntercept": "0",
            "RescaleSlope": "1",
            "RescaleType": "US",
            "PresentationLUTShape": "INVERSE" if spec.monochrome1 else "IDENTITY",
        }
    )
    return _grey(attributes, spec)


def dx(study: StudyHeader, series: SeriesHeader, spec: ImageSpec) -> DicomObject:
    """Digital radiography, and the dental panoramic (DX SOP class with Modality PX)."""
    sop = DX_PROCESSING if spec.for_processing else DX_PRESENTATION
    return _grey(_projection(study, series, spec, sop), spec)


def io(study: StudyHeader, series: SeriesHeader, spec: ImageSpec) -> DicomObject:
    """Digital intra-oral radiograph (periapical sensor)."""
    attributes = _projection(study, series, spec, IO_PRESENTATION)
    attributes.update({"PositionerType": "NONE", "DetectorType": "SCINTILLATOR"})
    return _grey(attributes, spec)


@cache
def _view_code(view: str) -> SharedSequence:
    """ViewCodeSequence with its (type 2, here empty) ViewModifierCodeSequence."""
    value, meaning = MG_VIEWS[view]
    item = dataset(
        {
            "CodeValue": value,
            "CodingSchemeDesignator": "SCT",
            "CodeMeaning": meaning,
            "ViewModifierCodeSequence": EMPTY_SEQUENCE,
        }
    )
    return SharedSequence([item])


def mg(study: StudyHeader, series: SeriesHeader, spec: ImageSpec) -> DicomObject:
    """Digital mammography, for presentation or (held back) for processing."""
    sop = MG_PROCESSING if spec.for_processing else MG_PRESENTATION
    attributes = _projection(study, series, spec, sop)
    view = spec.image.view
    attributes.update(
        {
            "PositionerType": "MAMMOGRAPHIC",
            "OrganExposed": "BREAST",
            "ViewCodeSequence": _view_code(view),
            "PatientOrientation": MG_ORIENTATION[(spec.image.laterality, view)],
            "BreastImplantPresent": "NO",
            "DetectorType": "DIRECT",
            "KVP": "29",
        }
    )
    return _grey(attributes, spec)


def _cross_section(attributes: dict[str, Any], series: SeriesHeader, spec: ImageSpec) -> None:
    """Frame of reference and image plane of an axial slice."""
    rows, cols = spec.image.pixels.shape[:2]
    sy, sx = spec.rseries.pixel_spacing
    z = spec.image.position_mm
    attributes.update(
        {
            "FrameOfReferenceUID": series.frame_of_reference,
            "PositionReferenceIndicator": "",
            "SliceThickness": f"{spec.rseries.slice_thickness or 1.0:g}",
            "ImagePositionPatient": [f"{-cols * sx / 2:.2f}", f"{-rows * sy / 2:.2f}", f"{z:.2f}"],
            "ImageOrientationPatient": ["1", "0", "0", "0", "1", "0"],
            "PixelSpacing": [f"{sy:.4f}", f"{sx:.4f}"],
            "SliceLocation": f"{z:.2f}",
            "AcquisitionNumber": 1,
        }
    )


def ct(study: StudyHeader, series: SeriesHeader, spec: ImageSpec) -> DicomObject:
    """CT slice in HU via RescaleIntercept -1024."""
    attributes = base(study, series, CT, spec.instance, spec.sop_uid, spec.instance)
    attributes.update(
        {"ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], "BodyPartExamined": study.body_part}
    )
    _cross_section(attributes, series, spec)
    attributes.update(
        {
            "KVP": "120",
            "RescaleIntercept": f"{spec.rseries.rescale_intercept:.0f}",
            "RescaleSlope": "1",
            "RescaleType": "HU",
            "ConvolutionKernel": "H30s",
        }
    )
    return _grey(attributes, spec)


def mr(
    study: StudyHeader, series: SeriesHeader, spec: ImageSpec, field_strength: float
) -> DicomObject:
    """MR slice; the protocol attributes follow the series role (T2W, DWI, ADC, TOF)."""
    attributes = base(study, series, MR, spec.instance, spec.sop_uid, spec.instance)
    attributes["BodyPartExamined"] = study.body_part
    _cross_section(attributes, series, spec)
    attributes.update(MR_PROTOCOL[spec.rseries.role])
    attributes.update(
        {
            "ScanOptions": "PFP" if spec.rseries.role == "TOF" else "",
            "MagneticFieldStrength": f"{field_strength:g}",
            "ImagedNucleus": "1H",
            "SpacingBetweenSlices": f"{spec.rseries.slice_thickness or 1.0:g}",
        }
    )
    if spec.rseries.role == "DWI":
        attributes["DiffusionBValue"] = 1400.0 if "b1400" in spec.rseries.description else 1000.0
    return _grey(attributes, spec)


def op(study: StudyHeader, series: SeriesHeader, spec: ImageSpec) -> DicomObject:
    """Colour fundus photograph (Ophthalmic Photography 8 Bit)."""
    attributes = base(study, series, OP_8BIT, spec.instance, spec.sop_uid, spec.instance)
    anatomy = study.anatomy
    attributes.update(
        {
            "ImageType": ["ORIGINAL", "PRIMARY"],
            "BodyPartExamined": study.body_part,
            "NumberOfFrames": 1,
            "FrameIncrementPointer": 0x00181063,
            "FrameTime": "0",
            "SynchronizationFrameOfReferenceUID": UTC_SYNCHRONIZATION,
            "SynchronizationTrigger": "NO TRIGGER",
            "AcquisitionTimeSynchronized": "N",
            "BurnedInAnnotation": "NO",
            "AnatomicRegionSequence": code_sequence(anatomy.code, "SCT", anatomy.meaning),
            "ImageLaterality": spec.image.laterality,
            "Laterality": spec.image.laterality,
            "PatientEyeMovementCommanded": "NO",
            "EmmetropicMagnification": None,
            "IntraOcularPressure": None,
            "HorizontalFieldOfView": 45.0,
            "PupilDilated": "NO",
            "RefractiveStateSequence": EMPTY_SEQUENCE,
            "DetectorType": "CCD",
            "AcquisitionDeviceTypeCodeSequence": code_sequence("409898007", "SCT", "Fundus camera"),
            "IlluminationTypeCodeSequence": EMPTY_SEQUENCE,
            "LightPathFilterTypeStackCodeSequence": EMPTY_SEQUENCE,
            "ImagePathFilterTypeStackCodeSequence": EMPTY_SEQUENCE,
            "LensesCodeSequence": EMPTY_SEQUENCE,
        }
    )
    return _rgb(attributes, spec)


def es(study: StudyHeader, series: SeriesHeader, spec: ImageSpec) -> DicomObject:
    """Endoscopy frame captured by the video processor (VL Endoscopic Image)."""
    attributes = base(study, series, ES, spec.instance, spec.sop_uid, spec.instance)
    anatomy = study.anatomy
    attributes.update(
        {
            "ImageType": ["ORIGINAL", "PRIMARY"],
            "BodyPartExamined": study.body_part,
            "AnatomicRegionSequence": code_sequence(anatomy.code, "SCT", anatomy.meaning),
            "AcquisitionContextSequence": EMPTY_SEQUENCE,
        }
    )
    return _rgb(attributes, spec)


Builder = Callable[[StudyHeader, SeriesHeader, ImageSpec], DicomObject]
BUILDERS: dict[str, Builder] = {
    "CR": cr,
    "DX": dx,
    "PX": dx,
    "IO": io,
    "MG": mg,
    "CT": ct,
    "OP": op,
    "ES": es,
}
