"""One order to encoded DICOM objects plus its ground truth, in memory.

Decides how the clinic delivers the study (blank BodyPartExamined, burned-in annotation,
additional FOR PROCESSING mammograms, RLE, MONOCHROME1, a two-part upload), renders it, and
encodes every object. All choices come from the accession's own stream, split into independent
render, delivery and fault streams, so nothing depends on other studies or on worker count.

Hold-back reasons, in the order the router is expected to apply them: ``qa_phantom``,
``burned_in_annotation``, ``no_service``; otherwise the route is the exam's service. FOR
PROCESSING images travel beside the FOR PRESENTATION ones of the same study, so such a study
still routes to mammography and lists those instances under ``held_back``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from synth.imaging.burn_in import burn
from synth.imaging.dicom_common import SeriesHeader, StudyHeader
from synth.imaging.dicom_ecg import ecg as ecg_object
from synth.imaging.dicom_images import BUILDERS, ImageSpec, mr
from synth.imaging.encoder import encode
from synth.imaging.exams import QA_EXAM, exam
from synth.imaging.orders import ImagingOrder
from synth.imaging.render import render_exam
from synth.imaging.rendered import RenderedImage, RenderedSeries, RenderedStudy
from synth.imaging.sites import Site, site
from synth.rng import stream

BLANK_BODY_PART = 0.15  # studies whose modality leaves BodyPartExamined empty
BURNED_IN = 0.02  # CR/DX studies exported with burned-in annotation
FOR_PROCESSING = 0.10  # mammography studies that also send the raw images
RLE = 0.03  # CT/MR studies a gateway re-encodes as RLE Lossless
SPLIT = 0.10  # multi-series studies that arrive in two uploads
FOR_PROCESSING_SERIES = 100  # raw series are numbered 101, 102, ...


@dataclass(frozen=True)
class Plan:
    """How one study is delivered."""

    blank_body_part: bool
    burned_in: bool
    for_processing: bool
    rle: bool
    split: bool
    split_point: float  # where a split study is cut, as a fraction of its series
    first_upload: datetime
    second_upload: datetime

    @classmethod
    def draw(cls, order: ImagingOrder, modality: str, r: np.random.Generator) -> Plan:
        first = order.study_datetime + timedelta(minutes=float(r.uniform(5, 120)))
        second = first + timedelta(minutes=float(r.uniform(3, 360)))
        return cls(
            blank_body_part=bool(r.random() < BLANK_BODY_PART),
            burned_in=modality in ("CR", "DX")
            and order.exam != QA_EXAM
            and bool(r.random() < BURNED_IN),
            for_processing=modality == "MG" and bool(r.random() < FOR_PROCESSING),
            rle=modality in ("CT", "MR") and bool(r.random() < RLE),
            split=bool(r.random() < SPLIT),
            split_point=float(r.random()),
            first_upload=first.replace(microsecond=0),
            second_upload=second.replace(microsecond=0),
        )

    def split_after(self, series_count: int) -> int | None:
        """How many series the first upload carries, or None when the study arrives whole."""
        if not self.split or series_count < 2:
            return None
        return 1 + int(self.split_point * (series_count - 1))


def _streams(order: ImagingOrder, seed: int) -> list[np.random.Generator]:
    """The accession's render, delivery and fault streams."""
    return stream(seed, "imaging", order.accession).spawn(3)


def delivery_plan(order: ImagingOrder, seed: int) -> Plan:
    """The delivery plan ``assemble`` uses for this order (without rendering it)."""
    return Plan.draw(order, exam(order.exam).modality, _streams(order, seed)[1])


@dataclass(frozen=True)
class EncodedObject:
    """One DICOM file's bytes and where it belongs."""

    data: bytes
    part: int  # 0 or 1: which upload carries it
    modality: str
    series_number: int
    series_index: int  # position of its series within its upload
    instance_number: int
    series_uid: str
    sop_uid: str


@dataclass
class AssembledStudy:
    """A study ready to be written: objects, uploads and the ground-truth record."""

    order: ImagingOrder
    site: Site
    objects: list[EncodedObject]
    uploads: list[datetime]
    truth: dict[str, Any]


def _for_processing(series: RenderedSeries) -> RenderedSeries:
    """The raw detector image behind a processed mammogram: log signal, flat and inverted."""
    raw = tuple(
        replace(
            img,
            boxes=(),
            pixels=np.clip(3300 - 0.6 * img.pixels.astype(np.float32), 0, 4095).astype(np.uint16),
        )
        for img in series.images
    )
    return replace(series, description=f"{series.description} RAW", images=raw)


def _burned(order: ImagingOrder, image: RenderedImage, bits: int) -> RenderedImage:
    """The image as a console that stamps ID, date and side marker into the pixels sends it."""
    marker = image.laterality if image.laterality in ("R", "L") else image.view
    lines = [f"ID {order.patient_id}", f"{order.study_datetime:%Y.%m.%d %H:%M}", marker]
    pixels = burn(np.asarray(image.pixels, dtype=np.uint16), lines, (1 << bits) - 1)
    return replace(image, pixels=pixels)


