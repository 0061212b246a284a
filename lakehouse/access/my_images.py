"""My images, without CDs: a citizen's own studies, their AI findings, the DICOM download and a
second opinion from a hospital of their choice.

The studies are the ones sent through the programme's AI platform (``silver.imaging_studies``
with the citizen's key): the programme's own data, shown from sign-up. Every route to a study,
a listed one, a UID from a link or a tampered session, goes through ``_mine``: the study must
exist, carry a citizen key, and ``basis`` must allow this principal that citizen (themselves, or
a carer with an active proxy grant); anything else is refused and audited before a pixel is read.

A second opinion is a remote-reading request (``lakehouse.access.readings``) that the citizen
makes on their own consent: its event records ``basis="citizen_consent"`` and the citizen as its
actor, it reaches the hospital's worklist as a clinic's request does, and the reply returns here
(and to the clinic that took the study, when the citizen chose so).
"""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import polars as pl
import pydicom
from numpy.typing import NDArray

from lakehouse import dicom_store, queries, triage
from lakehouse import read as lake
from lakehouse.access import folds
from lakehouse.access.gate import READINGS, UID, Gate
from lakehouse.access.imaging import originals, verified_findings
from lakehouse.access.readings import KINDS, append_event, folded, question_text

STUDIES: Final = "silver.imaging_studies"
LISTED: Final = (
    "study_instance_uid",
    "study_datetime",
    "study_date",
    "modalities",
    "study_description",
    "institution",
    "institution_name",
    "instance_count",
)


@dataclass(frozen=True)
class MyStudy:
    """One of the citizen's studies as their viewer shows it (``MyImages.my_study``): the
    study, why this principal may see it (self, proxy), its AI findings (newest model version)
    with their verification, the originals in reading order with their heatmaps, and the
    second opinions asked on it with the hospitals' names (``hospital_name``)."""

    study: dict[str, Any]
    basis: str
    findings: pl.DataFrame
    instances: pl.DataFrame
    datasets: list[pydicom.Dataset]
    heatmaps: dict[str, NDArray[np.float32]]
    requests: pl.DataFrame


def export_name(study: dict[str, Any]) -> str:
    """The download's file name: ``study-<day>-<modalities>.zip``."""
    day = study["study_date"].isoformat() if study["study_date"] else "undated"
    kinds = "-".join(m for m in (study["modalities"] or "").split("|") if m.isalnum())
    return f"study-{day}-{kinds or 'DICOM'}.zip"


