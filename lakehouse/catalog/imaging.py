"""``silver.imaging_*``: the DICOM uploads indexed from their headers, and the routing decisions."""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import (
    PATIENT_KEY,
    YKIHO_PATTERN,
    citizen,
    column,
    uid,
)
from lakehouse.schema import Table

# Header attributes an instance, its series and its study share (silver.imaging_instances holds
# them per instance; the series and study tables aggregate them).
_IMAGE_ATTRIBUTES: Final = (
    column("modality", "text", "Modality (0008,0060)"),
    column("series_number", "int", "SeriesNumber"),
    column("series_description", "text", "SeriesDescription"),
    column("body_part", "text", "BodyPartExamined, upper case (null when blank)"),
    column("view_position", "text", "ViewPosition (PA, AP, LL, CC, MLO, ...)"),
    column("laterality", "text", "ImageLaterality, else Laterality (R, L, B, U)"),
    column("image_type", "text", "ImageType values, upper case, joined by a backslash"),
    column("presentation_intent", "text", "PresentationIntentType (FOR PRESENTATION / PROCESSING)"),
    column("burned_in_annotation", "bool", "BurnedInAnnotation YES (null when not stated)"),
    column(
        "pixel_spacing_mm", "float", "PixelSpacing (else ImagerPixelSpacing), row spacing in mm"
    ),
    column("sampling_frequency_hz", "float", "waveform sampling frequency (ECG)"),
    column("waveform_channels", "int", "waveform channels (ECG leads)"),
)
_RECEIVED: Final = (
    column("first_received_at", "timestamp", "when its first instance landed", required=True),
    column("last_received_at", "timestamp", "when its latest instance landed", required=True),
)

