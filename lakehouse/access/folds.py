"""What the access layer's ledgers say now: folds of their append-only events.

Grants (``ops.grants``), decisions (``ops.triage_events``) and remote-reading requests
(``ops.reading_requests``) are never updated: each change is a new event, so two people acting at
once both keep theirs. What a grant or a request is now is a fold over its events; so is what a
citizen has agreed to (``consent``, over the programme's own events in
``silver.programme_events``). These are pure
functions of frames the access layer has already read (like ``lakehouse.triage``), so they are
tested without a lakehouse and the gate (``lakehouse.access.gate``) keeps every decision about
who sees what.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Final, Literal

import polars as pl

from lakehouse import triage

# At equal times a grant is created before it is accepted or used, and used before it is revoked.
EVENT_ORDER: Final = {"created": 0, "accepted": 1, "redeemed": 1, "revoked": 2}
# The programme's events that decide what a citizen has agreed to (app_event_types.csv), in the
# order they apply at equal times.
CONSENT_EVENTS: Final = {
    "signup": 0,
    "consent": 1,
    "record_link_request": 2,
    "record_link_completed": 3,
    "consent_withdrawn": 4,
    "account_deleted": 5,
}
# The optional consent under which the app links the national extracts (synth/programme.py).
RECORD_LINK: Final = "hira_record_link"
ConsentState = Literal["none", "signed_up", "consented", "linked", "withdrawn", "deleted"]
READING_VIEW: Final[dict[str, pl.DataType]] = {
    "request_id": pl.Utf8(),
    "study_instance_uid": pl.Utf8(),
    "patient_key": pl.Utf8(),
    "from_institution": pl.Utf8(),
    "to_institution": pl.Utf8(),
    "requested_by": pl.Utf8(),
    "requested_at": pl.Datetime("us", "UTC"),
    "question": pl.Utf8(),
    "status": pl.Utf8(),
    "answered_at": pl.Datetime("us", "UTC"),
    "answered_by": pl.Utf8(),
    "report": pl.Utf8(),
    "decision": pl.Utf8(),
}


@dataclass(frozen=True)
class Grant:
    """One grant as it stands after its events."""

    grant_id: str
    kind: str
    subject_key: str
    actor: str
    grantee: str | None
    institution: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked: bool
    reason: str | None
    scope: tuple[str, ...] | None = None  # a share's kinds of records; None: all of them
    accepted: bool = False  # a proxy grant starts pending until the carer accepts

    @property
    def pending(self) -> bool:
        """A family carer's grant the carer has not accepted yet: it allows nothing."""
        return self.kind == "proxy" and not self.accepted

    def active(self, now: datetime) -> bool:
        return (
            not self.revoked
            and not self.pending
            and (self.expires_at is None or now < self.expires_at)
        )


def grants(events: pl.DataFrame) -> list[Grant]:
    """The grants ``ops.grants`` events describe, in the order they were created: a redemption
    names the clinician who entered a share code, an acceptance by the named carer starts a
    proxy grant (anyone else's is ignored), a revocation ends a grant, and events of a grant
    whose creation is not among them are ignored."""
    order = pl.col("event").replace_strict(EVENT_ORDER, return_dtype=pl.Int8)
    found: dict[str, Grant] = {}
    for e in events.sort(pl.col("at"), order, pl.col("event_id")).iter_rows(named=True):
        gid = e["grant_id"]
        if e["event"] == "created":
            found[gid] = Grant(
                gid,
                e["kind"],
                e["subject_key"],
                e["actor"],
                e["grantee"],
                e["institution"],
                e["at"],
                e["expires_at"],
                False,
                e["reason"],
                tuple(e["scope"].split(",")) if e["scope"] else None,
            )
        elif gid in found and e["event"] == "accepted" and e["actor"] == found[gid].grantee:
            found[gid] = replace(found[gid], accepted=True)
        elif gid in found and e["event"] == "redeemed":
            found[gid] = replace(found[gid], grantee=e["grantee"], institution=e["institution"])
        elif gid in found and e["event"] == "revoked":
            found[gid] = replace(found[gid], revoked=True)
    return list(found.values())


@dataclass(frozen=True)
class Consent:
    """What a citizen has agreed to, after the programme's events (``consent``).

    Attributes:
        signed_up: They have an app account (not deleted since).
        consented: The record-link consent (``RECORD_LINK``) is in force.
        linked: A record link completed under that consent: the national extracts (claims and
            dispensings) are theirs to see in the app.
        withdrawn: They gave the record-link consent and withdrew it (and have not given it
            again).
        deleted: Their last account was deleted.
        signed_up_at: When the account now open signed up.
        consented_at: When the consent now in force was given.
        linked_at: When the record link under it completed.
        withdrawn_at: When the consent was withdrawn.
    """

    signed_up: bool = False
    consented: bool = False
    linked: bool = False
    withdrawn: bool = False
    deleted: bool = False
    signed_up_at: datetime | None = None
    consented_at: datetime | None = None
    linked_at: datetime | None = None
    withdrawn_at: datetime | None = None

    @property
    def national(self) -> bool:
        """Whether the national extracts' records may be shown for this citizen."""
        return self.signed_up and self.consented and self.linked

    @property
    def state(self) -> ConsentState:
        """One word for the state, for the apps and the demo accounts."""
        if self.deleted:
            return "deleted"
        if self.withdrawn:
            return "withdrawn"
        if self.national:
            return "linked"
        if self.consented:
            return "consented"
        return "signed_up" if self.signed_up else "none"


