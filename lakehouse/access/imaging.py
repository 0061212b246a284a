"""Imaging for clinicians: the worklist, a study and its patient, and decisions on AI findings.

Which studies a clinician may see is the gate's (``Gate._study``); the worklist's order and
statuses are ``lakehouse.triage``'s, and decisions are events in ``ops.triage_events`` that the
finding's ``verification`` in ``ai.findings`` follows. A decision may re-issue the AI service's
DICOM SR with the clinician as its verifying observer (``lakehouse.sr``).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

import numpy as np
import polars as pl
import pydicom
from numpy.typing import NDArray

from lakehouse import delta, dicom_store, queries, triage
from lakehouse import read as lake
from lakehouse.access import folds
from lakehouse.access.gate import UID, Gate, Query
from lakehouse.catalog import table

FINDINGS: Final = "ai.findings"
TRIAGE: Final = "ops.triage_events"
NOTE_MAX: Final = 1000  # characters of a decision's note or a reading question
FOLLOW_TRIES: Final = 8  # rounds for a finding's verification to settle under concurrent decisions
CONTEXT_DAYS: Final = 365  # diagnoses of the year up to the study's day
CURRENT_DRUG_DAYS: Final = 90  # prescriptions of the quarter up to the study's day


@dataclass(frozen=True)
class PatientContext:
    """The patient beside the images (``Access.patient_context``): diagnoses and prescriptions
    of the windows before the study (``window``), and the other studies, each with its AI
    findings as codes (``services``, ``finding_codes``), whether any was positive and the top
    score; ``basis`` says what the rows cover (``Imaging._context``)."""

    diagnoses: pl.DataFrame
    prescriptions: pl.DataFrame
    priors: pl.DataFrame
    basis: str = "institution"

    @property
    def rows(self) -> int:
        return self.diagnoses.height + self.prescriptions.height + self.priors.height


@dataclass(frozen=True)
class OpenedStudy:
    """One study as the viewer shows it (``Access.open_study``)."""

    study: dict[str, Any]
    basis: str
    findings: pl.DataFrame
    events: pl.DataFrame
    instances: pl.DataFrame
    datasets: list[pydicom.Dataset]
    heatmaps: dict[str, NDArray[np.float32]]
    requests: pl.DataFrame
    context: PatientContext


def window(timeline: pl.DataFrame, kind: str, anchor: date, days: int) -> pl.DataFrame:
    """The ``kind`` events of a timeline from ``days`` before ``anchor`` (the study's day) up to
    that day, each code once, newest first: what was known of the patient when the study was
    taken, never what came after it (a reader looking back at an old study would otherwise see
    diagnoses made since as if they had been there)."""
    return (
        timeline.filter(
            (pl.col("kind") == kind)
            & pl.col("event_date").is_between(anchor - timedelta(days=days), anchor)
        )
        .sort("event_date", descending=True, maintain_order=True)
        .unique("code", keep="first", maintain_order=True)
    )


def verified_findings(read: Callable[[Query], Query], study_uid: str) -> pl.DataFrame:
    """A study's AI findings (newest model version) with their verification, by priority
    (``folds.verified``); ``read`` runs ``lakehouse.queries`` functions (``Gate._q``)."""
    every: pl.DataFrame = read(queries.findings_of_studies)((study_uid,))
    events = lake.frame(TRIAGE, pl.col("study_instance_uid") == study_uid)
    return folds.verified(triage.latest_findings(every), events)


def originals(
    read: Callable[[Query], Query], study_uid: str, findings: pl.DataFrame
) -> tuple[pl.DataFrame, list[pydicom.Dataset], dict[str, NDArray[np.float32]]]:
    """A study's instances in reading order, their originals (pydicom datasets from the DICOM
    store, in the same order) and the heatmaps of ``findings`` by tracking UID."""
    instances: pl.DataFrame = read(queries.instances)(study_uid)
    datasets = [dicom_store.dataset(uri) for uri in instances["file_uri"].to_list()]
    heatmaps: dict[str, NDArray[np.float32]] = {}
    for tracking, uri in findings.select("tracking_uid", "heatmap_uri").iter_rows():
        if uri:
            heatmaps[tracking] = np.load(io.BytesIO(dicom_store.get(uri))).astype(np.float32)
    return instances, datasets, heatmaps


class Imaging(Gate):
    """The imaging methods of ``Access``."""

    def worklist(
        self,
        services: Sequence[str] = (),
        modalities: Sequence[str] = (),
        statuses: Sequence[str] = (),
        since: date | None = None,
        until: date | None = None,
        institutions: Sequence[str] = (),
    ) -> pl.DataFrame:
        """The AI-scored studies this clinician may triage, most pressing first
        (``lakehouse.triage``): those their institution sent and those sent to it for a remote
        reading. Filters narrow it by service, modality, status, acquisition day and sending
        institution. One audit row records the list read and its filters; opening a study is
        audited per patient."""
        self._require("read:worklist", "clinician")
        own: pl.DataFrame = self._q(queries.findings_of_institution)(self.principal.institution)
        remote = tuple(sorted(self._remote_studies()))
        if remote:
            extra: pl.DataFrame = self._q(queries.findings_of_studies)(remote)
            own = pl.concat(
                [
                    own,
                    extra.filter(
                        ~pl.col("study_instance_uid").is_in(own["study_instance_uid"].implode())
                    ),
                ]
            )
        uids = tuple(sorted(set(own["study_instance_uid"].to_list())))
        # The institution's studies by its code (a cache key of one value, not thousands).
        studies: pl.DataFrame = self._q(queries.studies_of_institution)(self.principal.institution)
        if remote:
            studies = pl.concat([studies, self._q(queries.studies)(remote)]).unique(
                "study_instance_uid", keep="first"
            )
        events = lake.lookup(TRIAGE, {"study_instance_uid": uids}).collect()
        rows = triage.worklist(own, studies, events, self.clock())
        requests = self._requests("study_instance_uid", uids)
        rows = rows.join(
            folds.reading_state(requests), on="study_instance_uid", how="left"
        ).with_columns(
            pl.when(pl.col("institution") == self.principal.institution)
            .then(pl.lit("institution"))
            .otherwise(pl.lit("remote_reading"))
            .alias("basis")
        )
        shown = triage.narrow(rows, services, modalities, statuses, since, until, institutions)
        filters = {
            "services": list(services),
            "modalities": list(modalities),
            "statuses": list(statuses),
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "institutions": list(institutions),
        }
        self._audit(
            "read:worklist",
            "institution",
            rows=shown.height,
            detail=json.dumps({k: v for k, v in filters.items() if v}, ensure_ascii=False),
        )
        return shown

    def open_study(self, study_uid: str) -> OpenedStudy:
        """Everything the viewer shows of one study, read once and audited once: the study,
        its AI findings (newest model version) with their verification, every decision taken
        on them, the originals (pydicom datasets in reading order), the heatmaps and any
        remote-reading requests, and the patient beside them (``patient_context``)."""
        study, purpose = self._study("read:study", study_uid)
        events = lake.frame(TRIAGE, pl.col("study_instance_uid") == study_uid).sort(
            "at", "event_id"
        )
        findings = folds.verified(
            triage.latest_findings(self._q(queries.findings_of_studies)((study_uid,))), events
        )
        instances, datasets, heatmaps = originals(self._q, study_uid, findings)
        requests = self._requests("study_instance_uid", [study_uid])
        context = self._context(study)
        self._audit_study("read:study", study, purpose, len(datasets) + context.rows, "context")
        return OpenedStudy(
            study, purpose, findings, events, instances, datasets, heatmaps, requests, context
        )

    def patient_context(self, study_uid: str) -> PatientContext:
        """What the reader needs beside the images: the patient's diagnoses of the year up to
        the study's day and prescriptions of the quarter up to it (claims, from the timeline;
        each code once, newest first; nothing dated after the study, ``window``) and their other
        studies with the AI's findings (``services`` and ``finding_codes``, for the page to
        name), as far as the reader may see the patient (``_context``). Audited as one read of
        the patient's record."""
        study, purpose = self._study("read:context", study_uid)
        context = self._context(study)
        self._audit_study("read:context", study, purpose, context.rows, None)
        return context

    def _context(self, study: dict[str, Any]) -> PatientContext:
        """``patient_context`` of a study already allowed (the caller audits), by the rule of
        the patient's record: with a basis for the patient (a standing consent, a share code,
        a recent treatment relationship, emergency access) what that basis shows
        (``Gate._visible``); with none (a study sent for a remote reading, or an old one of the
        institution) only what the study's own institution recorded, and its priors."""
        study_uid = study["study_instance_uid"]
        subject, patient = study["citizen_key"], study["patient_key"]
        basis = (self._basis_of(subject) if subject else None) or "remote_reading"
        timeline = (
            self._timeline_rows(subject, basis, study["institution"])
            if subject
            else pl.DataFrame(schema=table(queries.TIMELINE).polars_schema()).drop("key_bucket")
        )
        anchor = study["study_date"] or self.clock().date()
        recent = window(timeline, "diagnosis", anchor, CONTEXT_DAYS)
        current = window(timeline, "prescription", anchor, CURRENT_DRUG_DAYS)
        priors_s: pl.DataFrame = self._q(queries.studies_of_patient)(patient)
        priors_s = self._visible(
            priors_s.filter(pl.col("study_instance_uid") != study_uid).with_columns(
                pl.lit("imaging").alias("kind")
            ),
            subject,
            basis,
            study["institution"],
        ).drop("kind")
        prior_f = triage.latest_findings(self._q(queries.findings_of_patient)(patient))
        priors = priors_s.select(
            "study_instance_uid",
            "study_datetime",
            "modalities",
            "study_description",
            "institution_name",
        ).join(
            prior_f.sort("service", "finding_code")
            .group_by("study_instance_uid")
            .agg(
                pl.col("service").alias("services"),
                pl.col("finding_code").alias("finding_codes"),
                pl.col("positive").any().alias("positive"),
                pl.col("score").max().alias("score"),
            ),
            on="study_instance_uid",
            how="left",
        )
        return PatientContext(recent, current, priors, basis)

    def start_review(self, study_uid: str) -> bool:
        """Mark a new study as in review by this clinician (once: opening it again adds
        nothing). Returns whether an event was written."""
        study, purpose = self._study("write:triage", study_uid)
        mine = lake.frame(
            TRIAGE,
            (pl.col("study_instance_uid") == study_uid)
            & (pl.col("account") == self.principal.account),
        )
        if mine.height:
            return False
        every: pl.DataFrame = self._q(queries.findings_of_studies)((study_uid,))
        findings = triage.latest_findings(every)
        self._triage_events(findings, "review", None, None, None, purpose, None)
        self._audit_study("write:triage", study, purpose, findings.height, "review")
        return True

    def decide(
        self,
        tracking_uid: str,
        decision: str,
        reason_code: str,
        note: str | None = None,
        amended_value: float | None = None,
        reissue: bool = False,
    ) -> str | None:
        """Accept, reject or amend one AI finding, with a reason code and an optional note.

        The event is appended to ``ops.triage_events`` (never updated: two clinicians deciding
        at once both keep theirs), and the finding's ``verification`` in ``ai.findings`` then
        follows the latest decision. With ``reissue`` the service's DICOM SR is re-issued with
        every latest verdict on the study and this clinician as the verifying observer; its
        object key is returned (and kept on the event)."""
        self._require("write:triage", "clinician")
        if (
            not isinstance(tracking_uid, str)
            or len(tracking_uid) > 64
            or not UID.fullmatch(tracking_uid)
        ):
            raise self._deny("write:triage", "not a tracking UID")
        triage.policy().check(decision, reason_code)
        if decision != "amended" and amended_value is not None:
            raise ValueError("only an amendment carries an amended value")
        note = (note or "").strip() or None
        if note and len(note) > NOTE_MAX:
            raise ValueError(f"a note has at most {NOTE_MAX} characters")
        rows = lake.frame(FINDINGS, pl.col("tracking_uid") == tracking_uid)
        if rows.is_empty():
            raise self._deny("write:triage", "no such finding")
        finding = triage.latest_findings(rows)
        study, purpose = self._study("write:triage", str(finding["study_instance_uid"][0]))
        sr_uri = None
        if reissue:
            sr_uri = self._reissue(
                study, finding.row(0, named=True), decision, reason_code, note, amended_value
            )
        self._triage_events(finding, decision, reason_code, note, amended_value, purpose, sr_uri)
        self._follow_verification(tracking_uid)
        self._audit_study("write:triage", study, purpose, 1, f"{decision}:{reason_code}")
        return sr_uri

    def _triage_events(
        self,
        findings: pl.DataFrame,
        decision: str,
        reason_code: str | None,
        note: str | None,
        amended_value: float | None,
        basis: str,
        sr_uri: str | None,
    ) -> None:
        now, p = self.clock(), self.principal
        rows = [
            {
                "event_id": uuid.uuid4().hex,
                "at": now,
                "account": p.account,
                "institution": p.institution,
                "study_instance_uid": f["study_instance_uid"],
                "service": f["service"],
                "finding_code": f["finding_code"],
                "algorithm_version": f["algorithm_version"],
                "tracking_uid": f["tracking_uid"],
                "patient_key": f["patient_key"],
                "decision": decision,
                "reason_code": reason_code,
                "note": note,
                "amended_value": amended_value,
                "basis": basis,
                "sr_uri": sr_uri,
            }
            for f in findings.iter_rows(named=True)
        ]
        delta.append(TRIAGE, pl.DataFrame(rows, schema=table(TRIAGE).polars_schema()))

    def _follow_verification(self, tracking_uid: str) -> None:
        """Set the finding's ``verification`` to its latest decision, recomputed from every
        event until the stored value agrees with the events read after it was written: a
        clinician deciding at the same moment may append after this one read the events, and
        whichever of the two writes last then sees the other's event and writes again."""
        for _ in range(FOLLOW_TRIES):
            events = lake.frame(TRIAGE, pl.col("tracking_uid") == tracking_uid)
            latest = triage.verification(events)
            if latest.is_empty():
                return
            state = str(latest["decision"][0])
            rows = lake.frame(FINDINGS, pl.col("tracking_uid") == tracking_uid)
            if rows.is_empty() or (rows["verification"] == state).all():
                return
            delta.merge(FINDINGS, rows.with_columns(pl.lit(state).alias("verification")))
        raise RuntimeError(f"the verification of {tracking_uid} kept changing; try again")

    def _reissue(
        self,
        study: dict[str, Any],
        finding: dict[str, Any],
        decision: str,
        reason_code: str,
        note: str | None,
        amended_value: float | None,
    ) -> str:
        """The finding's SR re-issued with this decision and this clinician as its verifier."""
        from lakehouse import sr  # the SR writer is needed only here

        if not finding["sr_uri"]:
            raise ValueError("this finding has no SR to re-issue (the study could not be scored)")
        original = dicom_store.dataset(finding["sr_uri"])
        # One finding per service and model version: its report carries this, the latest, say.
        verdict = sr.Verdict(finding["tracking_uid"], decision, reason_code, note, amended_value)
        p, now = self.principal, self.clock()
        names: dict[str, str] = self._q(queries.institution_names)((str(p.institution),))
        verifier = sr.Verifier(
            p.display_name or p.account,
            names.get(str(p.institution), str(p.institution))[:64],
            p.account,
        )
        series, sop = f"2.25.{uuid.uuid4().int}", f"2.25.{uuid.uuid4().int}"
        document = sr.verified_report(original, [verdict], verifier, series, sop, 1, now)
        buffer = io.BytesIO()
        document.save_as(buffer, enforce_file_format=True)
        key = dicom_store.object_key(study["study_instance_uid"], series, sop)
        dicom_store.put(key, buffer.getvalue())
        return key
