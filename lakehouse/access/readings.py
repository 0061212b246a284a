"""Remote readings: a clinic asks a hospital's readers about a study it sent.

A request is a small state machine kept as events in ``ops.reading_requests`` (folded by
``lakehouse.access.folds.requests``): **requested** by the clinic that sent the study, then
either **replied** by the hospital asked (a report and its decision on the AI finding) or
**cancelled** by the clinic. While it is open, and for 30 days after the reply, the hospital may
see the study and its patient's context (``Gate._study``).
"""

from __future__ import annotations

import uuid
from typing import Any, Final, Literal

import polars as pl

from lakehouse import delta, queries, triage
from lakehouse.access import folds
from lakehouse.access.gate import READINGS, Gate
from lakehouse.access.imaging import NOTE_MAX
from lakehouse.catalog import table

REPORT_MAX: Final = 4000  # characters of a remote reading's report


class Readings(Gate):
    """The remote-reading methods of ``Access``."""

    def reading_hospitals(self) -> pl.DataFrame:
        """The hospitals this clinic may ask for a remote reading (code, name), itself excluded."""
        self._require("read:hospitals", "clinician")
        found: pl.DataFrame = self._q(queries.reading_hospitals)()
        return found.filter(pl.col("ykiho") != self.principal.institution)

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
        question = " ".join((question or "").split())
        if not question or len(question) > NOTE_MAX:
            raise ValueError(f"a question has 1 to {NOTE_MAX} characters")
        request_id = uuid.uuid4().hex
        self._reading_event(
            request_id,
            "requested",
            study,
            to_institution,
            question,
            None,
            str(self.principal.institution),
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
        self._reading_event(
            request_id,
            "replied",
            study,
            request["to_institution"],
            report,
            decision,
            request["from_institution"],
        )
        self._audit_study("write:reading", study, purpose, 1, f"reply {decision}")

    def cancel_reading(self, request_id: str) -> None:
        """The asking clinic withdraws a request that has not been answered."""
        request = self._open_request(request_id, "from")
        study, purpose = self._study("write:reading", request["study_instance_uid"])
        self._reading_event(
            request_id,
            "cancelled",
            study,
            request["to_institution"],
            None,
            None,
            request["from_institution"],
        )
        self._audit_study("write:reading", study, purpose, 1, "cancel")

    def _open_request(self, request_id: str, side: Literal["to", "from"]) -> dict[str, Any]:
        """The unanswered request ``request_id`` sent ``side`` this clinician's institution (to
        it: the hospital asked; from it: the asking clinic); refused (and audited) otherwise."""
        self._require("write:reading", "clinician")
        found = self._requests(pl.col("request_id") == request_id)
        if found.is_empty() or found[f"{side}_institution"][0] != self.principal.institution:
            raise self._deny("write:reading", f"no such request {side} your institution")
        request = found.row(0, named=True)
        if request["status"] != "requested":
            raise ValueError(f"the request is already {request['status']}")
        return request

    def _reading_event(
        self,
        request_id: str,
        event: str,
        study: dict[str, Any],
        to_institution: str,
        text: str | None,
        decision: str | None,
        from_institution: str,
    ) -> None:
        row = {
            "event_id": uuid.uuid4().hex,
            "request_id": request_id,
            "event": event,
            "at": self.clock(),
            "study_instance_uid": study["study_instance_uid"],
            "patient_key": study["patient_key"],
            "from_institution": from_institution,
            "to_institution": to_institution,
            "actor": self.principal.account,
            "text": text,
            "decision": decision,
        }
        delta.append(READINGS, pl.DataFrame([row], schema=table(READINGS).polars_schema()))

    def readings(self) -> pl.DataFrame:
        """Remote readings this institution asked for or was asked for, newest first, with
        ``direction`` (sent, received) and the other institution's name."""
        self._require("read:readings", "clinician")
        me = str(self.principal.institution)
        found = self._requests(
            (pl.col("from_institution") == me) | (pl.col("to_institution") == me)
        )
        codes = tuple(
            sorted(
                set(found["from_institution"].to_list()) | set(found["to_institution"].to_list())
            )
        )
        names: dict[str, str] = self._q(queries.institution_names)(codes) if codes else {}
        rows = folds.directions(found, me, names)
        self._audit("read:readings", "institution", rows=rows.height)
        return rows