def _route(order: ImagingOrder, service: str | None, plan: Plan) -> str:
    """Where the router should send the study, or why it should hold it back."""
    if order.exam == QA_EXAM:
        return "qa_phantom"
    if plan.burned_in:
        return "burned_in_annotation"
    return service or "no_service"


def assemble(order: ImagingOrder, seed: int) -> tuple[AssembledStudy, np.random.Generator]:
    """Render and encode one order; also returns the study's fault stream for the writer."""
    row = exam(order.exam)
    place = site(seed, order.institution_code)
    render_rng, delivery, faults = _streams(order, seed)
    study = render_exam(order, render_rng)
    plan = Plan.draw(order, row.modality, delivery)
    header = StudyHeader.of(order, row, seed, place, plan.blank_body_part)
    objects = _encode(order, study, header, place, plan, row.modality)
    series_count = len(study.series) * (2 if plan.for_processing else 1)
    split = plan.split_after(series_count) is not None
    uploads = [plan.first_upload] + ([plan.second_upload] if split else [])
    truth = _truth(order, study, header, plan, objects)
    return AssembledStudy(order, place, objects, uploads, truth), faults


def _series_list(study: RenderedStudy, plan: Plan) -> list[tuple[int, RenderedSeries, bool]]:
    """(series number, series, is FOR PROCESSING) in upload order."""
    out = [(i + 1, s, False) for i, s in enumerate(study.series)]
    if plan.for_processing:
        out += [
            (FOR_PROCESSING_SERIES + i + 1, _for_processing(s), True)
            for i, s in enumerate(study.series)
        ]
    return out


def _encode(
    order: ImagingOrder,
    study: RenderedStudy,
    header: StudyHeader,
    place: Site,
    plan: Plan,
    modality: str,
) -> list[EncodedObject]:
    """Build and encode every object of the study as this site's devices send it."""
    maker, model = place.device(modality)
    station = f"{modality}{1 + place.vendor[modality]:02d}"
    frame_of_reference = header.uid("frame-of-reference")
    if study.waveform is not None:
        series = SeriesHeader(
            1,
            header.uid("series", 1),
            modality,
            "12 Lead ECG",
            order.study_datetime,
            maker,
            model,
            station,
            frame_of_reference,
        )
        sop_uid = header.uid("series", 1, "instance", 1)
        obj = ecg_object(header, series, study.waveform, sop_uid)
        return [
            EncodedObject(encode(obj, implicit_vr=False), 0, modality, 1, 0, 1, series.uid, sop_uid)
        ]
    objects = []
    mono1 = (modality == "CR" and place.cr_monochrome1) or (
        modality == "DX" and place.dx_monochrome1
    )
    listed = _series_list(study, plan)
    split_after = plan.split_after(len(listed))
    for position, (number, rendered, raw) in enumerate(listed):
        part = 1 if split_after is not None and position >= split_after else 0
        started = order.study_datetime + timedelta(seconds=90 * position)
        series = SeriesHeader(
            number,
            header.uid("series", number),
            modality,
            rendered.description,
            started,
            maker,
            model,
            station,
            frame_of_reference,
        )
        index_in_part = position - (split_after or 0) if part else position
        for k, frame in enumerate(rendered.images, start=1):
            image = _burned(order, frame, rendered.bits_stored) if plan.burned_in else frame
            spec = ImageSpec(
                rendered,
                image,
                k,
                header.uid("series", number, "instance", k),
                monochrome1=mono1,
                burned_in=plan.burned_in,
                for_processing=raw,
                rle=plan.rle,
            )
            if modality == "MR":
                obj = mr(header, series, spec, place.field_strength)
            else:
                obj = BUILDERS[modality](header, series, spec)
            objects.append(
                EncodedObject(
                    encode(obj, place.implicit_vr),
                    part,
                    modality,
                    number,
                    index_in_part,
                    k,
                    series.uid,
                    spec.sop_uid,
                )
            )
    return objects


def _truth(
    order: ImagingOrder,
    study: RenderedStudy,
    header: StudyHeader,
    plan: Plan,
    objects: list[EncodedObject],
) -> dict[str, Any]:
    """The ground-truth record (files are added by the writer). It never holds the RRN."""
    by_series = {(o.series_number, o.instance_number): o for o in objects}
    locations = [
        {
            "series_uid": by_series[(n, k)].series_uid,
            "sop_instance_uid": by_series[(n, k)].sop_uid,
            "frame": 1,
            "box": list(box),
        }
        for n, rendered in enumerate(study.series, start=1)
        for k, image in enumerate(rendered.images, start=1)
        for box in image.boxes
    ]
    held_back = [
        {"sop_instance_uid": o.sop_uid, "reason": "for_processing"}
        for o in objects
        if o.series_number > FOR_PROCESSING_SERIES
    ]
    return {
        "accession": order.accession,
        "study_uid": header.study_uid,
        "institution_code": order.institution_code,
        "exam": order.exam,
        "service": study.service,
        "modality": exam(order.exam).modality,
        "abnormal": study.abnormal,
        "finding_code": study.finding_code,
        "locations": locations,
        "value": study.value,
        "ecg_segments": [list(s) for s in study.ecg_segments] if study.waveform else None,
        "expected_route": _route(order, study.service, plan),
        "held_back": held_back,
        "body_part_blank": plan.blank_body_part,
    }
