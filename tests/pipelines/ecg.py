"""ECG studies the scorers can take: pydicom's 12-lead test file, and the generator's recordings
from any recorder (12-lead cart, 2-lead Holter, single-lead patch) at any length."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from lakehouse import dicom_store
from pipelines.score import scoring
from synth.imaging import dicom_ecg, render_ecg
from synth.imaging.dicom_common import SeriesHeader, StudyHeader
from synth.imaging.encoder import encode
from synth.imaging.exams import exam
from synth.imaging.orders import ImagingOrder
from synth.imaging.rendered import Case, RenderedStudy
from synth.imaging.sites import site

SEED = 510_001


def stored_job(data: bytes) -> scoring.Job:
    """Store one ECG file in the object store (under ``LAKEHOUSE_URI``) by its UIDs and return
    the scoring job that names it."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    key = dicom_store.object_key(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    dicom_store.put(key, data, replace=True)
    study = {"study_instance_uid": ds.StudyInstanceUID, "patient_sex": "M"}
    instance = {
        "study_instance_uid": ds.StudyInstanceUID,
        "series_instance_uid": ds.SeriesInstanceUID,
        "sop_instance_uid": ds.SOPInstanceUID,
        "file_uri": key,
    }
    return scoring.Job(study, [instance])


def stored_ecg_job() -> scoring.Job:
    """pydicom's 12-lead ECG test file as a stored study."""
    path = get_testdata_file("waveform_ecg.dcm")
    assert path is not None
    return stored_job(Path(path).read_bytes())


def recorded(
    recorder: render_ecg.Recorder,
    seconds: int | None = None,
    abnormal: bool = True,
    seed: int = 3,
    change: Callable[[pydicom.Dataset], None] | None = None,
) -> tuple[bytes, RenderedStudy]:
    """A generator's ECG from ``recorder`` as the DICOM file its recorder sends (``change``
    edits the dataset first), and what was rendered (the truth's sample ranges)."""
    order = ImagingOrder(
        accession=f"EC{recorder.kind[:4].upper()}{seed:04d}",
        exam="ECG_12LEAD",
        patient_id="580105-1234567",
        patient_name="김민준",
        sex="M",
        birth_date=datetime(1958, 1, 5).date(),
        institution_code="36100011",
        institution_name="광주시범의원",
        study_datetime=datetime(2024, 6, 3, 9, 30),
        abnormal=abnormal,
        visit_key=f"S{seed:09d}",
    )
    anatomy, finding, noise = np.random.default_rng(seed).spawn(3)
    case = Case("ECG_12LEAD", abnormal, "M", 66 * 12, anatomy, finding, noise)
    study = render_ecg.recording(case, recorder, seconds)
    assert study.waveform is not None
    place = site(SEED, order.institution_code)
    header = StudyHeader.of(order, exam(order.exam), SEED, place, False)
    series = SeriesHeader(
        1,
        header.uid("series", 1),
        "ECG",
        "ECG",
        order.study_datetime,
        "BIONET",
        "CardioXP",
        "ECG01",
        header.uid("frame-of-reference"),
    )
    obj = dicom_ecg.ecg(header, series, study.waveform, header.uid("series", 1, "instance", 1))
    data = encode(obj, implicit_vr=False)
    if change is not None:
        ds = pydicom.dcmread(io.BytesIO(data))
        change(ds)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        data = buffer.getvalue()
    return data, study


def respiration_only(ds: pydicom.Dataset) -> None:
    """Recode the first group's channels as something other than an ECG lead (a test scheme's
    "Respiration"): a recording with no rhythm lead."""
    for channel in ds.WaveformSequence[0].ChannelDefinitionSequence:
        code = channel.ChannelSourceSequence[0]
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
            "RESP",
            "99TEST",
            "Respiration",
        )


def flat(ds: pydicom.Dataset) -> None:
    """Zero every sample of the first group: electrodes off, flat lines."""
    group = ds.WaveformSequence[0]
    group.WaveformData = bytes(len(group.WaveformData))
