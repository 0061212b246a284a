"""Multi-frame images made from a study the synthetic city renders, for the tests of findings
located on a frame.

The synthetic city writes no instance of several frames: every CT or MR slice is an instance of
its own, and its ophthalmic photographs, of a multi-frame IOD, hold one frame each. So the tests
make them, as real DICOM files, from an abnormal brain CT of the city (12 axial slices, an
infarct on a few of them, its boxes in the ground truth), with the infarct on one frame
(``BrainCt.on_frame``):

* ``multiframe_sc``: the slices as the frames of one Multi-frame Grayscale Word Secondary
  Capture image (PS3.3 A.8.4), in the order given, with the CT's rescale to HU and its window at
  the top level (the SC Multi-frame Image and VOI LUT modules), which the scoring chain reads;
* ``enhanced_ct``: the slices converted by highdicom to a Legacy Converted Enhanced CT image
  (rescale and window in its functional groups), a multi-frame source for the SR alone.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MultiFrameGrayscaleWordSecondaryCaptureImageStorage

from synth.imaging.assemble import assemble
from tests.lakehouse.sr.cases import SEED, imaging_order

# What the secondary capture keeps of a slice: the Patient, General Study, Patient Study,
# General Series and General Equipment modules' attributes, as the slice has them.
KEPT = (
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "StudyDescription",
    "Modality",
    "BodyPartExamined",
    "SeriesDescription",
    "Manufacturer",
    "InstitutionName",
    "PixelSpacing",
    "WindowCenter",
    "WindowWidth",
    "RescaleIntercept",
    "RescaleSlope",
)


@dataclass(frozen=True)
class BrainCt:
    """An abnormal brain CT of the synthetic city: its slices (with pixels) in slice order,
    and the ground truth's infarct boxes by slice SOP instance UID."""

    slices: tuple[pydicom.Dataset, ...]
    boxes: dict[str, tuple[float, float, float, float]]

    def on_frame(self, k: int) -> tuple[list[pydicom.Dataset], tuple[float, float, float, float]]:
        """Frames with the infarct on frame ``k`` (1-based) alone: the slices without it, in
        order, and the slice where its box is largest put at ``k``; and that box."""
        normal = [s for s in self.slices if str(s.SOPInstanceUID) not in self.boxes]
        lesion = max(
            (s for s in self.slices if str(s.SOPInstanceUID) in self.boxes),
            key=lambda s: _area(self.boxes[str(s.SOPInstanceUID)]),
        )
        return [*normal[: k - 1], lesion, *normal[k - 1 :]], self.boxes[str(lesion.SOPInstanceUID)]


def _area(box: tuple[float, float, float, float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


@cache
def brain_ct() -> BrainCt:
    study, _ = assemble(imaging_order("BRAIN_CT", "M", date(1958, 1, 5)), SEED)
    slices = sorted(
        (pydicom.dcmread(io.BytesIO(o.data)) for o in study.objects),
        key=lambda ds: int(ds.InstanceNumber),
    )
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for where in study.truth["locations"]:
        x0, y0, x1, y1 = (float(v) for v in where["box"])
        boxes[str(where["sop_instance_uid"])] = (x0, y0, x1, y1)
    return BrainCt(tuple(slices), boxes)


def multiframe_sc(
    slices: Sequence[pydicom.Dataset], study_uid: str, series_uid: str, sop_uid: str
) -> pydicom.Dataset:
    """``slices`` as the frames of one Multi-frame Grayscale Word SC image, in this order, in a
    study of its own (``study_uid``) of the same patient."""
    first = slices[0]
    ds = pydicom.Dataset()
    for keyword in KEPT:
        if keyword in first:
            ds[keyword] = first[keyword]
    ds.SOPClassUID = MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 90
    ds.InstanceNumber = 1
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "NO"
    ds.RescaleType = "HU"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = first.Rows, first.Columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, first.BitsStored, first.HighBit
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = len(slices)
    ds.FrameIncrementPointer = pydicom.tag.Tag("SliceLocationVector")
    ds.SliceLocationVector = [float(s.ImagePositionPatient[2]) for s in slices]
    pixels = np.stack([s.pixel_array.astype(np.uint16) for s in slices])
    ds.PixelData = pixels.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(sop_uid)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def enhanced_ct(slices: Sequence[pydicom.Dataset]) -> hd.legacy.LegacyConvertedEnhancedCTImage:
    """``slices`` converted by highdicom to one Legacy Converted Enhanced CT image."""
    return hd.legacy.LegacyConvertedEnhancedCTImage(
        list(slices),
        series_instance_uid=hd.UID(),
        series_number=91,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )


def file_bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def header(ds: pydicom.Dataset) -> Any:
    """``ds`` as a header read back from its file, without its pixels."""
    return pydicom.dcmread(io.BytesIO(file_bytes(ds)), stop_before_pixels=True)
