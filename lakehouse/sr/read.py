"""The findings of an SR the writer made, read back with highdicom's parser.

Reading goes through highdicom, not the writer's own knowledge of the bytes, so that what the
platform stores is a document a standard SR reader understands (docs/sr.md).
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.coding import Code

from lakehouse.sr.codes import (
    ALGORITHM_NAME,
    ALGORITHM_VERSION,
    COMPREHENSIVE_3D_SR,
    DEVICE,
    IMAGING_MEASUREMENTS,
    PRESENT,
    PROBABILITY,
    SEGMENT_END,
    SEGMENT_START,
    SOURCE,
    THRESHOLD,
    UNITS,
)

Group = (
    hd.sr.MeasurementsAndQualitativeEvaluations
    | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
)


def _float32(value: float) -> float:
    """A coordinate as written (SCOORD data are 32-bit floats): the shortest decimal for it."""
    return float(str(np.float32(value)))


def texts(item: pydicom.Dataset, name: Code) -> list[str]:
    """The values of the TEXT items named ``name`` directly under ``item``."""
    return [
        str(i.value)
        for i in hd.sr.utils.find_content_items(
            item, name=name, value_type=hd.sr.ValueTypeValues.TEXT
        )
    ]


def _values(group: Group, name: Code) -> list[tuple[float, str]]:
    return [(float(m.value), str(m.unit.value)) for m in group.get_measurements(name=name)]


Location = tuple[str | None, tuple[float, float, float, float] | None, int | None]


def _frame(reference: hd.sr.ImageContentItem) -> int | None:
    """The one frame an image reference names (Referenced Frame Number), if any."""
    frames = reference.referenced_frame_numbers
    if not frames:
        return None
    if len(frames) > 1:
        raise ValueError(f"a finding's source names {len(frames)} frames; the platform writes one")
    return frames[0]


def _location(group: Group) -> Location:
    """The group's source instance, its box when it is a planar ROI, and the frame of a
    multi-frame source."""
    if isinstance(group, hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations):
        roi = group.roi
        if not isinstance(roi, hd.sr.ImageRegion):
            return None, None, None
        points = roi.value
        xs, ys = points[:, 0], points[:, 1]
        box = (
            _float32(xs.min()),
            _float32(ys.min()),
            _float32(xs.max()),
            _float32(ys.max()),
        )
        source = hd.sr.SourceImageForRegion.from_dataset(roi.ContentSequence[0])
        return str(source.referenced_sop_instance_uid), box, _frame(source)
    images = group.source_images
    if images:
        return str(images[0].referenced_sop_instance_uid), None, _frame(images[0])
    composites = hd.sr.utils.find_content_items(
        group[0], name=SOURCE, value_type=hd.sr.ValueTypeValues.COMPOSITE
    )
    if composites:
        reference = hd.sr.CompositeContentItem.from_dataset(composites[0])
        return str(reference.referenced_sop_instance_uid), None, None
    return None, None, None


def parsed(ds: pydicom.Dataset) -> tuple[hd.sr.MeasurementReport, list[Group]]:
    """The TID 1500 report of an SR, parsed by highdicom, and its measurement groups in
    document order."""
    if str(ds.get("SOPClassUID", "")) != COMPREHENSIVE_3D_SR:
        raise ValueError("not a Comprehensive 3D SR document")
    # highdicom's copy leaves the content items of ``ds`` parsed into its own classes: a copy
    document = hd.sr.Comprehensive3DSR.from_dataset(deepcopy(ds), copy=False)
    report = document.content
    if not isinstance(report, hd.sr.MeasurementReport):
        raise ValueError("the SR is not a TID 1500 measurement report")
    containers = hd.sr.utils.find_content_items(
        report[0], name=IMAGING_MEASUREMENTS, value_type=hd.sr.ValueTypeValues.CONTAINER
    )
    groups: list[Group] = []
    for item in containers[0].ContentSequence if containers else []:
        if item.template_id == "1410":
            groups.append(
                hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations.from_sequence([item])
            )
        else:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations.from_sequence([item]))
    return report, groups


def read_findings(ds: pydicom.Dataset) -> list[dict[str, Any]]:
    """The findings of an SR written by ``finding_report``, parsed back with highdicom.

    One dict per measurement group, in document order, with the fields of ``SrFinding`` (unit
    back in the platform's words, box in source pixels, the frame of a multi-frame source from
    its Referenced Frame Number) and ``algorithm_name``,
    ``algorithm_version`` (the group's TID 4019) and ``device_uid`` (the device observer).
    """
    report, groups = parsed(ds)
    devices = report.get_observer_contexts(observer_type=DEVICE)
    device_uid: str | None = None
    if devices:
        attributes = devices[0].observer_identifying_attributes
        if isinstance(attributes, hd.sr.DeviceObserverIdentifyingAttributes):
            device_uid = str(attributes.uid)
    units = {code.value: word for word, code in UNITS.items()}
    out: list[dict[str, Any]] = []
    for group in groups:
        finding = group.finding_type
        if finding is None:
            raise ValueError("a measurement group has no finding")
        concept = Code(str(finding.value), str(finding.scheme_designator), str(finding.meaning))
        scores = _values(group, PROBABILITY)
        values = _values(group, concept)
        thresholds = _values(group, THRESHOLD)
        starts = [v for v, _ in _values(group, SEGMENT_START)]
        ends = [v for v, _ in _values(group, SEGMENT_END)]
        if len(starts) != len(ends):
            raise ValueError("segment starts and ends do not pair up")
        flags = group.get_qualitative_evaluations(name=concept)
        sop_instance_uid, box, frame = _location(group)
        names = texts(group[0], ALGORITHM_NAME)
        versions = texts(group[0], ALGORITHM_VERSION)
        out.append(
            {
                "finding_code": concept.value,
                "finding_meaning": concept.meaning,
                "sop_instance_uid": sop_instance_uid,
                "tracking_id": group.tracking_identifier,
                "tracking_uid": None if group.tracking_uid is None else str(group.tracking_uid),
                "score": scores[0][0] if scores else None,
                "threshold": thresholds[0][0] if thresholds else None,
                "positive": bool(flags) and flags[0].value == PRESENT,
                "value": values[0][0] if values else None,
                "unit": units.get(values[0][1], values[0][1]) if values else None,
                "box": box,
                "segments_s": tuple(zip(starts, ends, strict=True)),
                "frame_number": frame,
                "algorithm_name": names[0] if names else None,
                "algorithm_version": versions[0] if versions else None,
                "device_uid": device_uid,
            }
        )
    return out
