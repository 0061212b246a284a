"""The floor of AI scoring: for every routed study and its service, each instance read from the
object store with pydicom, prepared by the one input chain (``models.runtime.preprocess``) and
the study's inputs passed to ``InferenceSession.run`` (onnxruntime's own threads: both cores),
nothing else. Shared by ``gjh bench`` and tests/benchmarks/test_scoring.py; its own module so the
other floors' processes do not load onnxruntime."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import polars as pl

from lakehouse import dicom_store
from lakehouse import read as lake_read
from lakehouse.config import lakehouse_uri
from models.runtime.preprocess import image_input
from models.runtime.registry import Service, active
from models.runtime.waveform import waveform_windows
from pipelines.score.pending import pending
from pipelines.score.scoring import Job


def routed_jobs() -> list[tuple[Service, list[Job]]]:
    """Every active service's jobs: the routed studies of the lakehouse's imaging tables, as
    if none had been scored yet (read before any findings, or regardless of them)."""
    routing = lake_read.frame("silver.imaging_routing", pl.col("outcome") == "routed")
    instances = lake_read.frame("silver.imaging_instances")
    studies = lake_read.frame("silver.imaging_studies")
    none = pl.DataFrame(
        schema={
            "study_instance_uid": pl.String,
            "service": pl.String,
            "algorithm_version": pl.String,
        }
    )
    return [(s, pending(s, routing, instances, studies, none)) for s in active()]


def unscore() -> int:
    """Remove ``ai.findings`` and the heatmaps and SRs its rows point at; the objects removed.

    Between the benchmark's rounds: each round then scores every study and stores its objects
    under free names, as a production run does (an object is replaced only when a run stopped
    before writing its row). Replacing every object of the round before was a rename over an
    existing file each, 2-3.5 times slower than into a free name on this disk.
    """
    location = Path(lakehouse_uri()) / "ai" / "findings"
    removed = 0
    if location.exists():
        for uri in lake_read.frame("ai.findings").select(pl.concat_list("heatmap_uri", "sr_uri"))[
            :, 0
        ]:
            for key in uri:
                if key:
                    dicom_store.remove(key)
                    removed += 1
    shutil.rmtree(location, ignore_errors=True)
    return removed


def bare_scoring(jobs_by_service: list[tuple[Service, list[Job]]]) -> tuple[int, float]:
    """The same read, preparation and inference, nothing else; (studies, seconds)."""
    began = time.perf_counter()
    studies = 0
    for service, jobs in jobs_by_service:
        session = ort.InferenceSession(str(service.model_path), providers=["CPUExecutionProvider"])
        config = service.config
        names = {i.name for i in session.get_inputs()}
        for job in jobs:
            arrays = []
            for row in job.instances:
                ds = dicom_store.dataset(row["file_uri"])
                if config.input == "waveform" and config.waveform is not None:
                    arrays.append(waveform_windows(ds, config.waveform).x)  # every window
                elif config.image is not None:
                    arrays.append(image_input(ds, config.image)[0])
            batch = np.concatenate(arrays)
            feeds = {config.inputs.get("image", "image"): batch}
            if "sex" in config.inputs and config.inputs["sex"] in names:
                feeds[config.inputs["sex"]] = np.zeros((len(batch), 1), np.float32)
            session.run(None, feeds)
            studies += 1
    return studies, time.perf_counter() - began
