"""``ai``: what the AI reading services found (``ai.findings``), written back by batch scoring."""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import (
    PATIENT_KEY,
    UID_PATTERN,
    YKIHO_PATTERN,
    citizen,
    column,
    uid,
)
from lakehouse.schema import Table

AI: Final = (
    Table(
        "ai.findings",
        "What an AI reading service found in one complete, routed study: one row per study, "
        "service, model version and finding code; or one failed row with the reason when the "
        "study could not be scored. The models are reference models trained on synthetic data.",
        (
            uid("study_instance_uid", "StudyInstanceUID"),
            uid("series_instance_uid", "the series holding the located instance", False),
            uid("sop_instance_uid", "the instance where the finding is located", False),
            column(
                "frame_number",
                "int",
                "the frame of a multi-frame instance where the finding is located (1-based, "
                "DICOM's Referenced Frame Number); null for a single-frame instance",
                low=1,
            ),
            citizen(required=False, fk=False),
            PATIENT_KEY,
            column("institution", "text", "the sending institution's YKIHO", pattern=YKIHO_PATTERN),
            column("service", "text", "the AI reading service", required=True, codes="ai_services"),
            column(
                "finding_code",
                "text",
                "what was looked for (models/<service>/config.toml)",
                required=True,
            ),
            column(
                "status",
                "text",
                "scored | failed",
                required=True,
                pattern=r"^(scored|failed)$",
            ),
            column(
                "reason",
                "text",
                "why it could not be scored (failed only): unreadable_pixels | unsupported_input"
                " | missing_original | report_failed",
                pattern=r"^(unreadable_pixels|unsupported_input|missing_original|report_failed)$",
            ),
            column("message", "text", "the error behind the reason, in words (failed only)"),
            column(
                "score", "float", "probability 0..1 (classifiers; shown as 0-100)", low=0, high=1
            ),
            column("threshold", "float", "the operating threshold it was compared with"),
            column("positive", "bool", "the score (or value) is beyond the threshold"),
            column("value", "float", "the measured value of a regression (bone age, leg length)"),
            column("unit", "text", "the value's unit: month | mm", pattern=r"^(month|mm)$"),
            column(
                "location",
                "text",
                "where, as JSON: a box in the instance's pixels {type: box, box: [x0, y0, x1, "
                "y1], sop_instance_uid, frame (as frame_number)} or ECG segments {type: "
                "segments, seconds: [[start, end], ...]}",
            ),
            column(
                "heatmap_uri", "text", "the explanation map in the object store (.npy, encrypted)"
            ),
            column("sr_uri", "text", "the study's DICOM SR (TID 1500) in the object store"),
            column("instances_scored", "int", "instances the model read", required=True, low=0),
            column("algorithm_name", "text", "the model's name", required=True),
            column(
                "algorithm_version",
                "text",
                "the model's version (models/registry.toml)",
                required=True,
            ),
            column(
                "device_uid",
                "text",
                "the algorithm's DICOM UID (changes when retrained)",
                required=True,
                pattern=UID_PATTERN,
            ),
            column(
                "tracking_id",
                "text",
                "the finding's tracking identifier (as in the SR)",
                required=True,
            ),
            column(
                "tracking_uid",
                "text",
                "the finding's tracking UID (as in the SR)",
                required=True,
                pattern=UID_PATTERN,
            ),
            column(
                "verification",
                "text",
                "unverified until a clinician accepts, rejects or amends it (IHE AIRA)",
                required=True,
                pattern=r"^(unverified|accepted|rejected|amended)$",
            ),
            column(
                "priority",
                "int",
                "worklist priority: 1 urgent (positive, high score), 2 positive, 3 negative, "
                "4 failed (a person must look)",
                required=True,
                low=1,
                high=4,
            ),
            column(
                "synthetic_reference",
                "bool",
                "scored by a reference model trained on synthetic data (every screen says so)",
                required=True,
            ),
            column("scored_at", "timestamp", "when scored", required=True),
        ),
        key=("study_instance_uid", "service", "algorithm_version", "finding_code"),
        # A clinic's worklist reads its own findings: the weekly upkeep z-orders by clinic.
        sort_by=("institution",),
    ),
)
