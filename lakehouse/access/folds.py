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

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

import polars as pl

from lakehouse import triage
from lakehouse.consent import (
    CONSENT_EVENTS,
    CONSENT_FIELDS,
    RECORD_LINK,
    Consent,
    ConsentState,
    consent,
)

# The consent fold lives in ``lakehouse.consent`` (the gold job stores it without loading the
# access rules); the access layer names it here, with the other folds.
__all__ = [
    "CONSENT_EVENTS",
    "CONSENT_FIELDS",
    "RECORD_LINK",
    "Consent",
    "ConsentState",
    "consent",
]

# At equal times a grant is created before it is accepted or used, and used before it is revoked.
EVENT_ORDER: Final = {"created": 0, "accepted": 1, "redeemed": 1, "revoked": 2}
# The programme's events that decide what a citizen has agreed to (app_event_types.csv), in the
# order they apply at equal times.
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
