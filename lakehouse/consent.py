"""What a citizen has agreed to in the app, folded from the programme's own events: the one
definition of the consent rule's state. It sits outside ``lakehouse.access`` so the gold job
that stores it (``pipelines/transform/consent.py``) loads no access rule, as the audit's
writers do not; the access layer reads it through ``lakehouse.access.folds``."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Final, Literal

import polars as pl

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
