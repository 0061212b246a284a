"""Batch scoring: routed, complete studies through a service's model into findings and an SR.

For one service, ``pipelines.score.pending`` lists the studies routed to it that have no finding
for the model version in the registry (so a rerun scores nothing new and a new version rescores).
This module is what the scoring processes import, so it stays free of Polars (and the object
store of pyarrow): each process starts in a second or two less.
``Scorers.score`` takes every service's pending studies through one pool of processes and a
thread of the caller's beside them: it reads each study's originals from the object store,
prepares every instance with ``models.runtime.preprocess``, runs the ONNX model in batches of
about ``batch`` inputs (so memory is bounded by the batch, not by the drop), and turns the
outputs into one finding row per study:

* classifiers: the study's score is the highest instance score (mammography: over its views;
  each frame of a multi-frame instance is an input of its own); the finding is located on that
  instance, and frame of a multi-frame one, as the box around its heatmap's hottest cells;
* regressions: the mean of the instances' values, in the unit the config names (leg length is
  predicted as a fraction of the image and scaled by its extent in mm);
* ECG: any lead set (``models.runtime.waveform``), scored in windows of the model's duration; the
  study's score is the worst window's, and the location names the worst windows with their
  contributing segments, in seconds from the recording's start.

A study whose originals cannot be read, decoded or shaped for the model gets a ``failed`` row with
the reason code and the error's message instead; it never stops the batch. Each scored study's
heatmap and its DICOM SR (``lakehouse.sr``) go to the object store beside the study, from
the process that made them.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import Any, Final

import numpy as np
import onnxruntime as ort
import pydicom
from numpy.typing import NDArray

from lakehouse import dicom_store, sr
from lakehouse.pool import WorkerPool
from models.runtime import contract
from models.runtime.preprocess import Geometry, InputError, image_input
from models.runtime.registry import Service
from models.runtime.waveform import Windows, waveform_windows

UNREADABLE: Final = "unreadable_pixels"
UNSUPPORTED: Final = "unsupported_input"
MISSING: Final = "missing_original"
REPORT: Final = "report_failed"  # the outputs could not become a finding and its SR
HOT: Final = 0.5  # heatmap cells at least this fraction of the peak make up the location
WORST: Final = 3  # an ECG's windows located: the worst, and the next ones scoring positive
RUN_ROWS: Final = 256  # inputs per model run: a day-long ECG's 8,640 windows never held at once
SR_SERIES_NUMBER: Final = 9001


def uid(*parts: str) -> str:
    """A deterministic DICOM UID (2.25 form) for the given parts."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
    return f"2.25.{int(digest, 16)}"


@dataclass
class Job:
    """One study for one service: its routed instances, in order, and the study's row."""

    study: dict[str, Any]
    instances: list[dict[str, Any]]

    @property
    def study_uid(self) -> str:
        return str(self.study["study_instance_uid"])


@dataclass
class Prepared:
    """One study's model inputs, or why it has none."""

    job: Job
    arrays: list[NDArray[Any] | Windows] = field(default_factory=list)  # each instance's inputs
    owners: list[int] = field(default_factory=list)  # instance index of each input row
    geometry: list[Geometry | None] = field(default_factory=list)
    headers: list[pydicom.Dataset] = field(default_factory=list)
    waveforms: dict[int, Windows] = field(default_factory=dict)  # instance index -> its windows
    reason: str | None = None
    message: str | None = None


