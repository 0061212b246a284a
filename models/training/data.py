"""Labelled model inputs from the synthetic city's own studies, prepared exactly as the scorer does.

For each split, ``split_data`` builds imaging orders for the service's exams (half normal, half
abnormal, sex and age drawn within each exam's eligibility), renders and encodes each one with
``synth.imaging.assemble.assemble`` (real DICOM bytes, as a clinic would send them), reads every
object back with pydicom and turns it into model input with ``models.runtime.preprocess``, the
one chain the scorer uses. Objects the router would hold back are skipped: studies whose truth
routes them elsewhere (burned-in annotation) and the FOR PROCESSING instances listed under
``held_back``.

Labels come from the truth record: an instance is positive when the truth locates the finding on
it (``locations``), so a study's normal slices or views are negatives. An ECG becomes the scorer's
windows (``models.runtime.waveform``), each positive when it overlaps the truth's finding segments
by at least ``OVERLAP_S``; each study records its lead set (``12-lead``, ``2-lead``, ``1-lead``).
Regressions take the study's value (bone age in months; leg-length
difference as a fraction of the image's longer side in mm, the scorer's ``image_extent_mm``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray

from models.runtime.preprocess import Geometry, image_input
from models.runtime.waveform import waveform_windows
from models.training.spec import OVERLAP_S, SPLIT_SEEDS, ServiceSpec
from synth.imaging.assemble import assemble
from synth.imaging.exams import exam as exam_row
from synth.imaging.orders import ImagingOrder

log = logging.getLogger(__name__)

# Enrolled-clinic codes the studies are spread over: each has its own export habits (VR, character
# set, MONOCHROME1, vendor), drawn by the synthetic city from the code.
INSTITUTIONS = tuple(f"3610{k:04d}" for k in range(11, 251, 20))
NAMES = ("김민준", "이서연", "박지훈", "최수아", "정예준", "윤지민", "남궁민수", "황보하늘")
OLDEST = 95  # years: the exams' upper age limit (120) reaches past any plausible patient


@dataclass
class Split:
    """One split's inputs and labels.

    Attributes:
        x: Model inputs, one row per instance (or frame): ``(n, C, S, S)`` or ``(n, leads, T)``.
        label: Instance label (1: the finding shows on it).
        study: Index of the instance's study.
        study_label: Study truth ``abnormal``.
        value: Study regression truth in the model's unit (months; mm for leg length), else NaN.
        target: Instance regression target in the model's output unit (leg length: the fraction
            of the image's longer side), else NaN.
        extent_mm: Instance image's longer side in mm (PixelSpacing), else NaN.
        sex: Study sex, 1.0 female.
        age_months: Study chronological age in months.
        exam: Study exam code; finding: the truth's finding code ("" when normal).
        skipped: Studies left out because the router would hold them back.
        lead_set: Study's ECG lead set (``12-lead``, ``2-lead``, ``1-lead``), else "".
    """

    x: NDArray[np.float32]
    label: NDArray[np.int8]
    study: NDArray[np.int32]
    study_label: NDArray[np.int8]
    value: NDArray[np.float64]
    target: NDArray[np.float64]
    extent_mm: NDArray[np.float64]
    sex: NDArray[np.float32]
    age_months: NDArray[np.float64]
    exam: list[str]
    finding: list[str]
    skipped: int
    lead_set: list[str]

    @property
    def studies(self) -> int:
        return len(self.study_label)

    def save(self, path: Path) -> None:
        meta = np.array([self.exam, self.finding, self.lead_set], dtype=object)
        np.savez(
            path,
            x=self.x,
            label=self.label,
            study=self.study,
            study_label=self.study_label,
            value=self.value,
            target=self.target,
            extent_mm=self.extent_mm,
            sex=self.sex,
            age_months=self.age_months,
            meta=meta,
            skipped=np.array(self.skipped),
        )

    @classmethod
    def load(cls, path: Path) -> Split:
        with np.load(path, allow_pickle=True) as z:
            meta = z["meta"]
            return cls(
                x=z["x"],
                label=z["label"],
                study=z["study"],
                study_label=z["study_label"],
                value=z["value"],
                target=z["target"],
                extent_mm=z["extent_mm"],
                sex=z["sex"],
                age_months=z["age_months"],
                exam=[str(v) for v in meta[0]],
                finding=[str(v) for v in meta[1]],
                skipped=int(z["skipped"]),
                lead_set=[str(v) for v in meta[2]],
            )


def study_max(split: Split, per_instance: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each study's highest input value (its instances' or windows' scores, as the scorer
    aggregates)."""
    out = np.full(split.studies, -np.inf)
    np.maximum.at(out, split.study, per_instance)
    return out


