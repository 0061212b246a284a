"""Remote readings: a clinic, or the citizen themselves, asks a hospital's readers about a study.

A request is a small state machine kept as events in ``ops.reading_requests`` (folded by
``lakehouse.access.folds.requests``, with what only a request says added by ``folded``):
**requested** by the clinic that sent the study (``basis="institution"``) or by the citizen on
their own consent (``basis="citizen_consent"``, ``lakehouse.access.my_images``), for a reading or
a second opinion; then either **replied** by the hospital asked (a report and its decision on the
AI finding) or **cancelled** by whoever asked. While it is open, and for 30 days after the reply,
the hospital may see the study and its patient's context (``Gate._study``). A reply returns to
whoever asked, and to the clinic a citizen named (``copy_to``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, Literal

import polars as pl

from lakehouse import delta, queries, triage
from lakehouse import read as lake
from lakehouse.access import folds
from lakehouse.access.gate import READINGS, Gate
from lakehouse.access.imaging import NOTE_MAX
from lakehouse.catalog import table

REPORT_MAX: Final = 4000  # characters of a remote reading's report
KINDS: Final = ("reading", "second_opinion")
ASKED: Final = ("basis", "kind", "copy_to")  # what a request event says beyond the fold's view


def folded(events: pl.DataFrame) -> pl.DataFrame:
    """``folds.requests`` of ``events`` with what the request said of itself: its ``basis``
    (institution, citizen_consent), ``kind`` (reading, second_opinion) and ``copy_to``."""
    asked = events.filter(pl.col("event") == "requested").select("request_id", *ASKED)
    return folds.requests(events).join(asked, on="request_id", how="left")


def question_text(question: str | None) -> str:
    """The question as stored: whitespace folded, 1 to ``NOTE_MAX`` characters."""
    text = " ".join((question or "").split())
    if not text or len(text) > NOTE_MAX:
        raise ValueError(f"a question has 1 to {NOTE_MAX} characters")
    return text


def append_event(
    at: datetime,
    actor: str,
    request_id: str,
    event: str,
    study: dict[str, Any],
    route: tuple[str | None, str],
    text: str | None = None,
    decision: str | None = None,
    asked: tuple[str, str, str | None] | None = None,
) -> None:
    """Append one event of request ``request_id`` to ``ops.reading_requests``.

    Args:
        at: When.
        actor: The account that did it (a clinician, or the citizen who asked).
        request_id: The request.
        event: requested, replied or cancelled.
        study: The study's row (its UID and patient key are kept).
        route: (from_institution, to_institution): who asked (None for a citizen) and the
            hospital asked.
        text: The question (requested) or the report (replied).
        decision: The reader's decision on the AI finding (replied).
        asked: (basis, kind, copy_to) of a new request.
    """
    basis, kind, copy_to = asked or (None, None, None)
    row = {
        "event_id": uuid.uuid4().hex,
        "request_id": request_id,
        "event": event,
        "at": at,
        "study_instance_uid": study["study_instance_uid"],
        "patient_key": study["patient_key"],
        "from_institution": route[0],
        "to_institution": route[1],
        "actor": actor,
        "text": text,
        "decision": decision,
        "basis": basis,
        "kind": kind,
        "copy_to": copy_to,
    }
    delta.append(READINGS, pl.DataFrame([row], schema=table(READINGS).polars_schema()))


class Readings(Gate):
    """The remote-reading methods of ``Access``."""

    def reading_hospitals(self) -> pl.DataFrame:
        """The hospitals a clinic or a citizen may ask for a remote reading (code, name), the
        clinician's own excluded."""
        self._require("read:hospitals", "clinician", "citizen")
        found: pl.DataFrame = self._q(queries.reading_hospitals)()
        own = self.principal.institution
        return found.filter(pl.col("ykiho") != own) if own else found

    def request_reading(self, study_uid: str, to_institution: str, question: str) -> str:
        """Ask a hospital's readers for a reading of a study this clinic sent; returns the
        request's id. The study then appears in that hospital's worklist."""
        study, purpose = self._study("write:reading", study_uid)
        if purpose != "institution":
            raise self._deny(
                "write:reading",
                "only the clinic that sent a study may ask for a reading",
                study["citizen_key"],
            )
        hospitals = self.reading_hospitals()
        if to_institution not in hospitals["ykiho"].to_list():
            raise ValueError("ask a hospital that reads for clinics")
        question = question_text(question)
        request_id = uuid.uuid4().hex
        append_event(
            self.clock(),
            self.principal.account,
            request_id,
            "requested",
            study,
            (self.principal.institution, to_institution),
            question,
            asked=("institution", "reading", None),
        )
        self._audit_study("write:reading", study, purpose, 1, f"to {to_institution}")
        return request_id

    def reply_reading(self, request_id: str, report: str, decision: str) -> None:
        """The reading hospital answers a request: a report and its decision on the AI finding.
        The reply returns to the clinic (``readings``)."""
        request = self._open_request(request_id, "to")
        if decision not in triage.DECIDED:
            raise ValueError(f"a decision is one of {list(triage.DECIDED)}")
        report = (report or "").strip()
        if not report or len(report) > REPORT_MAX:
            raise ValueError(f"a report has 1 to {REPORT_MAX} characters")
        study, purpose = self._study("write:reading", request["study_instance_uid"])
        append_event(
            self.clock(),
            self.principal.account,
            request_id,
            "replied",
            study,
            (request["from_institution"], request["to_institution"]),
            report,
            decision,
        )
        self._audit_study("write:reading", study, purpose, 1, f"reply {decision}")

    def cancel_reading(self, request_id: str) -> None:
        """The asking clinic withdraws a request that has not been answered."""
        request = self._open_request(request_id, "from")
        study, purpose = self._study("write:reading", request["study_instance_uid"])
        append_event(
            self.clock(),
            self.principal.account,
            request_id,
            "cancelled",
            study,
            (request["from_institution"], request["to_institution"]),
        )
        self._audit_study("write:reading", study, purpose, 1, "cancel")

    def _open_request(self, request_id: str, side: Literal["to", "from"]) -> dict[str, Any]:
        """The unanswered request ``request_id`` sent ``side`` this clinician's institution (to
        it: the hospital asked; from it: the asking clinic); refused (and audited) otherwise."""
        self._require("write:reading", "clinician")
        found = self._requests("request_id", [request_id])
        if found.is_empty() or found[f"{side}_institution"][0] != self.principal.institution:
            raise self._deny("write:reading", f"no such request {side} your institution")
        request = found.row(0, named=True)
        if request["status"] != "requested":
            raise ValueError(f"the request is already {request['status']}")
        return request

    def readings(self) -> pl.DataFrame:
        """Remote readings this institution asked for, was asked for, or was sent a copy of by
        a citizen who asked a hospital (``copy_to``), newest first, with ``direction`` (sent,
        received, copied), the other institution's name (``counterpart``: the hospital that read
        a copy; null when a citizen asked) and the request's ``basis`` and ``kind``."""
        self._require("read:readings", "clinician")
        me = str(self.principal.institution)
        copies = lake.frame(READINGS, pl.col("copy_to") == me)["request_id"]
        found = folded(
            lake.frame(
                READINGS,
                (pl.col("from_institution") == me)
                | (pl.col("to_institution") == me)
                | pl.col("request_id").is_in(copies.implode()),
            )
        )
        codes = tuple(
            sorted(
                set(found["from_institution"].drop_nulls().to_list())
                | set(found["to_institution"].to_list())
            )
        )
        names: dict[str, str] = self._q(queries.institution_names)(codes) if codes else {}
        copied = (pl.col("copy_to") == me) & (pl.col("to_institution") != me)
        rows = folds.directions(found, me, names).with_columns(
            pl.when(copied).then(pl.lit("copied")).otherwise("direction").alias("direction"),
            pl.when(copied)
            .then(pl.col("to_institution").replace_strict(names, default=None))
            .otherwise("counterpart")
            .alias("counterpart"),
        )
        self._audit("read:readings", "institution", rows=rows.height)
        return rows