def prepare(service: Service, job: Job) -> Prepared:
    """Read and prepare every routed instance of one study (all or nothing)."""
    config = service.config
    out = Prepared(job)
    for index, row in enumerate(job.instances):
        try:
            ds = dicom_store.dataset(row["file_uri"])
        except dicom_store.ObjectStoreError as error:
            out.reason, out.message = MISSING, str(error)
            return out
        except Exception as error:  # a stored original pydicom cannot read at all
            out.reason, out.message = UNREADABLE, f"{type(error).__name__}: {error}"
            return out
        try:
            if config.input == "waveform" and config.waveform is not None:
                windows = out.waveforms[index] = waveform_windows(ds, config.waveform)
                out.arrays.append(windows)  # cut into windows as the model runs
                out.geometry.extend([None] * len(windows))
                out.owners.extend([index] * len(windows))
            elif config.image is not None:
                arrays, placed = image_input(ds, config.image)
                out.arrays.append(arrays)
                out.geometry.extend(placed)
                out.owners.extend([index] * len(arrays))
        except InputError as error:
            decode = "cannot be decoded" in str(error) or "no pixel" in str(error)
            out.reason, out.message = (UNREADABLE if decode else UNSUPPORTED), str(error)
            return out
        if "PixelData" in ds:
            del ds.PixelData  # the SR needs the header only; the pixels are in the arrays
        out.headers.append(ds)
    if not out.arrays:
        out.reason, out.message = UNSUPPORTED, "no instances to score"
    return out


class Model:
    """An ONNX session and the names of its inputs and outputs, run as the service's declared
    contract says (its input names and fixed batch; its outputs read by ``contract.read``)."""

    def __init__(self, service: Service, threads: int = 0) -> None:
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.service = service
        self.session = ort.InferenceSession(
            str(service.model_path), options, providers=["CPUExecutionProvider"]
        )
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, batch: NDArray[Any], sex: NDArray[np.float32] | None) -> dict[str, Any]:
        config = self.service.config
        feeds: dict[str, Any] = {config.inputs.get("image", "image"): batch}
        if "sex" in config.inputs:
            feeds[config.inputs["sex"]] = (
                sex if sex is not None else np.zeros((len(batch), 1), np.float32)
            )
        step = config.batch or len(batch)
        parts = [self._run(feeds, start, step) for start in range(0, len(batch), step)]
        raw = {name: np.concatenate([p[name] for p in parts]) for name in self.outputs}
        return contract.read(config, raw)

    def _run(self, feeds: dict[str, Any], start: int, step: int) -> dict[str, Any]:
        """One run on ``step`` inputs from ``start``: a model with a fixed batch gets the last
        part padded with zeros, and its outputs for the padding are dropped."""
        part = {name: value[start : start + step] for name, value in feeds.items()}
        n = len(next(iter(part.values())))
        if n < step:
            part = {
                name: np.concatenate([value, np.zeros((step - n, *value.shape[1:]), value.dtype)])
                for name, value in part.items()
            }
        results = self.session.run(self.outputs, part)
        return {name: value[:n] for name, value in zip(self.outputs, results, strict=True)}


def _sex(job: Job) -> float:
    return 1.0 if job.study.get("patient_sex") == "F" else 0.0


def _runs(ready: Sequence[Prepared]) -> Iterator[tuple[NDArray[Any], NDArray[np.float32]]]:
    """The studies' inputs, in order, as runs of at most ``RUN_ROWS`` rows (and each row's sex):
    a long ECG's windows are cut here, a run at a time, never all at once."""
    pieces: list[NDArray[Any]] = []
    sexes: list[NDArray[np.float32]] = []
    rows = 0
    for p in ready:
        for inputs in p.arrays:
            for first in range(0, len(inputs), RUN_ROWS):
                last = first + RUN_ROWS
                piece = (
                    inputs.stack(first, last) if isinstance(inputs, Windows) else inputs[first:last]
                )
                pieces.append(piece)
                sexes.append(np.full((len(piece), 1), _sex(p.job), np.float32))
                rows += len(piece)
                if rows >= RUN_ROWS:
                    yield np.concatenate(pieces), np.concatenate(sexes)
                    pieces, sexes, rows = [], [], 0
    if pieces:
        yield np.concatenate(pieces), np.concatenate(sexes)


def infer(model: Model, prepared: Sequence[Prepared]) -> list[dict[str, Any]]:
    """One batched run over several studies' inputs; the outputs split back per study."""
    ready = [p for p in prepared if p.reason is None]
    if not ready:
        return [{} for _ in prepared]
    parts: list[dict[str, Any]] = []
    for batch, sex in _runs(ready):
        parts.append(model.run(batch, sex))
    outputs = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    split: list[dict[str, Any]] = []
    start = 0
    for p in prepared:
        if p.reason is not None:
            split.append({})
            continue
        n = sum(len(a) for a in p.arrays)
        split.append({name: value[start : start + n] for name, value in outputs.items()})
        start += n
    return split