def study_mean(split: Split, per_instance: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each study's mean input value (regressions)."""
    sums = np.bincount(split.study, weights=per_instance, minlength=split.studies)
    counts = np.bincount(split.study, minlength=split.studies)
    return np.asarray(sums / np.maximum(counts, 1), dtype=np.float64)


def _rng(spec: ServiceSpec, split: str, index: int) -> np.random.Generator:
    key = hashlib.blake2b(f"{spec.service}/{split}".encode(), digest_size=8).digest()
    return np.random.default_rng([SPLIT_SEEDS[split], int.from_bytes(key, "little"), index])


def order_for(spec: ServiceSpec, split: str, index: int) -> ImagingOrder:
    """The ``index``-th order of a split: exams in turn, normal and abnormal in turn per exam."""
    r = _rng(spec, split, index)
    code = spec.exams[index % len(spec.exams)]
    row = exam_row(code)
    abnormal = (index // len(spec.exams)) % 2 == 1
    sex = row.sex or ("F" if r.random() < 0.5 else "M")
    months = int(r.integers(row.age_min * 12, (min(row.age_max, OLDEST) + 1) * 12))
    day = int(r.integers(1, 29))
    studied = datetime(2024, 1 + int(r.integers(0, 12)), day, 8) + timedelta(
        minutes=int(r.integers(0, 600))
    )
    total = studied.year * 12 + studied.month - 1 - months
    born = date(total // 12, total % 12 + 1, int(r.integers(1, day + 1)))
    digit = (1 if sex == "M" else 2) + (2 if born.year >= 2000 else 0)
    return ImagingOrder(
        accession=f"M{split[0].upper()}{index:06d}",
        exam=code,
        patient_id=f"{born:%y%m%d}-{digit}{int(r.integers(0, 1_000_000)):06d}",
        patient_name=NAMES[int(r.integers(len(NAMES)))],
        sex=sex,
        birth_date=born,
        institution_code=INSTITUTIONS[int(r.integers(len(INSTITUTIONS)))],
        institution_name="광주시범의원",
        study_datetime=studied,
        abnormal=abnormal,
        visit_key=f"S{index:09d}",
    )


def extent_mm(ds: pydicom.Dataset, geometry: Geometry) -> float:
    """The image's longer side in mm, as the scorer computes it for ``image_extent_mm``."""
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    if not spacing:
        return float("nan")
    return max(geometry.rows * float(spacing[0]), geometry.columns * float(spacing[1]))


@dataclass
class _Rows:
    x: list[NDArray[np.float32]]
    label: list[int]
    study: list[int]
    target: list[float]
    extent: list[float]


def _window_labels(
    ds: pydicom.Dataset, starts: tuple[float, ...], seconds: float, truth: dict[str, Any]
) -> list[bool]:
    """Whether each window (start, in s) overlaps the truth's finding segments (samples at the
    recording's own rate) by at least ``OVERLAP_S``."""
    rate = float(ds.WaveformSequence[0].SamplingFrequency)
    segments = [(a / rate, b / rate) for a, b in truth["ecg_segments"] or []]
    return [any(min(s + seconds, b) - max(s, a) >= OVERLAP_S for a, b in segments) for s in starts]


def _study_rows(
    spec: ServiceSpec, truth: dict[str, Any], objects: list[Any], index: int, rows: _Rows
) -> str:
    """Append the study's model inputs to ``rows``; return its ECG lead set ("" for images)."""
    held = {h["sop_instance_uid"] for h in truth["held_back"]}
    lead_set = ""
    located = {loc["sop_instance_uid"] for loc in truth["locations"]}
    value = truth["value"]
    for obj in objects:
        if obj.sop_uid in held:
            continue
        ds = pydicom.dcmread(io.BytesIO(obj.data))
        if spec.waveform is not None:
            windows = waveform_windows(ds, spec.waveform)
            arrays = windows.x
            extents = [float("nan")] * len(arrays)
            labels = _window_labels(ds, windows.starts, spec.waveform.seconds, truth)
            lead_set = f"{len(windows.leads)}-lead"
        else:
            assert spec.image is not None
            arrays, placed = image_input(ds, spec.image)
            extents = [extent_mm(ds, g) for g in placed]
            labels = [obj.sop_uid in located] * len(arrays)
        for array, extent, positive in zip(arrays, extents, labels, strict=True):
            rows.x.append(array)
            rows.label.append(int(positive))
            rows.study.append(index)
            rows.extent.append(extent)
            if value is None:
                rows.target.append(float("nan"))
            elif spec.scale == "image_extent_mm":
                rows.target.append(float(value) / extent)
            else:
                rows.target.append(float(value))
    return lead_set


def split_data(spec: ServiceSpec, split: str, cache: Path | None = None) -> Split:
    """Render, encode, read back and prepare one split's studies (cached under ``cache``)."""
    key = repr(
        (spec.exams, spec.counts.of(split), spec.image, spec.waveform, spec.scale, OVERLAP_S, 2)
    )
    digest = hashlib.blake2b(key.encode(), digest_size=6).hexdigest()
    path = cache / f"{spec.service}-{split}-{digest}.npz" if cache else None
    if path is not None and path.exists():
        return Split.load(path)
    started = time.perf_counter()
    rows = _Rows([], [], [], [], [])
    study_label: list[int] = []
    values: list[float] = []
    sexes: list[float] = []
    ages: list[float] = []
    exams: list[str] = []
    findings: list[str] = []
    lead_sets: list[str] = []
    skipped = 0
    for index in range(spec.counts.of(split)):
        order = order_for(spec, split, index)
        study, _faults = assemble(order, SPLIT_SEEDS[split])
        truth = study.truth
        if truth["expected_route"] != spec.service:
            skipped += 1
            continue
        lead_sets.append(_study_rows(spec, truth, study.objects, len(study_label), rows))
        study_label.append(int(truth["abnormal"]))
        values.append(float("nan") if truth["value"] is None else float(truth["value"]))
        sexes.append(1.0 if order.sex == "F" else 0.0)
        ages.append(float(order.age_months))
        exams.append(order.exam)
        findings.append(truth["finding_code"] or "")
    out = Split(
        x=np.stack(rows.x).astype(np.float32),
        label=np.asarray(rows.label, dtype=np.int8),
        study=np.asarray(rows.study, dtype=np.int32),
        study_label=np.asarray(study_label, dtype=np.int8),
        value=np.asarray(values, dtype=np.float64),
        target=np.asarray(rows.target, dtype=np.float64),
        extent_mm=np.asarray(rows.extent, dtype=np.float64),
        sex=np.asarray(sexes, dtype=np.float32),
        age_months=np.asarray(ages, dtype=np.float64),
        exam=exams,
        finding=findings,
        skipped=skipped,
        lead_set=lead_sets,
    )
    log.info(
        "%s %s: %d studies (%d skipped as held back), %d inputs in %.1f s",
        spec.service,
        split,
        out.studies,
        skipped,
        len(out.x),
        time.perf_counter() - started,
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        out.save(path)
    return out