class MyImages(Gate):
    """The citizen's own imaging methods of ``Access``."""

    def my_studies(self, subject_key: str) -> pl.DataFrame:
        """The citizen's studies sent through the AI platform, newest first (``LISTED``), each
        with its services (``services``), whether any finding was flagged (``positive``),
        whether a clinician decided on one (``verified``) and its newest second opinion's
        status (``reading``). Audited as one read of the citizen's images."""
        purpose = self._as_citizen("read:my_images", subject_key)
        studies = lake.lookup(STUDIES, {"citizen_key": [subject_key]}).collect()
        uids = tuple(sorted(studies["study_instance_uid"].to_list()))
        found: pl.DataFrame = self._q(queries.findings_of_studies)(uids)
        summary = (
            triage.latest_findings(found)
            .sort("service")
            .group_by("study_instance_uid")
            .agg(
                pl.col("service").unique(maintain_order=True).alias("services"),
                pl.col("positive").any().alias("positive"),
                (pl.col("verification") != "unverified").any().alias("verified"),
            )
        )
        asked = folds.reading_state(self._requests("study_instance_uid", uids))
        rows = (
            studies.select(LISTED)
            .join(summary, on="study_instance_uid", how="left")
            .join(asked.drop("requested_by_institution"), on="study_instance_uid", how="left")
            .sort("study_datetime", descending=True, nulls_last=True)
        )
        self._audit("read:my_images", purpose, subject=subject_key, rows=rows.height)
        return rows

    def my_study(self, study_uid: str) -> MyStudy:
        """One of the citizen's studies, everything the viewer shows, read once and audited
        once (``read:my_study``); another citizen's study is refused and audited."""
        study, purpose = self._mine("read:my_study", study_uid)
        findings = verified_findings(self._q, study_uid)
        instances, datasets, heatmaps = originals(self._q, study_uid, findings)
        requests = self._named(
            folded(lake.frame(READINGS, pl.col("study_instance_uid") == study_uid))
        )
        self._audit("read:my_study", purpose, subject=study["citizen_key"], rows=len(datasets))
        return MyStudy(study, purpose, findings, instances, datasets, heatmaps, requests)

    def export_study(self, study_uid: str) -> tuple[str, bytes]:
        """The citizen's study as a zip of its original DICOM files, as a CD carried them
        (``DICOM/<series>/<instance>.dcm``): the file's name and bytes. Audited as one row,
        ``export:study``, with the number of instances."""
        study, purpose = self._mine("export:study", study_uid)
        instances: pl.DataFrame = self._q(queries.instances)(study_uid)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for series, number, sop, uri in instances.select(
                "series_number", "instance_number", "sop_instance_uid", "file_uri"
            ).iter_rows():
                name = f"{number:04d}" if number is not None else sop
                archive.writestr(f"DICOM/{series or 0:03d}/{name}.dcm", dicom_store.get(uri))
        self._audit(
            "export:study",
            purpose,
            subject=study["citizen_key"],
            rows=instances.height,
            detail=f"{instances.height} instances",
        )
        return export_name(study), buffer.getvalue()

    def ask_second_opinion(
        self,
        study_uid: str,
        to_institution: str,
        question: str,
        kind: str = "second_opinion",
        copy_to_clinic: bool = False,
    ) -> str:
        """Ask a hospital that reads remotely for a reading or a second opinion on one of the
        citizen's studies, with a question; returns the request's id.

        The request's event records the citizen's consent as its basis (``citizen_consent``)
        and the citizen (or their carer) as its actor. It reaches that hospital's remote-reading
        worklist as a clinic's request does, and only that hospital's: no other may open the
        study through it. With ``copy_to_clinic`` the reply is also sent to the institution
        that took the study.

        Raises:
            ValueError: Not a reading hospital, the hospital that took the study, an unknown
                kind, or an empty or overlong question.
            AccessDeniedError: Not the citizen's study (audited).
        """
        study, purpose = self._mine("write:reading", study_uid)
        if kind not in KINDS:
            raise ValueError(f"a request is one of {list(KINDS)}")
        hospitals: pl.DataFrame = self._q(queries.reading_hospitals)()
        if to_institution not in hospitals["ykiho"].to_list():
            raise ValueError("ask a hospital that reads remotely")
        if to_institution == study["institution"]:
            raise ValueError("ask another hospital than the one that took the images")
        text = question_text(question)
        copy_to = study["institution"] if copy_to_clinic else None
        request_id = uuid.uuid4().hex
        append_event(
            self.clock(),
            self.principal.account,
            request_id,
            "requested",
            study,
            (None, to_institution),
            text,
            asked=("citizen_consent", kind, copy_to),
        )
        self._audit(
            "write:reading",
            purpose,
            subject=study["citizen_key"],
            rows=1,
            detail=f"{kind} to {to_institution} (citizen_consent)"
            + (f", copy to {copy_to}" if copy_to else ""),
        )
        return request_id

    def cancel_second_opinion(self, request_id: str) -> None:
        """Withdraw a request the citizen (or their carer) made that has not been answered."""
        self._require("write:reading", "citizen")
        found = folded(lake.frame(READINGS, pl.col("request_id") == request_id))
        if found.is_empty() or found["basis"][0] != "citizen_consent":
            raise self._deny("write:reading", "no such request of a citizen")
        request = found.row(0, named=True)
        study, purpose = self._mine("write:reading", request["study_instance_uid"])
        if request["status"] != "requested":
            raise ValueError(f"the request is already {request['status']}")
        append_event(
            self.clock(),
            self.principal.account,
            request_id,
            "cancelled",
            study,
            (None, request["to_institution"]),
        )
        self._audit("write:reading", purpose, subject=study["citizen_key"], rows=1, detail="cancel")

    def _as_citizen(self, action: str, subject_key: str) -> str:
        """``basis`` for a citizen (self, proxy); other roles are refused (and audited)."""
        self._require(action, "citizen")
        return self.basis(action, subject_key)

    def _mine(self, action: str, study_uid: str) -> tuple[dict[str, Any], str]:
        """The study's row and why this citizen may see it (self, proxy), or
        ``AccessDeniedError`` (audited): a malformed UID, an unknown study, a study of no
        citizen, or another citizen's study with no proxy grant."""
        self._require(action, "citizen")
        if not isinstance(study_uid, str) or len(study_uid) > 64 or not UID.fullmatch(study_uid):
            raise self._deny(action, "not a study UID")
        found: pl.DataFrame = self._q(queries.studies)((study_uid,))
        if found.is_empty() or found["citizen_key"][0] is None:
            raise self._deny(action, "no such study of a citizen")
        study = found.row(0, named=True)
        return study, self.basis(action, study["citizen_key"])

    def _named(self, requests: pl.DataFrame) -> pl.DataFrame:
        """``requests`` with the hospital's name (``hospital_name``)."""
        codes = tuple(sorted(set(requests["to_institution"].to_list())))
        names: dict[str, str] = self._q(queries.institution_names)(codes) if codes else {}
        return requests.with_columns(
            pl.col("to_institution").replace_strict(names, default=None).alias("hospital_name")
        )