def _hot_box(
    heatmap: NDArray[np.float32], geometry: Geometry, height: int, width: int | None = None
) -> list[float]:
    """The box around the heatmap cells at least ``HOT`` of its peak, in source pixels (the
    grid spans the model's whole input, ``height`` x ``width``; a square if ``width`` is
    omitted)."""
    width = height if width is None else width
    grid = np.asarray(heatmap, dtype=np.float64)
    low = grid.min()
    peak = grid.max() - low
    hot = (grid - low) >= HOT * peak if peak > 0 else grid >= grid.max()
    rows, cols = np.nonzero(hot)
    cell_y, cell_x = height / grid.shape[0], width / grid.shape[1]
    x0, y0 = geometry.to_source(cols.min() * cell_x, rows.min() * cell_y)
    x1, y1 = geometry.to_source((cols.max() + 1) * cell_x, (rows.max() + 1) * cell_y)
    return [
        round(float(np.clip(x0, 0, geometry.columns)), 1),
        round(float(np.clip(y0, 0, geometry.rows)), 1),
        round(float(np.clip(x1, 0, geometry.columns)), 1),
        round(float(np.clip(y1, 0, geometry.rows)), 1),
    ]


def _segments(
    contributions: NDArray[np.float32], seconds: float, start: float = 0.0
) -> list[list[float]]:
    values = np.asarray(contributions, dtype=np.float64)
    peak = values.max() - values.min()
    hot = values - values.min() >= HOT * peak if peak > 0 else values >= values.max()
    width = seconds / len(values)
    return [
        [round(start + i * width, 3), round(start + (i + 1) * width, 3)] for i in np.nonzero(hot)[0]
    ]


def _worst_windows(
    service: Service, prepared: Prepared, outputs: dict[str, Any], pick: int
) -> tuple[list[list[float]], dict[str, Any]]:
    """The ECG's location: its worst window (``pick``) and up to ``WORST - 1`` more windows
    that score positive, worst first, each with its contributing segments in seconds from the
    recording's start; the segments list the worst window's first."""
    config = service.config
    assert config.waveform is not None
    seconds = config.waveform.seconds
    owner = prepared.owners[pick]
    rows = [r for r, o in enumerate(prepared.owners) if o == owner]
    first = rows[0]
    scores = np.asarray(outputs[config.outputs.get("score", "score")], dtype=np.float64)
    scores = scores.reshape(-1)
    heatmaps = outputs[config.outputs.get("heatmap", "heatmap")]
    ranked = sorted(rows, key=lambda r: -scores[r])
    chosen = [pick] + [r for r in ranked if r != pick and scores[r] >= service.threshold]
    windows = prepared.waveforms[owner]
    segments: list[list[float]] = []
    located = []
    for r in chosen[:WORST]:
        start = windows.starts[r - first]
        cells = _segments(np.asarray(heatmaps[r], np.float32).reshape(-1), seconds, start)
        segments += cells
        located.append(
            {"start": start, "end": round(start + seconds, 3), "score": round(float(scores[r]), 6)}
        )
    location = {
        "type": "segments",
        "seconds": segments,
        "windows": located,
        "windows_scored": len(rows),
        "leads": list(windows.leads),
        "duration_s": round(windows.seconds, 3),
    }
    return segments, location


@dataclass
class Scored:
    """One study's finding row, and the objects to store with it."""

    row: dict[str, Any]
    objects: list[tuple[str, bytes]] = field(default_factory=list)


