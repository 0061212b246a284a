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


def step(now: Consent, kind: str, at: datetime | None, details: str | None) -> Consent:
    """The state after one event on top of ``now``: the consent rule, one event at a time.

    Sign-up opens an account (a new one after a deletion starts over); the record-link consent
    starts a fresh agreement, so a link counts only when it completed after the consent now in
    force; withdrawing that consent, or deleting the account, ends the link. A failed link, a
    request still waiting and any other event change nothing here. ``consent`` folds one
    citizen's events with it; the gold job folds the whole city's in one pass
    (``pipelines.transform.consent``) with the same step, so there is one rule.

    Args:
        now: The state before the event.
        kind: Its ``event_type``.
        at: When it happened (``occurred_at``).
        details: Its ``details`` (JSON text, or null).
    """
    if kind not in CONSENT_EVENTS:
        return now
    found = json.loads(details or "{}")
    record_link = found.get("consent_type") == RECORD_LINK
    after = now
    if kind == "signup":
        after = Consent(signed_up=True, signed_up_at=at)
    elif kind == "consent" and record_link and now.signed_up:
        after = Consent(True, True, signed_up_at=now.signed_up_at, consented_at=at)
    elif kind == "record_link_completed" and found.get("status") == "completed":
        after = replace(now, linked=now.consented, linked_at=at if now.consented else None)
    elif kind == "consent_withdrawn" and record_link and now.consented:
        after = Consent(True, withdrawn=True, signed_up_at=now.signed_up_at, withdrawn_at=at)
    elif kind == "account_deleted":
        after = Consent(deleted=True)
    return after


def in_order(events: pl.DataFrame, *first: str) -> pl.DataFrame:
    """The events that decide consent, in the order the rule folds them: by time, then by the
    events' order in ``CONSENT_EVENTS`` (a sign-up before a consent of the same instant), then
    by id; within ``first`` columns (the citizen) when given."""
    order = pl.col("event_type").replace_strict(CONSENT_EVENTS, default=None, return_dtype=pl.Int8)
    return events.filter(order.is_not_null()).sort(
        *(pl.col(c) for c in first), pl.col("occurred_at"), order, pl.col("event_id")
    )


def consent(events: pl.DataFrame, start: Consent | None = None) -> Consent:
    """What one citizen has agreed to, from their ``silver.programme_events`` (``event_type``,
    ``occurred_at``, ``event_id``, ``details`` as JSON): ``step`` over them in order.

    Args:
        events: The citizen's events (any types; only ``CONSENT_EVENTS`` count).
        start: The state before ``events`` (all of them later than what decided it): the
            pipeline's fold of the older events (``gold.citizen_consent``); nothing by default.
    """
    now = start or Consent()
    ordered = in_order(events)
    for kind, at, details in zip(
        ordered["event_type"].to_list(),
        ordered["occurred_at"].to_list(),
        ordered["details"].to_list(),
        strict=True,
    ):
        now = step(now, kind, at, details)
    return now