# The fields of a ``Consent``, which ``gold.citizen_consent`` stores as columns of these names
# so a stored state is a ``Consent`` again (``Consent(**{f: row[f] for f in CONSENT_FIELDS})``).
CONSENT_FIELDS: Final = tuple(f.name for f in fields(Consent))


def consent(events: pl.DataFrame, start: Consent | None = None) -> Consent:
    """What one citizen has agreed to, from their ``silver.programme_events`` (``event_type``,
    ``occurred_at``, ``event_id``, ``details`` as JSON), in time order.

    Sign-up opens an account (a new one after a deletion starts over); the record-link consent
    starts a fresh agreement, so a link counts only when it completed after the consent now in
    force; withdrawing that consent, or deleting the account, ends the link. A failed link, a
    request still waiting and any other consent change nothing here.

    Args:
        events: The citizen's events (any types; only ``CONSENT_EVENTS`` count).
        start: The state before ``events`` (all of them later than what decided it): the
            pipeline's fold of the older events (``gold.citizen_consent``); nothing by default.
    """
    order = pl.col("event_type").replace_strict(CONSENT_EVENTS, default=None, return_dtype=pl.Int8)
    now = start or Consent()
    for e in (
        events.filter(order.is_not_null())
        .sort(pl.col("occurred_at"), order, pl.col("event_id"))
        .iter_rows(named=True)
    ):
        kind, at, details = e["event_type"], e["occurred_at"], json.loads(e["details"] or "{}")
        record_link = details.get("consent_type") == RECORD_LINK
        if kind == "signup":
            now = Consent(signed_up=True, signed_up_at=at)
        elif kind == "consent" and record_link and now.signed_up:
            now = Consent(True, True, signed_up_at=now.signed_up_at, consented_at=at)
        elif kind == "record_link_completed" and details.get("status") == "completed":
            now = replace(now, linked=now.consented, linked_at=at if now.consented else None)
        elif kind == "consent_withdrawn" and record_link and now.consented:
            now = Consent(True, withdrawn=True, signed_up_at=now.signed_up_at, withdrawn_at=at)
        elif kind == "account_deleted":
            now = Consent(deleted=True)
    return now


def requests(events: pl.DataFrame) -> pl.DataFrame:
    """Remote-reading requests as they stand after their ``ops.reading_requests`` events: one
    row per request (``READING_VIEW``) with its status (requested, then replied or cancelled),
    question, report and decision, newest request first."""
    events = events.sort("at", "event_id")
    if events.is_empty():
        return pl.DataFrame(schema=READING_VIEW)
    asked = events.filter(pl.col("event") == "requested").select(
        "request_id",
        "study_instance_uid",
        "patient_key",
        "from_institution",
        "to_institution",
        pl.col("actor").alias("requested_by"),
        pl.col("at").alias("requested_at"),
        pl.col("text").alias("question"),
    )
    later = (
        events.filter(pl.col("event") != "requested")
        .group_by("request_id", maintain_order=True)
        .agg(
            pl.col("event").last().alias("status"),
            pl.col("at").last().alias("answered_at"),
            pl.col("actor").last().alias("answered_by"),
            pl.col("text").filter(pl.col("event") == "replied").last().alias("report"),
            pl.col("decision").filter(pl.col("event") == "replied").last(),
        )
    )
    return (
        asked.join(later, on="request_id", how="left")
        .with_columns(pl.col("status").fill_null("requested"))
        .select(list(READING_VIEW))
        .sort("requested_at", descending=True)
    )


def open_studies(requests: pl.DataFrame, replied_since: datetime) -> set[str]:
    """The studies of ``requests`` (as ``requests`` folds them) still open to the hospital asked:
    the request is unanswered, or was answered at or after ``replied_since``."""
    open_ = requests.filter(
        (pl.col("status") == "requested")
        | ((pl.col("status") == "replied") & (pl.col("answered_at") >= replied_since))
    )
    return set(open_["study_instance_uid"].to_list())


def reading_state(requests: pl.DataFrame) -> pl.DataFrame:
    """Per study, its newest request's status (``reading``) and who asked
    (``requested_by_institution``): the worklist's remote-reading columns."""
    return requests.group_by("study_instance_uid").agg(
        pl.col("status").first().alias("reading"),
        pl.col("from_institution").first().alias("requested_by_institution"),
    )


def directions(requests: pl.DataFrame, institution: str, names: dict[str, str]) -> pl.DataFrame:
    """``requests`` as ``institution`` sees them: ``direction`` (sent or received) and the other
    institution's name (``counterpart``, from ``names`` by code; null when unknown)."""
    return requests.with_columns(
        pl.when(pl.col("from_institution") == institution)
        .then(pl.lit("sent"))
        .otherwise(pl.lit("received"))
        .alias("direction"),
    ).with_columns(
        pl.when(pl.col("direction") == "sent")
        .then(pl.col("to_institution"))
        .otherwise(pl.col("from_institution"))
        .replace_strict(names, default=None)
        .alias("counterpart"),
    )


def verified(findings: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """``findings`` with the latest decision of ``ops.triage_events`` on each
    (``verification``, ``unverified`` when none; ``decided_at``, ``decided_by``), by priority."""
    latest = triage.verification(events)
    return (
        findings.drop("verification")
        .join(
            latest.select(
                "tracking_uid",
                pl.col("decision").alias("verification"),
                "decided_at",
                "decided_by",
            ),
            on="tracking_uid",
            how="left",
        )
        .with_columns(pl.col("verification").fill_null("unverified"))
        .sort("priority", "service")
    )