def _base(service: Service, job: Job, now: datetime) -> dict[str, Any]:
    config = service.config
    tracking = uid(job.study_uid, service.service, service.version, config.finding_code)
    return {
        "study_instance_uid": job.study_uid,
        "series_instance_uid": None,
        "sop_instance_uid": None,
        "frame_number": None,
        "citizen_key": job.study.get("citizen_key"),
        "patient_key": job.study.get("patient_key"),
        "institution": job.study.get("institution"),
        "service": service.service,
        "finding_code": config.finding_code,
        "status": "scored",
        "reason": None,
        "message": None,
        "score": None,
        "threshold": service.threshold,
        "positive": None,
        "value": None,
        "unit": config.unit if config.kind == "regression" else None,
        "location": None,
        "heatmap_uri": None,
        "sr_uri": None,
        "instances_scored": len(job.instances),
        "algorithm_name": service.algorithm_name,
        "algorithm_version": service.version,
        "device_uid": service.device_uid,
        "tracking_id": f"{service.service}:{config.finding_code}:{job.study_uid[-12:]}",
        "tracking_uid": tracking,
        "verification": "unverified",
        "priority": 3,
        "synthetic_reference": True,
        "scored_at": now,
    }


def _failed(service: Service, prepared: Prepared, now: datetime) -> Scored:
    row = _base(service, prepared.job, now)
    row.update(
        status="failed",
        reason=prepared.reason,
        message=prepared.message,
        priority=4,
        instances_scored=0,
    )
    return Scored(row)


def _extent_mm(ds: pydicom.Dataset, geometry: Geometry) -> float | None:
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if not spacing:
        return None
    return max(geometry.rows * float(spacing[0]), geometry.columns * float(spacing[1]))


def _judge(
    service: Service, prepared: Prepared, outputs: dict[str, Any], row: dict[str, Any]
) -> int | None:
    """Fill score or value, the flag and the priority; return the located input's index, or
    None when the value cannot be had (the study then fails with ``prepared.reason``)."""
    config, names = service.config, service.config.outputs
    if config.kind == "classification":
        scores = np.asarray(outputs[names.get("score", "score")], dtype=np.float64).reshape(-1)
        pick = int(np.argmax(scores)) if config.aggregate == "max" else 0
        score = float(scores.max() if config.aggregate == "max" else scores.mean())
        row["score"] = round(score, 6)
        row["positive"] = score >= service.threshold
        urgent = score >= (1 + service.threshold) / 2
        row["priority"] = 1 if row["positive"] and urgent else 2 if row["positive"] else 3
        return pick
    values = np.asarray(outputs[names.get("value", "value")], dtype=np.float64).reshape(-1)
    if config.scale == "image_extent_mm":
        geometry = prepared.geometry[0]
        extent = _extent_mm(prepared.headers[0], geometry) if geometry else None
        if extent is None:
            prepared.reason = UNSUPPORTED
            prepared.message = "the model's value needs PixelSpacing; the image has none"
            return None
        values = values * extent
    value = float(values.mean())
    row["value"] = round(value, 2)
    age = prepared.job.study.get("patient_age_months")
    if config.flag == "deviation":
        row["positive"] = None if age is None else abs(value - age) > service.threshold
    else:
        row["positive"] = value > service.threshold
    row["priority"] = 2 if row["positive"] else 3
    return 0


def _frame(prepared: Prepared, pick: int) -> int | None:
    """The DICOM frame number (1-based) of input ``pick`` in its instance, or None when the
    instance has one frame (DICOM references a frame only in a multi-frame image).
    ``image_input`` gives an instance's frames as consecutive inputs, in frame order."""
    owner = prepared.owners[pick]
    if int(prepared.headers[owner].get("NumberOfFrames") or 1) < 2:
        return None
    return pick - prepared.owners.index(owner) + 1


