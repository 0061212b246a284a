"""pydicom's 12-lead ECG test file as a study the scorers can take."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from lakehouse import dicom_store
from pipelines.score import scoring


def stored_ecg_job() -> scoring.Job:
    """Store the ECG in the object store (under ``LAKEHOUSE_URI``) by its UIDs and return the
    scoring job that names it."""
    path = get_testdata_file("waveform_ecg.dcm")
    assert path is not None
    ds = pydicom.dcmread(path)
    key = dicom_store.object_key(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    dicom_store.put(key, Path(path).read_bytes())
    study = {"study_instance_uid": ds.StudyInstanceUID, "patient_sex": "M"}
    instance = {
        "study_instance_uid": ds.StudyInstanceUID,
        "series_instance_uid": ds.SeriesInstanceUID,
        "sop_instance_uid": ds.SOPInstanceUID,
        "file_uri": key,
    }
    return scoring.Job(study, [instance])
