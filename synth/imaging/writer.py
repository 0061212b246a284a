"""Write the imaging deliveries and their ground truth.

``write_imaging`` renders every order into DICOM files under
``<out>/imaging/<YKIHO>/<upload folder>/...`` (see ``synth.imaging.layout``), injects file faults
when asked, and writes ``<out>/ground_truth/imaging_studies.jsonl``, one line per study in
accession order, which the pipelines never read.

Studies are independent, so ``workers`` processes write them in parallel; results come back in
order and every random choice comes from the accession's own stream, so the bytes do not depend
on the worker count. Faults are drawn per file and per upload folder at ``synth.faults.RATES``;
afterwards any kind that happened not to occur is placed on a deterministic file, so every kind is
present whenever there are at least three studies.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from lakehouse.pool import WorkerPool
from synth.faults import CORRUPT_DICOM, NOT_DICOM, RATES, TRUNCATED_DICOM, Fault, FaultLog
from synth.imaging import damage
from synth.imaging.assemble import assemble
from synth.imaging.layout import Slot, file_path, upload_folder
from synth.imaging.orders import ImagingOrder
from synth.rng import stream

SOURCE = "imaging"
GROUND_TRUTH = Path("ground_truth") / "imaging_studies.jsonl"
KST = timezone(timedelta(hours=9))


def _landed(path: Path, sent: datetime) -> None:
    """Give a written file the time its upload agent wrote it (the pipeline reads a file's
    modification time as when it landed)."""
    stamp = sent.replace(tzinfo=KST).timestamp()
    os.utime(path, (stamp, stamp))


@dataclass(frozen=True)
class ImagingSummary:
    """What ``write_imaging`` produced.

    Attributes:
        studies: Studies written (one per order).
        files: Files under ``imaging/``: DICOM objects and stray non-DICOM files.
        bytes: Their total size.
        uploads: Upload folders.
        studies_per_exam: Study count per exam code.
        studies_per_service: Study count per service (``none`` for exams no service reads).
        files_per_exam: DICOM file count per exam code.
        ground_truth: Path of the ground-truth JSON Lines file.
    """

    studies: int
    files: int
    bytes: int
    uploads: int
    studies_per_exam: dict[str, int]
    studies_per_service: dict[str, int]
    files_per_exam: dict[str, int]
    ground_truth: Path


@dataclass
class _Written:
    """One study's outcome as a worker reports it."""

    truth: dict[str, object]
    exam: str
    service: str
    uploads: list[str]
    files: list[str]
    faults: list[Fault] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    order: ImagingOrder
    seed: int
    out: Path
    faults: bool


def _rel(out: Path, path: Path) -> str:
    return path.relative_to(out).as_posix()


def _write_study(job: _Job) -> _Written:
    """Assemble one study and write its upload folders (run in a worker process)."""
    assembled, fault_rng = assemble(job.order, job.seed)
    order = job.order
    base = job.out / SOURCE / order.institution_code
    folders = [base / upload_folder(sent, order.accession) for sent in assembled.uploads]
    written = _Written(
        assembled.truth,
        order.exam,
        str(assembled.truth["service"] or "none"),
        [_rel(job.out, f) for f in folders],
        [],
    )
    counters = [0] * len(folders)
    for obj in assembled.objects:
        slot = Slot(
            str(assembled.truth["study_uid"]),
            obj.modality,
            obj.series_number,
            obj.series_index,
            obj.instance_number,
            counters[obj.part],
            obj.sop_uid,
        )
        counters[obj.part] += 1
        target = folders[obj.part] / file_path(assembled.site.layout, slot)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = obj.data
        if job.faults:
            data = _maybe_damage(data, fault_rng, _rel(job.out, target), written.faults)
        target.write_bytes(data)
        _landed(target, assembled.uploads[obj.part])
        written.files.append(_rel(job.out, target))
    if job.faults:
        for folder, sent in zip(folders, assembled.uploads, strict=True):
            if fault_rng.random() < RATES[NOT_DICOM]:
                written.faults.append(_stray(job.out, folder, fault_rng, sent))
    written.truth["uploads"] = written.uploads
    written.truth["files"] = written.files
    return written