def finish(service: Service, prepared: Prepared, outputs: dict[str, Any], now: datetime) -> Scored:
    """The finding row (and heatmap and SR) of one study from its model outputs."""
    if prepared.reason is not None:
        return _failed(service, prepared, now)
    config, job = service.config, prepared.job
    row = _base(service, job, now)
    pick = _judge(service, prepared, outputs, row)
    if pick is None:
        return _failed(service, prepared, now)
    instance = job.instances[prepared.owners[pick]]
    row["series_instance_uid"] = instance["series_instance_uid"]
    row["sop_instance_uid"] = instance["sop_instance_uid"]
    row["frame_number"] = _frame(prepared, pick)
    scored = Scored(row)
    box: list[float] | None = None
    segments: list[list[float]] = []
    heatmaps = outputs.get(config.outputs.get("heatmap", "heatmap"))
    if heatmaps is not None:
        heatmap = np.asarray(heatmaps[pick], dtype=np.float32)
        geometry = prepared.geometry[pick]
        if config.input == "waveform" and config.waveform is not None:
            segments, located = _worst_windows(service, prepared, outputs, pick)
            row["location"] = json.dumps(located)
        elif geometry is not None and config.image is not None:
            box = _hot_box(heatmap, geometry, config.image.height, config.image.width)
            row["location"] = json.dumps(
                {
                    "type": "box",
                    "box": box,
                    "sop_instance_uid": instance["sop_instance_uid"],
                    "frame": row["frame_number"],
                }
            )
        buffer = io.BytesIO()
        np.save(buffer, heatmap.astype(np.float16))
        key = (
            f"objects/ai/{job.study_uid}/{service.service}-{service.version}/"
            f"{instance['sop_instance_uid']}.npy"
        )
        row["heatmap_uri"] = key
        scored.objects.append((key, buffer.getvalue()))
    scored.objects.append(_report(service, prepared, row, box, segments, now))
    return scored


def _report(
    service: Service,
    prepared: Prepared,
    row: dict[str, Any],
    box: list[float] | None,
    segments: list[list[float]],
    now: datetime,
) -> tuple[str, bytes]:
    """The study's DICOM SR, as bytes under its object-store key; its key goes in the row."""
    job, config = prepared.job, service.config
    series_uid = uid(job.study_uid, service.service, service.version, "sr-series")
    sop_uid = uid(job.study_uid, service.service, service.version, "sr")
    finding = sr.SrFinding(
        finding_code=config.finding_code,
        finding_meaning=config.finding_en,
        sop_instance_uid=row["sop_instance_uid"],
        tracking_id=row["tracking_id"],
        tracking_uid=row["tracking_uid"],
        score=row["score"],
        threshold=service.threshold,
        positive=bool(row["positive"]),
        value=row["value"],
        unit=row["unit"],
        box=(box[0], box[1], box[2], box[3]) if box else None,
        segments_s=tuple((s[0], s[1]) for s in segments),
        frame_number=row["frame_number"],
    )
    algorithm = sr.Algorithm(
        service.algorithm_name, service.version, service.device_uid, service.service
    )
    report = sr.report_file(
        prepared.headers, [finding], algorithm, series_uid, sop_uid, SR_SERIES_NUMBER, 1, now
    )
    key = dicom_store.object_key(job.study_uid, series_uid, sop_uid)
    row["sr_uri"] = key
    return key, report


def chunks(jobs: Sequence[Job], batch: int) -> list[list[Job]]:
    """Consecutive jobs grouped to about ``batch`` instances each (one run of the model)."""
    out: list[list[Job]] = []
    group: list[Job] = []
    size = 0
    for job in jobs:
        group.append(job)
        size += len(job.instances)
        if size >= batch:
            out.append(group)
            group, size = [], 0
    if group:
        out.append(group)
    return out


_MODELS: dict[tuple[str, str], Model] = {}
Task = tuple[Service, list[Job], datetime, int]


