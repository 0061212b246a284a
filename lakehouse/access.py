"""The access layer: the one way any app reads or writes person-level data.

Every call names a ``Principal`` (who is asking, in which role, from where) and is decided here,
never in a page: hiding a page is not access control. The rules deny by default:

* **citizen**: their own record, and the records of people who made them a proxy (family
  carer) until that grant is revoked or ends;
* **clinician**: patients of their own institution (a visit there, or a study it sent), a
  record a citizen shared with them through a share code (until it expires or is revoked), and
  otherwise only under emergency access: a stated reason, time-limited, every read flagged for
  review and shown to the citizen;
* **official**: aggregates only, with small cells suppressed and complemented
  (``lakehouse.disclosure``) here, so no page can forget to;
* **admin**: operations and the audit log, no clinical content.

Every person-level access, allowed or refused, appends one row to ``ops.audit_log`` (account,
role, time, origin, whose data, action, purpose, rows): the Medical Service Act's access log,
which the admin reviews and the citizen sees. Grants are events in ``ops.grants``; share codes
are stored only as keyed hashes. Inputs are never spliced into SQL: lookups are Polars
expressions on typed columns, and a citizen key must have the key's exact shape before it is
looked up, so a guessed or injected key is refused (and audited) before any table is read.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

import polars as pl

from lakehouse import buckets, delta, disclosure, identity, pseudonym
from lakehouse import read as lake
from lakehouse.catalog import table

Role = Literal["citizen", "clinician", "official", "admin"]
ROLES: Final[tuple[Role, ...]] = ("citizen", "clinician", "official", "admin")
AUDIT: Final = "ops.audit_log"
GRANTS: Final = "ops.grants"
TIMELINE: Final = "gold.citizen_timeline"
UPTAKE: Final = "gold.programme_uptake_daily"
KEY: Final = re.compile(r"^C[0-9a-f]{32}$")
SHARE_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud
SHARE_LENGTH: Final = 8
SHARE_MINUTES: Final = 60  # Epic's share codes last an hour
EMERGENCY_MINUTES: Final = 60
EMERGENCY_MAX_MINUTES: Final = 240
REASON_MIN: Final = 10  # characters: "emergency" alone is not a reason
EVENT_ORDER: Final = {"created": 0, "redeemed": 1, "revoked": 2}
UPTAKE_DIMENSIONS: Final = ("district_code", "age_group", "sex")
# How a measure of the daily table adds up over a period: flows are summed over the days,
# stocks are taken on the period's last day.
UPTAKE_MEASURES: Final[dict[str, Literal["sum", "last"]]] = {
    "signups": "sum",
    "centre_visitors": "sum",
    "residents": "last",
    "app_users": "last",
}


class AccessDeniedError(PermissionError):
    """The principal may not do this; the refusal is already in the audit log."""


@dataclass(frozen=True)
class Principal:
    """Who is asking.

    Attributes:
        account: The account name (local, or the identity provider's subject).
        role: What they are here as.
        display_name: How the apps greet them (staff; a citizen's name comes from the vault).
        institution: The clinician's institution (YKIHO code).
        citizen_key: The citizen's own pseudonymous key.
        origin: Where the request came from: the app and the client's address.
    """

    account: str
    role: Role
    display_name: str = ""
    institution: str | None = None
    citizen_key: str | None = None
    origin: str = "unknown"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")
        if self.role == "citizen" and not (self.citizen_key and KEY.match(self.citizen_key)):
            raise ValueError("a citizen principal needs their citizen key")
        if self.role == "clinician" and not self.institution:
            raise ValueError("a clinician principal needs an institution")

    def at(self, origin: str) -> Principal:
        """The same principal, asking from ``origin``."""
        return replace(self, origin=origin)


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

    def active(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


def _now() -> datetime:
    return datetime.now(UTC)


def _code_hash(code: str) -> str:
    normalised = re.sub(r"[^A-Z0-9]", "", code.upper())
    return pseudonym.local_key("share-code", normalised)


class Access:
    """The access layer for one principal: every method checks, reads and audits.

    Args:
        principal: Who is asking.
        clock: The current time (tests move it to expire grants).
    """

    def __init__(self, principal: Principal, clock: Callable[[], datetime] = _now) -> None:
        self.principal = principal
        self.clock = clock

    # --- the ledger -------------------------------------------------------------------------

    def _audit(
        self,
        action: str,
        purpose: str,
        *,
        subject: str | None = None,
        rows: int = 0,
        allowed: bool = True,
        emergency: bool = False,
        detail: str | None = None,
    ) -> None:
        at = self.clock()
        p = self.principal
        entry = {
            "event_id": uuid.uuid4().hex,
            "at": at,
            "month": at.strftime("%Y-%m"),
            "account": p.account,
            "role": p.role,
            "institution": p.institution,
            "origin": p.origin,
            "subject_key": subject if subject and KEY.match(subject) else None,
            "action": action,
            "purpose": purpose,
            "outcome": "allowed" if allowed else "denied",
            "rows": rows,
            "emergency": emergency,
            "detail": detail,
        }
        spec = table(AUDIT)
        delta.append(AUDIT, pl.DataFrame([entry], schema=spec.polars_schema()))

    def _deny(self, action: str, detail: str, subject: str | None = None) -> AccessDeniedError:
        """Audit a refusal and return the exception to raise (``raise self._deny(...)``)."""
        self._audit(action, "none", subject=subject, allowed=False, detail=detail)
        return AccessDeniedError(detail)

    def _require(self, action: str, *roles: Role) -> None:
        if self.principal.role not in roles:
            raise self._deny(action, f"the {self.principal.role} role may not {action}")

    def _subject(self, action: str, subject_key: str) -> str:
        """``subject_key`` if it has a citizen key's shape; refused (and audited) otherwise."""
        if not isinstance(subject_key, str) or not KEY.match(subject_key):
            raise self._deny(action, "not a citizen key")
        return subject_key

    # --- grants -----------------------------------------------------------------------------

    def _grants(self, where: pl.Expr) -> list[Grant]:
        # Events in the order they happened; at equal times a grant is created before it is
        # used and used before it is revoked.
        order = pl.col("event").replace_strict(EVENT_ORDER, return_dtype=pl.Int8)
        events = lake.frame(GRANTS, where).sort(pl.col("at"), order, pl.col("event_id"))
        grants: dict[str, Grant] = {}
        for e in events.iter_rows(named=True):
            gid = e["grant_id"]
            if e["event"] == "created":
                grants[gid] = Grant(
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
                )
            elif gid in grants and e["event"] == "redeemed":
                grants[gid] = replace(
                    grants[gid], grantee=e["grantee"], institution=e["institution"]
                )
            elif gid in grants and e["event"] == "revoked":
                grants[gid] = replace(grants[gid], revoked=True)
        return list(grants.values())

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
        } | fields
        delta.append(GRANTS, pl.DataFrame([row], schema=table(GRANTS).polars_schema()))

    def create_share(self, minutes: int = SHARE_MINUTES) -> tuple[str, Grant]:
        """A citizen's one-time share code for their own record: the first clinician to enter
        it may read the record until it expires. Returns the code (shown once, never stored)
        and the grant."""
        self._require("share:create", "citizen")
        if not 1 <= minutes <= 24 * 60:
            raise ValueError("a share code lasts between 1 minute and 24 hours")
        subject = str(self.principal.citizen_key)
        code = "".join(secrets.choice(SHARE_ALPHABET) for _ in range(SHARE_LENGTH))
        now = self.clock()
        grant_id = uuid.uuid4().hex
        expires = now + timedelta(minutes=minutes)
        self._grant_event(
            grant_id, "created", "share", subject, code_hash=_code_hash(code), expires_at=expires
        )
        self._audit("share:create", "self", subject=subject, rows=1)
        pretty = f"{code[:4]}-{code[4:]}"
        return pretty, Grant(
            grant_id,
            "share",
            subject,
            self.principal.account,
            None,
            None,
            now,
            expires,
            False,
            None,
        )

    def grant_proxy(self, carer_account: str, until: date | None = None) -> Grant:
        """A citizen makes another citizen account their proxy (family carer)."""
        self._require("proxy:create", "citizen")
        if not carer_account or carer_account == self.principal.account:
            raise ValueError("name another account as the carer")
        subject = str(self.principal.citizen_key)
        expires = datetime.combine(until, datetime.min.time(), UTC) if until else None
        grant_id = uuid.uuid4().hex
        self._grant_event(
            grant_id, "created", "proxy", subject, grantee=carer_account, expires_at=expires
        )
        self._audit("proxy:create", "self", subject=subject, rows=1, detail=carer_account)
        return Grant(
            grant_id,
            "proxy",
            subject,
            self.principal.account,
            carer_account,
            None,
            self.clock(),
            expires,
            False,
            None,
        )

    def proxied(self) -> list[str]:
        """The citizen keys whose records this citizen may read as their active proxy."""
        self._require("grants:proxied", "citizen")
        mine = lake.frame(
            GRANTS, (pl.col("kind") == "proxy") & (pl.col("grantee") == self.principal.account)
        )
        ids = mine["grant_id"].unique().to_list()
        if not ids:
            return []
        now = self.clock()
        grants = self._grants(pl.col("grant_id").is_in(ids))
        return sorted(
            {g.subject_key for g in grants if g.grantee == self.principal.account and g.active(now)}
        )

    def my_grants(self) -> list[Grant]:
        """The grants over the citizen's own record (share codes, proxies, emergency
        accesses), newest first."""
        self._require("grants:list", "citizen")
        subject = str(self.principal.citizen_key)
        grants = self._grants(pl.col("subject_key") == subject)
        self._audit("grants:list", "self", subject=subject, rows=len(grants))
        return sorted(grants, key=lambda g: g.created_at, reverse=True)

    def revoke(self, grant_id: str) -> None:
        """The citizen withdraws a share code or a proxy over their own record."""
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
            raise self._deny("share:redeem", "unknown share code")
        subject = str(events["subject_key"][0])
        (grant,) = [
            g
            for g in self._grants(pl.col("subject_key") == subject)
            if g.grant_id == events["grant_id"][0]
        ]
        now = self.clock()
        if grant.revoked:
            raise self._deny("share:redeem", "the share code was revoked", subject)
        if not grant.active(now):
            raise self._deny("share:redeem", "the share code has expired", subject)
        if grant.grantee not in (None, self.principal.account):
            raise self._deny("share:redeem", "the share code was already used", subject)
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
            raise self._deny("emergency:open", "an emergency access needs a stated reason", subject)
        if not 1 <= minutes <= EMERGENCY_MAX_MINUTES:
            raise ValueError(f"an emergency access lasts 1 to {EMERGENCY_MAX_MINUTES} minutes")
        now = self.clock()
        grant_id = uuid.uuid4().hex
        expires = now + timedelta(minutes=minutes)
        self._grant_event(
            grant_id,
            "created",
            "emergency",
            subject,
            grantee=self.principal.account,
            institution=self.principal.institution,
            expires_at=expires,
            reason=reason,
        )
        self._audit(
            "emergency:open", "emergency", subject=subject, rows=1, emergency=True, detail=reason
        )
        return Grant(
            grant_id,
            "emergency",
            subject,
            self.principal.account,
            self.principal.account,
            self.principal.institution,
            now,
            expires,
            False,
            reason,
        )

    # --- the rules ----------------------------------------------------------------------------

    def _is_patient_of(self, subject: str, institution: str) -> bool:
        """A visit at the institution on the citizen's timeline, or a study it sent."""
        bucket = buckets.key_bucket(subject)
        seen = (
            lake.scan(TIMELINE)
            .filter(
                (pl.col("key_bucket") == bucket)
                & (pl.col("citizen_key") == subject)
                & (pl.col("institution") == institution)
            )
            .select(pl.len())
            .collect()
            .item()
        )
        if seen:
            return True
        studies = (
            lake.scan("silver.imaging_studies")
            .filter((pl.col("citizen_key") == subject) & (pl.col("institution") == institution))
            .select(pl.len())
            .collect()
            .item()
        )
        return bool(studies)

    def basis(self, action: str, subject_key: str) -> str:
        """Why this principal may read ``subject_key``'s record (the audit's purpose), or
        ``AccessDeniedError`` (audited). The one decision every person-level read goes through."""
        subject = self._subject(action, subject_key)
        p, now = self.principal, self.clock()
        if p.role == "citizen":
            if subject == p.citizen_key:
                return "self"
            proxies = self._grants(pl.col("subject_key") == subject)
            if any(g.kind == "proxy" and g.grantee == p.account and g.active(now) for g in proxies):
                return "proxy"
            raise self._deny(action, "not your record, and no proxy grant", subject)
        if p.role == "clinician":
            grants = [g for g in self._grants(pl.col("subject_key") == subject) if g.active(now)]
            if any(g.kind == "share" and g.grantee == p.account for g in grants):
                return "share"
            if p.institution and self._is_patient_of(subject, p.institution):
                return "institution"
            if any(g.kind == "emergency" and g.grantee == p.account for g in grants):
                return "emergency"
            raise self._deny(action, "not a patient of your institution, and no grant", subject)
        raise self._deny(action, f"the {p.role} role sees no person-level data", subject)

    # --- person-level reads -------------------------------------------------------------------

    def timeline(self, subject_key: str) -> pl.DataFrame:
        """A citizen's lifetime timeline (one partition read), newest first."""
        purpose = self.basis("read:timeline", subject_key)
        bucket = buckets.key_bucket(subject_key)
        rows = (
            lake.scan(TIMELINE)
            .filter((pl.col("key_bucket") == bucket) & (pl.col("citizen_key") == subject_key))
            .drop("key_bucket")
            .sort("event_date", "source_ref", descending=[True, False])
            .collect()
        )
        self._audit(
            "read:timeline",
            purpose,
            subject=subject_key,
            rows=rows.height,
            emergency=purpose == "emergency",
        )
        return rows

    def name(self, subject_key: str) -> str:
        """The citizen's own name, decrypted from the vault: for the person themselves (and
        their proxy) only; clinicians see the pseudonymous key, age and sex."""
        purpose = self.basis("read:name", subject_key)
        if purpose not in ("self", "proxy"):
            raise self._deny(
                "read:name", "names are shown to the person and their proxy only", subject_key
            )
        found = lake.frame("vault.identities", pl.col("citizen_key") == subject_key)
        self._audit("read:name", purpose, subject=subject_key, rows=found.height)
        return identity.decrypt(found["name_enc"][0]) if found.height else ""

    def who_viewed_me(self) -> pl.DataFrame:
        """Who read the citizen's record (other than the citizen), newest first: account, role,
        institution, when, what, on what basis and whether it was an emergency access."""
        self._require("read:access_history", "citizen")
        subject = str(self.principal.citizen_key)
        rows = (
            lake.scan(AUDIT)
            .filter(
                (pl.col("subject_key") == subject)
                & (pl.col("account") != self.principal.account)
                & (pl.col("outcome") == "allowed")
            )
            .select(
                "at", "account", "role", "institution", "action", "purpose", "emergency", "rows"
            )
            .sort("at", descending=True)
            .collect()
        )
        self._audit("read:access_history", "self", subject=subject, rows=rows.height)
        return rows

    # --- aggregates -------------------------------------------------------------------------

    def uptake(
        self, measure: str, dims: Sequence[str], first_month: str, last_month: str
    ) -> pl.DataFrame:
        """Programme uptake over whole months, by any of district, age group and sex, as it may
        be published: cells of 1-10 suppressed and complemented (``lakehouse.disclosure``), every
        margin included (``disclosure.TOTAL`` in a dimension), hidden values null and flagged in
        ``suppressed``.

        Args:
            measure: ``signups`` or ``centre_visitors`` (summed over the days), ``residents`` or
                ``app_users`` (on the period's last day).
            dims: Which of ``UPTAKE_DIMENSIONS`` to break down by (none: the city's total).
            first_month: ``YYYY-MM``; periods are whole months, so two queries cannot be
                differenced into a single day.
            last_month: ``YYYY-MM``, inclusive.
        """
        self._require("read:aggregate", "official")
        if measure not in UPTAKE_MEASURES:
            raise ValueError(f"unknown measure {measure!r}; one of {sorted(UPTAKE_MEASURES)}")
        unknown = [d for d in dims if d not in UPTAKE_DIMENSIONS]
        if unknown or len(set(dims)) != len(dims):
            raise ValueError(f"dimensions are distinct ones of {UPTAKE_DIMENSIONS}")
        start, end = _month(first_month), _month(last_month, end=True)
        if end < start:
            raise ValueError("the period ends before it starts")
        daily = lake.scan(UPTAKE).filter(pl.col("day").is_between(start, end))
        if UPTAKE_MEASURES[measure] == "last":
            daily = daily.filter(pl.col("day") == pl.col("day").max())
        cells = (
            daily.group_by(*dims).agg(pl.col(measure).sum().cast(pl.Int64)).collect()
            if dims
            else daily.select(pl.col(measure).sum().cast(pl.Int64)).collect()
        )
        protected = disclosure.protect(cells, list(dims), measure)
        # One flag for every hidden cell: which were 1-10 (primary) and which were hidden to
        # protect them (complementary) would bound the hidden counts, so that stays here.
        published = protected.with_columns(
            (pl.col(disclosure.STATUS) != disclosure.SHOWN).alias("suppressed")
        ).drop(disclosure.STATUS)
        self._audit(
            "read:aggregate",
            "monitoring",
            rows=published.height,
            detail=f"{measure} by {','.join(dims) or '-'} {first_month}..{last_month}",
        )
        return published

    def uptake_months(self) -> list[str]:
        """The whole months the uptake table covers (``YYYY-MM``), for choosing a period."""
        self._require("read:aggregate", "official")
        bounds = (
            lake.scan(UPTAKE)
            .select(pl.col("day").min().alias("a"), pl.col("day").max().alias("b"))
            .collect()
        )
        first, last = bounds["a"][0], bounds["b"][0]
        if first is None or last is None:
            return []
        months, year, month = [], first.year, first.month
        while (year, month) <= (last.year, last.month):
            months.append(f"{year:04d}-{month:02d}")
            year, month = year + month // 12, month % 12 + 1
        return months

    # --- oversight ----------------------------------------------------------------------------

    def audit_log(
        self,
        since: datetime,
        until: datetime | None = None,
        account: str | None = None,
        emergency_only: bool = False,
    ) -> pl.DataFrame:
        """The access log for review (admin only), newest first; reading it is logged too."""
        self._require("read:audit_log", "admin")
        until = until or self.clock()
        where = pl.col("at").is_between(since, until)
        if account:
            where &= pl.col("account") == account
        if emergency_only:
            where &= pl.col("emergency")
        rows = lake.scan(AUDIT).filter(where).sort("at", descending=True).collect()
        self._audit("read:audit_log", "oversight", rows=rows.height)
        return rows


AUDIT_MIN_DAYS: Final = 731  # the Medical Service Act's two years, leap day included
AUDIT_DEFAULT_DAYS: Final = 1096  # three years unless the deployment says otherwise


def audit_retention_days() -> int:
    """How long access-log entries are kept: ``GJH_AUDIT_RETENTION_DAYS``, never under two
    years (a shorter setting is refused, not shortened silently)."""
    days = int(os.environ.get("GJH_AUDIT_RETENTION_DAYS", AUDIT_DEFAULT_DAYS))
    if days < AUDIT_MIN_DAYS:
        raise ValueError(f"access logs are kept at least {AUDIT_MIN_DAYS} days, not {days}")
    return days


def expire_audit(now: datetime | None = None) -> int:
    """Delete the access log's whole months that ended before the retention period; returns
    the entries deleted. A month goes only when its last day is older than the period."""
    cutoff = (now or _now()) - timedelta(days=audit_retention_days())
    return delta.delete(AUDIT, f"month < '{cutoff:%Y-%m}'")


def _month(text: str, end: bool = False) -> date:
    """The first (or last) day of a ``YYYY-MM`` month; anything else is refused."""
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text or ""):
        raise ValueError(f"expected YYYY-MM, got {text!r}")
    first = date(int(text[:4]), int(text[5:]), 1)
    if not end:
        return first
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)