IMAGING: Final = (
    Table(
        "silver.imaging_instances",
        "Every DICOM instance the clinics uploaded, indexed from its header (pixels are never "
        "read here); the original is kept, encrypted and unmodified, in the object store at "
        "file_uri. One row per SOP Instance UID: the same instance dropped again is a duplicate.",
        (
            uid("sop_instance_uid", "SOPInstanceUID"),
            uid("sop_class_uid", "SOPClassUID"),
            uid("transfer_syntax_uid", "TransferSyntaxUID of the file"),
            uid("study_instance_uid", "StudyInstanceUID"),
            uid("series_instance_uid", "SeriesInstanceUID"),
            column("instance_number", "int", "InstanceNumber"),
            column(
                "file_uri",
                "text",
                "the original in the object store, relative to LAKEHOUSE_URI "
                "(lakehouse.dicom_store)",
                required=True,
            ),
            column("size_bytes", "int", "size of the original", required=True, low=1),
            column("sha256", "text", "SHA-256 of the original bytes", required=True),
            column(
                "source_file", "text", "where it landed, relative to the drop folder", required=True
            ),
            column("drop_id", "text", "the ingestion pass that indexed it", required=True),
            column("received_at", "timestamp", "when it landed in the drop folder", required=True),
            column("indexed_at", "timestamp", "when it was indexed", required=True),
            citizen(required=False, fk=False),
            column(
                "patient_key",
                "text",
                "pseudonymous patient: the citizen key for a registration number, else "
                "L + keyed HMAC of the institution and its local patient id",
                personal="pseudonym",
                pattern=r"^[CL][0-9a-f]{32}$",
            ),
            column(
                "patient_sex", "text", "PatientSex (M, F, O)", personal="quasi", pattern="^[MFO]$"
            ),
            column(
                "patient_age_months",
                "int",
                "age at the study in months (PatientAge, else birth date and study date)",
                personal="quasi",
                low=0,
                high=1560,
            ),
            column("institution", "text", "the sending institution's YKIHO", pattern=YKIHO_PATTERN),
            column("institution_name", "text", "InstitutionName"),
            column("accession_number", "text", "AccessionNumber (the order at the clinic)"),
            column("study_description", "text", "StudyDescription"),
            column("study_datetime", "timestamp", "StudyDate and StudyTime (KST)"),
            column("content_datetime", "timestamp", "ContentDate and ContentTime (KST)"),
            column("rows", "int", "Rows"),
            column("columns", "int", "Columns"),
            column("number_of_frames", "int", "NumberOfFrames (1 when absent)", low=1),
            column("photometric_interpretation", "text", "PhotometricInterpretation"),
            *_IMAGE_ATTRIBUTES,
        ),
        key=("sop_instance_uid",),
        sort_by=("study_instance_uid",),  # the viewer reads one study's instances
    ),
    Table(
        "silver.imaging_series",
        "One row per DICOM series: the attributes routing reads, from its instances.",
        (
            uid("series_instance_uid", "SeriesInstanceUID"),
            uid("study_instance_uid", "StudyInstanceUID"),
            column("sop_class_uid", "text", "SOPClassUID (of its first instance)"),
            *_IMAGE_ATTRIBUTES,
            column("rows", "int", "Rows (of its first instance)"),
            column("columns", "int", "Columns (of its first instance)"),
            column("instances", "int", "instances indexed", required=True, low=1),
            column("frames", "int", "frames over its instances", required=True, low=0),
            *_RECEIVED,
        ),
        key=("series_instance_uid",),
    ),
    Table(
        "silver.imaging_studies",
        "One row per DICOM study: who (pseudonymous), where, what and when; a study is "
        "complete once no instance arrived for the quiet period (silver.imaging_routing).",
        (
            uid("study_instance_uid", "StudyInstanceUID"),
            citizen(required=False, fk=False),
            PATIENT_KEY,
            column("patient_sex", "text", "M, F or O", personal="quasi", pattern="^[MFO]$"),
            column("patient_age_months", "int", "age at the study in months", personal="quasi"),
            column("institution", "text", "the sending institution's YKIHO", pattern=YKIHO_PATTERN),
            column("institution_name", "text", "InstitutionName"),
            column("accession_number", "text", "AccessionNumber"),
            column("study_description", "text", "StudyDescription"),
            column("study_datetime", "timestamp", "StudyDate and StudyTime (KST)"),
            column("study_date", "date", "StudyDate"),
            column("modalities", "text", "modalities in the study, | separated", required=True),
            column("body_parts", "text", "body parts examined, | separated"),
            column("series_count", "int", "series indexed", required=True, low=1),
            column("instance_count", "int", "instances indexed", required=True, low=1),
            column(
                "patient_conflict",
                "bool",
                "instances naming another patient arrived for it (quarantined; the study is "
                "held back)",
                required=True,
            ),
            *_RECEIVED,
        ),
        key=("study_instance_uid",),
        sort_by=("institution",),  # a clinic's worklist reads the studies it sent
    ),
    Table(
        "silver.imaging_routing",
        "Every routing decision: each series of a complete study goes to the AI reading "
        "service whose rule fired, or is held back or left unrouted with the reason.",
        (
            uid("study_instance_uid", "StudyInstanceUID"),
            uid("series_instance_uid", "SeriesInstanceUID"),
            column(
                "outcome",
                "text",
                "routed | held_back | unrouted",
                required=True,
                pattern=r"^(routed|held_back|unrouted)$",
            ),
            column("service", "text", "the AI service (routed only)", codes="ai_services"),
            column("rule", "text", "the rule that fired (pipelines/transform/routing.toml)"),
            column("reason", "text", "why it was held back, or no_service"),
            column("message", "text", "the decision in words", required=True),
            column("instances", "int", "instances in the series", required=True, low=1),
            column("rules_version", "text", "SHA-256 prefix of the rule file used", required=True),
            column(
                "received_until",
                "timestamp",
                "the study's last instance when decided (a later instance reopens the study)",
                required=True,
            ),
            column("decided_at", "timestamp", "when decided", required=True),
        ),
        key=("study_instance_uid", "series_instance_uid"),
    ),
)
