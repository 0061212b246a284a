"""The AI findings SR as highdicom builds it: the oracle ``lakehouse.sr`` is held to.

This is the construction ``finding_report`` used before it wrote the document with pydicom
directly (highdicom's constructors cost 60 to 70 ms a document). It takes the same inputs, and
assumes they are valid: ``finding_report`` validates them first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.uid import TwelveLeadECGWaveformStorage
from pydicom.valuerep import DA, TM

from lakehouse.sr import Algorithm, SrFinding, codes
from lakehouse.sr.findings import is_image, is_waveform
from lakehouse.sr.header import series_description


def _measurements(finding: SrFinding) -> list[hd.sr.Measurement]:
    out: list[hd.sr.Measurement] = []
    threshold_unit = codes.NO_UNITS  # the score's; a regression's threshold is in its value's unit
    if finding.score is not None:
        out.append(hd.sr.Measurement(codes.PROBABILITY, float(finding.score), codes.NO_UNITS))
    if finding.value is not None and finding.unit is not None:
        unit = codes.UNITS[finding.unit]
        out.append(hd.sr.Measurement(finding.concept, float(finding.value), unit))
        if finding.score is None:
            threshold_unit = unit
    out.append(hd.sr.Measurement(codes.THRESHOLD, float(finding.threshold), threshold_unit))
    for start, end in finding.segments_s:
        out.append(hd.sr.Measurement(codes.SEGMENT_START, float(start), codes.SECOND))
        out.append(hd.sr.Measurement(codes.SEGMENT_END, float(end), codes.SECOND))
    return out


def _group(
    finding: SrFinding, source: pydicom.Dataset, algorithm: Algorithm
) -> (
    hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
    | hd.sr.MeasurementsAndQualitativeEvaluations
):
    common: dict[str, Any] = {
        "tracking_identifier": hd.sr.TrackingIdentifier(
            uid=finding.tracking_uid, identifier=finding.tracking_id
        ),
        "finding_type": finding.concept,
        "algorithm_id": hd.sr.AlgorithmIdentification(
            name=algorithm.name, version=algorithm.version, manufacturer=codes.MANUFACTURER
        ),
        "measurements": _measurements(finding),
        "qualitative_evaluations": [
            hd.sr.QualitativeEvaluation(
                finding.concept, codes.PRESENT if finding.positive else codes.ABSENT
            )
        ],
    }
    frames = None if finding.frame_number is None else [finding.frame_number]
    if finding.box is not None:
        x0, y0, x1, y1 = (float(v) for v in finding.box)
        rectangle = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=rectangle,
            source_image=hd.sr.SourceImageForRegion.from_source_image(source, frames),
        )
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            referenced_region=region, **common
        )
    if is_image(source):
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source, frames)],
            **common,
        )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(**common)
    group[0].ContentSequence.append(
        hd.sr.CompositeContentItem(
            name=codes.SOURCE,
            referenced_sop_class_uid=str(source.SOPClassUID),
            referenced_sop_instance_uid=str(source.SOPInstanceUID),
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
    )
    return group


def _statement() -> hd.sr.ContainerContentItem:
    """TID 1500 row 12: the reference-model statement, English and Korean."""
    container = hd.sr.ContainerContentItem(
        name=codes.QUALITATIVE, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    english = hd.sr.TextContentItem(
        name=codes.COMMENT,
        value=codes.DISCLAIMER_EN,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    korean = hd.sr.TextContentItem(
        name=codes.COMMENT,
        value=codes.DISCLAIMER_KO,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    korean.ContentSequence = hd.sr.LanguageOfContentItemAndDescendants(
        hd.sr.CodedConcept.from_code(codes.KOREAN)
    )
    container.ContentSequence = hd.sr.ContentSequence([english, korean])
    return container


def oracle_report(
    sources: Sequence[pydicom.Dataset],
    findings: Sequence[SrFinding],
    algorithm: Algorithm,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 9001,
    instance_number: int = 1,
    when: datetime | None = None,
) -> pydicom.Dataset:
    """``finding_report``'s document as highdicom's constructors build it (valid inputs only)."""
    by_uid = {str(ds.SOPInstanceUID): ds for ds in sources}
    moment = when or datetime.now()
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept.from_code(codes.DEVICE),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=algorithm.device_uid,
            name=algorithm.name,
            manufacturer_name=codes.MANUFACTURER,
            model_name=f"{algorithm.name} {algorithm.version}",
        ),
    )
    waveforms_only = all(is_waveform(ds) for ds in sources)
    twelve_leads = all(str(ds.SOPClassUID) == TwelveLeadECGWaveformStorage for ds in sources)
    reported = codes.ECG_RECORDING if waveforms_only else codes.IMAGING_PROCEDURE
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.ECG_PROCEDURE if twelve_leads else reported,
        imaging_measurements=[_group(f, by_uid[f.sop_instance_uid], algorithm) for f in findings],
        language_of_content_item_and_descendants=hd.sr.LanguageOfContentItemAndDescendants(
            hd.sr.CodedConcept.from_code(codes.ENGLISH)
        ),
    )
    report[0].ContentSequence.append(_statement())

    document = hd.sr.Comprehensive3DSR(
        evidence=list(sources),
        content=report,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=codes.MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        specific_character_set=codes.CHARACTER_SET,
        series_description=series_description(algorithm.service),
        manufacturer_model_name=algorithm.name,
        software_versions=algorithm.version,
        coding_schemes=[
            CodingSchemeIdentificationItem(
                designator=codes.SCHEME,
                name="Gwangju AI public medical service platform codes",
                responsible_organization="Gwangju AI public medical service",
            )
        ],
        content_date=moment.date(),
        content_time=moment.time().replace(tzinfo=None),
        series_date=moment.date(),
        series_time=moment.time().replace(tzinfo=None),
    )
    document.InstanceCreationDate = DA(moment.date())
    document.InstanceCreationTime = TM(moment.time().replace(tzinfo=None))
    if moment.utcoffset() is not None:  # dates and times above are local to this offset
        document.TimezoneOffsetFromUTC = moment.strftime("%z")
    return document
