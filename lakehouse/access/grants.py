"""Grants over a citizen's record: share codes, family carers, standing consents to an
institution, emergency access, and revoking them.

Grants are events in ``ops.grants`` (created, accepted, redeemed, revoked), folded by
``lakehouse.access.folds.grants``; share codes are stored only as keyed hashes. A share code
covers the kinds of records the citizen chose and lasts 30 to 60 minutes (Epic's share code lasts
an hour; the Korean app deletes a health centre's view after 30 minutes). A family carer's grant
starts pending and allows nothing until the carer accepts it. What a grant allows is decided by
the gate (``Gate.basis``, ``Gate._visible``), not here.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

import polars as pl

from lakehouse import delta, pseudonym, queries
from lakehouse import read as lake
from lakehouse.access.folds import Grant
from lakehouse.access.gate import GRANTS, SHARE_SCOPES, Gate
from lakehouse.catalog import table
from lakehouse.catalog.columns import YKIHO_PATTERN

SHARE_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud
SHARE_LENGTH: Final = 8
SHARE_MINUTES: Final = 60  # Epic's share codes last an hour
SHARE_MIN_MINUTES: Final = 30  # the Korean app deletes a health centre's view after 30 minutes
EMERGENCY_MINUTES: Final = 60
EMERGENCY_MAX_MINUTES: Final = 240
REASON_MIN: Final = 10  # characters: "emergency" alone is not a reason


def _code_hash(code: str) -> str:
    normalised = re.sub(r"[^A-Z0-9]", "", code.upper())
    return pseudonym.local_key("share-code", normalised)


class Grants(Gate):
    """The grant methods of ``Access``."""

    def _grant_event(
        self, grant_id: str, event: str, kind: str, subject: str, **fields: object
    ) -> None:
        row = {
            "event_id": uuid.uuid4().hex,
            "grant_id": grant_id,
            "event": event,
            "kind": kind,
            "at": self.clock(),
            "subject_key": subject,
            "actor": self.principal.account,
            "grantee": None,
            "institution": None,
            "code_hash": None,
            "expires_at": None,
            "reason": None,
            "scope": None,
        } | fields
        delta.append(GRANTS, pl.DataFrame([row], schema=table(GRANTS).polars_schema()))

    def _create(
        self,
        kind: str,
        subject: str,
        grantee: str | None = None,
        institution: str | None = None,
        expires_at: datetime | None = None,
        reason: str | None = None,
        scope: tuple[str, ...] | None = None,
        code_hash: str | None = None,
    ) -> Grant:
        """Write a grant's ``created`` event, now; returns the grant as the fold will see it."""
        grant = Grant(
            uuid.uuid4().hex,
            kind,
            subject,
            self.principal.account,
            grantee,
            institution,
            self.clock(),
            expires_at,
            False,
            reason,
            scope,
        )
        self._grant_event(
            grant.grant_id,
            "created",
            kind,
            subject,
            grantee=grantee,
            institution=institution,
            code_hash=code_hash,
            expires_at=expires_at,
            reason=reason,
            scope=",".join(scope) if scope else None,
        )
        return grant

    def create_share(
        self, minutes: int = SHARE_MINUTES, scope: tuple[str, ...] | None = None
    ) -> tuple[str, Grant]:
        """A citizen's one-time share code for their own record: the first clinician to enter
        it may read it until it expires, only the kinds of records ``scope`` names (groups of
        ``SHARE_SCOPES``; None: everything the citizen sees). Returns the code (shown once,
        never stored) and the grant.

        Raises:
            ValueError: ``minutes`` outside 30 to 60, or an unknown or empty ``scope``.
        """
        self._require("share:create", "citizen")
        if not SHARE_MIN_MINUTES <= minutes <= SHARE_MINUTES:
            raise ValueError(f"a share code lasts {SHARE_MIN_MINUTES} to {SHARE_MINUTES} minutes")
        if scope is not None:
            scope = tuple(sorted(set(scope)))
            if not scope or not set(scope) <= set(SHARE_SCOPES):
                raise ValueError(f"share some of {sorted(SHARE_SCOPES)}, or everything")
        subject = str(self.principal.citizen_key)
        code = "".join(secrets.choice(SHARE_ALPHABET) for _ in range(SHARE_LENGTH))
        expires = self.clock() + timedelta(minutes=minutes)
        grant = self._create(
            "share", subject, expires_at=expires, scope=scope, code_hash=_code_hash(code)
        )
        self._audit("share:create", "self", subject=subject, rows=1, detail=_scope_text(scope))
        return f"{code[:4]}-{code[4:]}", grant

    def grant_proxy(self, carer_account: str, until: date | None = None) -> Grant:
        """A citizen asks another citizen account to be their proxy (family carer): the grant
        is pending, and allows nothing, until the carer accepts it (``accept_proxy``)."""
        self._require("proxy:create", "citizen")
        if not carer_account or carer_account == self.principal.account:
            raise ValueError("name another account as the carer")
        subject = str(self.principal.citizen_key)
        expires = datetime.combine(until, datetime.min.time(), UTC) if until else None
        grant = self._create("proxy", subject, grantee=carer_account, expires_at=expires)
        self._audit("proxy:create", "self", subject=subject, rows=1, detail=carer_account)
        return grant

    def _as_carer(self) -> list[Grant]:
        """The proxy grants naming this citizen as the carer, as they stand now."""
        mine = lake.frame(
            GRANTS, (pl.col("kind") == "proxy") & (pl.col("grantee") == self.principal.account)
        )
        ids = mine["grant_id"].unique().to_list()
        if not ids:
            return []
        grants = self._grants(pl.col("grant_id").is_in(ids))
        return [g for g in grants if g.grantee == self.principal.account]

    def proxied(self) -> list[str]:
        """The citizen keys whose records this citizen may read as their active proxy."""
        self._require("grants:proxied", "citizen")
        now = self.clock()
        return sorted({g.subject_key for g in self._as_carer() if g.active(now)})

    def invitations(self) -> list[Grant]:
        """The requests to be someone's family carer this citizen has not answered yet."""
        self._require("grants:invitations", "citizen")
        now = self.clock()
        return [
            g
            for g in self._as_carer()
            if g.pending and not g.revoked and (g.expires_at is None or now < g.expires_at)
        ]

    def accept_proxy(self, grant_id: str) -> Grant:
        """The named carer accepts a request to be a citizen's proxy: their access starts now
        (and is audited per read, and shown to the citizen)."""
        self._require("proxy:accept", "citizen")
        found = {g.grant_id: g for g in self.invitations()}.get(grant_id)
        if found is None:
            raise self._deny("proxy:accept", "no pending request to be this citizen's carer")
        self._grant_event(grant_id, "accepted", "proxy", found.subject_key)
        self._audit("proxy:accept", "proxy", subject=found.subject_key, rows=1)
        return replace(found, accepted=True)

    def care_institutions(self) -> pl.DataFrame:
        """The institutions a citizen may give a standing consent to (code, name, class), by
        name: no personal data, so no audit row."""
        self._require("read:institutions", "citizen")
        found: pl.DataFrame = self._q(queries.care_institutions)()
        return found

    def grant_consent(self, institution: str) -> Grant:
        """A citizen's standing consent that one named institution's clinicians may read their
        whole record, other institutions' records included (the 진료정보교류 way), until they
        withdraw it (``revoke``).

        Raises:
            ValueError: ``institution`` is not a known institution's code.
        """
        self._require("consent:create", "citizen")
        known = self.care_institutions()["ykiho"]
        if not re.fullmatch(YKIHO_PATTERN, institution) or institution not in known:
            raise ValueError("name an institution by its code")
        subject = str(self.principal.citizen_key)
        grant = self._create("consent", subject, institution=institution)
        self._audit("consent:create", "self", subject=subject, rows=1, detail=institution)
        return grant

    def my_grants(self) -> list[Grant]:
        """The grants over the citizen's own record (share codes, carers, standing consents,
        emergency accesses), newest first."""
        self._require("grants:list", "citizen")
        subject = str(self.principal.citizen_key)
        grants = self._grants(pl.col("subject_key") == subject)
        self._audit("grants:list", "self", subject=subject, rows=len(grants))
        return sorted(grants, key=lambda g: g.created_at, reverse=True)

    def revoke(self, grant_id: str) -> None:
        """The citizen withdraws a share code, a carer or a standing consent over their own
        record, at once."""
        self._require("grant:revoke", "citizen")
        subject = str(self.principal.citizen_key)
        mine = {g.grant_id: g for g in self._grants(pl.col("subject_key") == subject)}
        grant = mine.get(grant_id)
        if grant is None or grant.kind == "emergency":
            raise self._deny("grant:revoke", "no such grant over your record", subject)
        self._grant_event(grant_id, "revoked", grant.kind, subject)
        self._audit("grant:revoke", "self", subject=subject, rows=1, detail=grant.kind)

    def redeem_share(self, code: str) -> str:
        """A clinician enters a citizen's share code; returns whose record it opens.

        Refused (and audited) when the code is unknown, expired, revoked or already used by
        another clinician."""
        self._require("share:redeem", "clinician")
        hashed = _code_hash(code)
        events = lake.frame(GRANTS, pl.col("code_hash") == hashed)
        if events.is_empty():
            raise self._deny("share:redeem", "unknown share code", code="share_unknown")
        subject = str(events["subject_key"][0])
        (grant,) = [
            g
            for g in self._grants(pl.col("subject_key") == subject)
            if g.grant_id == events["grant_id"][0]
        ]
        now = self.clock()
        if grant.revoked:
            raise self._deny("share:redeem", "the share code was revoked", subject, "share_revoked")
        if not grant.active(now):
            raise self._deny("share:redeem", "the share code has expired", subject, "share_expired")
        if grant.grantee not in (None, self.principal.account):
            raise self._deny(
                "share:redeem", "the share code was already used", subject, "share_used"
            )
        if grant.grantee is None:
            self._grant_event(
                grant.grant_id,
                "redeemed",
                "share",
                subject,
                grantee=self.principal.account,
                institution=self.principal.institution,
            )
        self._audit("share:redeem", "share", subject=subject, rows=1)
        return subject

    def open_emergency(
        self, subject_key: str, reason: str, minutes: int = EMERGENCY_MINUTES
    ) -> Grant:
        """Break the glass: a clinician states why they must see a record outside the rules.
        Time-limited, flagged for the admin's review and shown to the citizen."""
        self._require("emergency:open", "clinician")
        subject = self._subject("emergency:open", subject_key)
        reason = " ".join(reason.split())
        if len(reason) < REASON_MIN:
            raise self._deny(
                "emergency:open",
                "an emergency access needs a stated reason",
                subject,
                "reason_required",
            )
        if not 1 <= minutes <= EMERGENCY_MAX_MINUTES:
            raise ValueError(f"an emergency access lasts 1 to {EMERGENCY_MAX_MINUTES} minutes")
        grant = self._create(
            "emergency",
            subject,
            grantee=self.principal.account,
            institution=self.principal.institution,
            expires_at=self.clock() + timedelta(minutes=minutes),
            reason=reason,
        )
        self._audit(
            "emergency:open", "emergency", subject=subject, rows=1, emergency=True, detail=reason
        )
        return grant


def _scope_text(scope: tuple[str, ...] | None) -> str:
    """What a share covers, for the audit row's detail."""
    return "scope " + (",".join(scope) if scope else "all")