def _maybe_damage(data: bytes, rng: np.random.Generator, rel: str, faults: list[Fault]) -> bytes:
    u = float(rng.random())
    if u < RATES[TRUNCATED_DICOM]:
        cut = damage.truncate(data, rng)
        faults.append(
            Fault(
                rel, None, TRUNCATED_DICOM, SOURCE, detail=f"cut at {len(cut)} of {len(data)} bytes"
            )
        )
        return cut
    if u < RATES[TRUNCATED_DICOM] + RATES[CORRUPT_DICOM]:
        faults.append(
            Fault(
                rel, None, CORRUPT_DICOM, SOURCE, detail="preamble prefix and file meta overwritten"
            )
        )
        return damage.corrupt(data, rng)
    return data


def _stray(out: Path, folder: Path, rng: np.random.Generator, sent: datetime) -> Fault:
    name, content = damage.stray(rng)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    _landed(folder / name, sent)
    return Fault(
        _rel(out, folder / name),
        None,
        NOT_DICOM,
        SOURCE,
        detail=f"stray {name} in an upload folder",
    )


def _results(jobs: list[_Job], workers: int) -> Iterator[_Written]:
    with WorkerPool(workers if len(jobs) > 1 else 1, name="imaging-writer") as pool:
        yield from pool.map(_write_study, jobs, pool.chunksize(len(jobs), most=16))


def _force_missing(results: list[_Written], out: Path, seed: int) -> list[Fault]:
    """Place each fault kind that did not occur by chance on a deterministic file."""
    present = {f.kind for r in results for f in r.faults}
    damaged = {f.path for r in results for f in r.faults}
    added: list[Fault] = []
    for start, kind in enumerate((TRUNCATED_DICOM, CORRUPT_DICOM, NOT_DICOM)):
        if kind in present or not results:
            continue
        rng = stream(seed, "imaging", "forced-fault", kind)
        ordered = results[start % len(results) :] + results[: start % len(results)]
        if kind == NOT_DICOM:
            sent = datetime.fromtimestamp((out / ordered[0].files[0]).stat().st_mtime, KST)
            added.append(_stray(out, out / ordered[0].uploads[0], rng, sent.replace(tzinfo=None)))
            continue
        target = next((p for r in ordered for p in reversed(r.files) if p not in damaged), None)
        if target is None:
            continue
        path = out / target
        landed_at = path.stat().st_mtime
        data = path.read_bytes()
        if kind == TRUNCATED_DICOM:
            cut = damage.truncate(data, rng)
            path.write_bytes(cut)
            detail = f"cut at {len(cut)} of {len(data)} bytes"
        else:
            path.write_bytes(damage.corrupt(data, rng))
            detail = "preamble prefix and file meta overwritten"
        os.utime(path, (landed_at, landed_at))
        damaged.add(target)
        added.append(Fault(target, None, kind, SOURCE, detail=detail))
    return added


def write_imaging(
    orders: Iterable[ImagingOrder], out: Path, seed: int, faults: FaultLog, workers: int = 1
) -> ImagingSummary:
    """Write every order's study as the clinic uploads it, plus the ground truth.

    Args:
        orders: The imaging orders; accessions must be unique. Output is in accession order
            whatever order they come in.
        out: The output root (``--out``).
        seed: The city seed; the same seed gives byte-identical files.
        faults: Receives every injected fault; faults are injected only if it is enabled.
        workers: Worker processes; the output does not depend on it.
    """
    ordered = sorted(orders, key=lambda o: o.accession)
    accessions = [o.accession for o in ordered]
    if len(set(accessions)) != len(accessions):
        raise ValueError("imaging orders have duplicate accession numbers")
    jobs = [_Job(o, seed, out, faults.enabled) for o in ordered]
    results = list(_results(jobs, workers))
    injected = [f for r in results for f in r.faults]
    if faults.enabled:
        injected += _force_missing(results, out, seed)
    faults.extend(injected)
    target = out / GROUND_TRUTH
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as fh:
        for result in results:
            fh.write(json.dumps(result.truth, ensure_ascii=False, separators=(",", ":")) + "\n")
    files = [f for r in results for f in r.files] + [
        f.path for f in injected if f.kind == NOT_DICOM
    ]
    return ImagingSummary(
        studies=len(results),
        files=len(files),
        bytes=sum((out / f).stat().st_size for f in files),
        uploads=sum(len(r.uploads) for r in results),
        studies_per_exam=dict(sorted(Counter(r.exam for r in results).items())),
        studies_per_service=dict(sorted(Counter(r.service for r in results).items())),
        files_per_exam=dict(sorted(Counter(r.exam for r in results for _ in r.files).items())),
        ground_truth=target,
    )