def score_chunk(task: Task) -> list[dict[str, Any]]:
    """Prepare, infer and finish one chunk of one service's studies, store each study's heatmap
    and SR, and return the finding rows (in a worker process, or in this one).

    The objects are stored here, where they were made, so that their bytes never travel back
    to the parent and their encryption runs on every core. ``replace``: an object under these
    keys can only be left from a run that stopped before writing its rows (pending studies
    have no row for this version), and the row written next must point at this run's object.
    Each process keeps one session per model version.
    """
    service, group, now, threads = task
    model = _MODELS.get((service.service, service.version))
    if model is None:
        model = _MODELS[(service.service, service.version)] = Model(service, threads)
    prepared = [prepare(service, job) for job in group]
    rows = []
    for p, outputs in zip(prepared, infer(model, prepared), strict=True):
        try:
            scored = finish(service, p, outputs, now)
            for key, data in scored.objects:
                dicom_store.put(key, data, replace=True)
        except Exception as error:  # one study's report must not stop the city's scoring
            p.reason, p.message = REPORT, f"{type(error).__name__}: {error}"
            scored = _failed(service, p, now)
        rows.append(scored.row)
    return rows


class Scorers:
    """The scoring processes, as a context manager; ``score`` runs work through them.

    With ``workers`` > 1, ``workers - 1`` processes (``lakehouse.pool``) start on entry, each
    importing this module at once, so that their imports overlap the caller's reading of what
    is pending; this process scores beside them, in a thread. It has imported everything
    already: one process fewer pays the imports (about a second of CPU each, which on a machine
    whose cores all score is time every run waits for). One pool serves every service, each
    process keeping a one-thread session per model (so decoding, preprocessing, inference and
    the SRs use every core). One worker scores in this process, with ``threads`` for
    onnxruntime.
    """

    def __init__(self, workers: int = 1, threads: int = 0) -> None:
        self.workers = max(workers, 1)
        self.pool = WorkerPool(
            self.workers - 1,
            name="scorer",
            initializer=import_module,
            initargs=(__name__,),
            spawn_one=True,
        )
        self.threads = threads if workers <= 1 else 1

    def __enter__(self) -> Scorers:
        self.pool.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.close()

    def score(
        self, work: Sequence[tuple[Service, Sequence[Job]]], now: datetime, batch: int = 64
    ) -> Iterator[dict[str, Any]]:
        """Every job's finding row, about ``batch`` model inputs per run, a chunk's rows
        together (in order with one worker; as the chunks finish with more); the heatmaps and
        SRs are stored before their rows are returned."""
        tasks: list[Task] = [
            (service, group, now, self.threads)
            for service, jobs in work
            for group in chunks(jobs, batch)
        ]
        if self.workers <= 1 or len(tasks) < 2:
            for task in tasks:
                yield from score_chunk(task)
            return
        yield from self._beside(tasks)

    def _beside(self, tasks: list[Task]) -> Iterator[dict[str, Any]]:
        """The pool's processes and a thread of this one each take the next task when free.

        The thread's rows wait in a queue until the pool's next chunk (or its end) comes; an
        exception in the thread is raised here. On leaving early the thread finishes the chunk
        it holds and takes no other.
        """
        lock, stop = threading.Lock(), threading.Event()
        remaining = iter(tasks)
        done: queue.SimpleQueue[list[dict[str, Any]] | BaseException | None] = queue.SimpleQueue()

        def claim() -> Iterator[Task]:  # one per taker: a generator runs in one thread at once
            while not stop.is_set():
                with lock:
                    task = next(remaining, None)
                if task is None:
                    return
                yield task

        def here() -> None:
            try:
                for task in claim():
                    done.put(score_chunk(task))
            except BaseException as error:  # raised in the caller's thread instead
                done.put(error)
            done.put(None)

        ended = False

        def drained(block: bool) -> Iterator[dict[str, Any]]:
            nonlocal ended
            while not ended and (block or not done.empty()):
                item = done.get()
                if item is None:
                    ended = True
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield from item

        thread = threading.Thread(target=here, name="scorer-0", daemon=True)
        # What this process holds already (Dagster, the tables read, the work) is set aside
        # from the collector while it scores: the SRs make garbage fast, and each full
        # collection walked all of it (about 0.4 s of a 5 s run in the scoring benchmark).
        gc.freeze()
        thread.start()
        try:
            for rows in self.pool.map(score_chunk, claim()):
                yield from rows
                yield from drained(block=False)
            yield from drained(block=True)
        finally:
            stop.set()
            thread.join()
            gc.unfreeze()
