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

import io
import json
import os
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

import duckdb
import numpy as np
import polars as pl
import pydicom
from numpy.typing import NDArray

from lakehouse import delta, dicom_store, disclosure, identity, pseudonym, queries, triage
from lakehouse import read as lake
from lakehouse.catalog import table

Role = Literal["citizen", "clinician", "official", "admin"]
ROLES: Final[tuple[Role, ...]] = ("citizen", "clinician", "official", "admin")
AUDIT: Final = "ops.audit_log"
GRANTS: Final = "ops.grants"
UPTAKE: Final = "gold.programme_uptake_daily"
FINDINGS: Final = "ai.findings"
TRIAGE: Final = "ops.triage_events"
READINGS: Final = "ops.reading_requests"
UID: Final = re.compile(r"[0-9]+(\.[0-9]+)*")  # fullmatch; 64 characters at most
NOTE_MAX: Final = 1000  # characters of a decision's note or a reading question
REPORT_MAX: Final = 4000  # characters of a remote reading's report
FOLLOW_TRIES: Final = 8  # rounds for a finding's verification to settle under concurrent decisions
REMOTE_DAYS: Final = 30  # a reading hospital keeps access this long after it replied
CONTEXT_DAYS: Final = 365  # diagnoses from a year before the study on
CURRENT_DRUG_DAYS: Final = 90  # prescriptions from a quarter before the study on
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
        if self.role == "citizen" and not (self.citizen_key and KEY.fullmatch(self.citizen_key)):
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


@dataclass(frozen=True)
class PatientContext:
    """The patient beside the images (``Access.patient_context``)."""

    diagnoses: pl.DataFrame
    prescriptions: pl.DataFrame
    priors: pl.DataFrame

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


def _now() -> datetime:
    return datetime.now(UTC)


Query = Callable[..., Any]


def _direct(query: Query) -> Query:
    return query


@dataclass(frozen=True)
class Readers:
    """How the access layer reaches the tables the pipelines write: ``memo`` wraps each
    ``lakehouse.queries`` function (an app passes a cache with a time to live; the default reads
    every time), ``connect`` gives a DuckDB connection with the tables as views (an app passes a
    connection kept for the process). Checks and audit rows never go through either."""

    memo: Callable[[Query], Query] = _direct
    connect: Callable[[], duckdb.DuckDBPyConnection] = lake.connect


def _code_hash(code: str) -> str:
    normalised = re.sub(r"[^A-Z0-9]", "", code.upper())
    return pseudonym.local_key("share-code", normalised)


class Access:
    """The access layer for one principal: every method checks, reads and audits.

    Args:
        principal: Who is asking.
        clock: The current time (tests move it to expire grants).
        readers: How pipeline tables are read (an app's cache); see ``Readers``.
    """

    def __init__(
        self,
        principal: Principal,
        clock: Callable[[], datetime] = _now,
        readers: Readers | None = None,
    ) -> None:
        self.principal = principal
        self.clock = clock
        self.readers = readers or Readers()

    def _q(self, query: Query) -> Query:
        """A ``lakehouse.queries`` function as this layer's readers run it."""
        return self.readers.memo(query)

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
        p = self.principal
        entry = _audit_row(
            self.clock(),
            p.account,
            p.role,
            p.origin,
            action,
            purpose,
            institution=p.institution,
            subject=subject,
            rows=rows,
            allowed=allowed,
            emergency=emergency,
            detail=detail,
        )
        delta.append(AUDIT, pl.DataFrame([entry], schema=table(AUDIT).polars_schema()))

    def _deny(self, action: str, detail: str, subject: str | None = None) -> AccessDeniedError:
        """Audit a refusal and return the exception to raise (``raise self._deny(...)``)."""
        self._audit(action, "none", subject=subject, allowed=False, detail=detail)
        return AccessDeniedError(detail)

    def _require(self, action: str, *roles: Role) -> None:
        if self.principal.role not in roles:
            raise self._deny(action, f"the {self.principal.role} role may not {action}")

    def _subject(self, action: str, subject_key: str) -> str:
        """``subject_key`` if it has a citizen key's shape; refused (and audited) otherwise."""
        if not isinstance(subject_key, str) or not KEY.fullmatch(subject_key):
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
        return bool(self._q(queries.visited)(subject, institution))

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
        rows: pl.DataFrame = self._q(queries.timeline)(subject_key)
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

    # --- imaging: worklist, studies, decisions, remote readings ------------------------------

    def _study(self, action: str, study_uid: str) -> tuple[dict[str, Any], str]:
        """The study's row and why this clinician may see it, or ``AccessDeniedError``
        (audited): a study their institution sent, one sent to it for a remote reading, or a
        study of a patient they may see (``basis``)."""
        self._require(action, "clinician")
        if not isinstance(study_uid, str) or len(study_uid) > 64 or not UID.fullmatch(study_uid):
            raise self._deny(action, "not a study UID")
        found: pl.DataFrame = self._q(queries.studies)((study_uid,))
        if found.is_empty():
            raise self._deny(action, "no such study")
        study = found.row(0, named=True)
        subject = study["citizen_key"]
        if study["institution"] == self.principal.institution:
            return study, "institution"
        if study_uid in self._remote_studies():
            return study, "remote_reading"
        if subject is None:
            raise self._deny(action, "a study of another institution", None)
        try:
            return study, self.basis(action, subject)
        except AccessDeniedError:
            raise AccessDeniedError("a study of another institution") from None

    def _requests(self, where: pl.Expr) -> pl.DataFrame:
        """Remote-reading requests as they stand after their events: one row per request with
        its status (requested, replied, cancelled), question, report and decision."""
        events = lake.frame(READINGS, where).sort("at", "event_id")
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

    def _remote_studies(self) -> set[str]:
        """Studies sent to this clinician's institution for a reading that is still open, or
        was answered within ``REMOTE_DAYS``."""
        mine = self._requests(pl.col("to_institution") == self.principal.institution)
        cutoff = self.clock() - timedelta(days=REMOTE_DAYS)
        open_ = mine.filter(
            (pl.col("status") == "requested")
            | ((pl.col("status") == "replied") & (pl.col("answered_at") >= cutoff))
        )
        return set(open_["study_instance_uid"].to_list())

    def _audit_study(
        self, action: str, study: dict[str, Any], purpose: str, rows: int, detail: str | None
    ) -> None:
        self._audit(
            action,
            purpose,
            subject=study["citizen_key"],
            rows=rows,
            emergency=purpose == "emergency",
            detail=detail if study["citizen_key"] else f"patient {study['patient_key']}",
        )

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
        events = lake.frame(TRIAGE, pl.col("study_instance_uid").is_in(list(uids)))
        rows = triage.worklist(own, studies, events, self.clock())
        requests = self._requests(pl.col("study_instance_uid").is_in(list(uids)))
        rows = rows.join(
            requests.group_by("study_instance_uid").agg(
                pl.col("status").first().alias("reading"),
                pl.col("from_institution").first().alias("requested_by_institution"),
            ),
            on="study_instance_uid",
            how="left",
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
        every: pl.DataFrame = self._q(queries.findings_of_studies)((study_uid,))
        findings = triage.latest_findings(every)
        events = lake.frame(TRIAGE, pl.col("study_instance_uid") == study_uid).sort(
            "at", "event_id"
        )
        verified = triage.verification(events)
        findings = (
            findings.drop("verification")
            .join(
                verified.select(
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
        instances: pl.DataFrame = self._q(queries.instances)(study_uid)
        datasets = [dicom_store.dataset(uri) for uri in instances["file_uri"].to_list()]
        heatmaps: dict[str, NDArray[np.float32]] = {}
        for tracking, uri in findings.select("tracking_uid", "heatmap_uri").iter_rows():
            if uri:
                heatmaps[tracking] = np.load(io.BytesIO(dicom_store.get(uri))).astype(np.float32)
        requests = self._requests(pl.col("study_instance_uid") == study_uid)
        context = self._context(study)
        self._audit_study("read:study", study, purpose, len(datasets) + context.rows, "context")
        return OpenedStudy(
            study, purpose, findings, events, instances, datasets, heatmaps, requests, context
        )

    def patient_context(self, study_uid: str) -> PatientContext:
        """What the reader needs beside the images: the patient's diagnoses from a year before
        the study and prescriptions from a quarter before it (claims, from the timeline; each
        code once, newest first) and their other studies with the AI's findings. Audited as one
        read of the patient's record."""
        study, purpose = self._study("read:context", study_uid)
        context = self._context(study)
        self._audit_study("read:context", study, purpose, context.rows, None)
        return context

    def _context(self, study: dict[str, Any]) -> PatientContext:
        """``patient_context`` of a study already allowed (the caller audits)."""
        study_uid = study["study_instance_uid"]
        subject, patient = study["citizen_key"], study["patient_key"]
        timeline = (
            self._q(queries.timeline)(subject)
            if subject
            else pl.DataFrame(schema=table(queries.TIMELINE).polars_schema()).drop("key_bucket")
        )
        anchor = (study["study_datetime"] or self.clock()).date()
        recent = timeline.filter(
            (pl.col("kind") == "diagnosis")
            & (pl.col("event_date") >= anchor - timedelta(days=CONTEXT_DAYS))
        ).unique("code", keep="first", maintain_order=True)
        current = timeline.filter(
            (pl.col("kind") == "prescription")
            & (pl.col("event_date") >= anchor - timedelta(days=CURRENT_DRUG_DAYS))
        ).unique("code", keep="first", maintain_order=True)
        priors_s: pl.DataFrame = self._q(queries.studies_of_patient)(patient)
        priors_s = priors_s.filter(pl.col("study_instance_uid") != study_uid)
        prior_f = triage.latest_findings(self._q(queries.findings_of_patient)(patient))
        priors = priors_s.select(
            "study_instance_uid",
            "study_datetime",
            "modalities",
            "study_description",
            "institution_name",
        ).join(
            prior_f.group_by("study_instance_uid").agg(
                pl.format("{} {}", "service", "finding_code").str.join(", ").alias("findings"),
                pl.col("positive").any().alias("positive"),
                pl.col("score").max().alias("score"),
            ),
            on="study_instance_uid",
            how="left",
        )
        return PatientContext(recent, current, priors)

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
        self._require("write:reading", "clinician")
        found = self._requests(pl.col("request_id") == request_id)
        if found.is_empty() or found["to_institution"][0] != self.principal.institution:
            raise self._deny("write:reading", "no such request to your institution")
        request = found.row(0, named=True)
        if request["status"] != "requested":
            raise ValueError(f"the request is already {request['status']}")
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
        self._require("write:reading", "clinician")
        found = self._requests(pl.col("request_id") == request_id)
        if found.is_empty() or found["from_institution"][0] != self.principal.institution:
            raise self._deny("write:reading", "no such request from your institution")
        request = found.row(0, named=True)
        if request["status"] != "requested":
            raise ValueError(f"the request is already {request['status']}")
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
        me = self.principal.institution
        found = self._requests(
            (pl.col("from_institution") == me) | (pl.col("to_institution") == me)
        )
        codes = tuple(
            sorted(
                set(found["from_institution"].to_list()) | set(found["to_institution"].to_list())
            )
        )
        names: dict[str, str] = self._q(queries.institution_names)(codes) if codes else {}
        rows = found.with_columns(
            pl.when(pl.col("from_institution") == me)
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
        self._audit("read:readings", "institution", rows=rows.height)
        return rows

    def triage_stats(self) -> pl.DataFrame:
        """Turnaround and agreement per AI service and month of acquisition: findings, median
        hours from acquisition to scoring and from scoring to the first decision, AI flags
        (positive findings) decided and accepted, and disagreements (rejected or amended). A
        clinician sees their institution's studies; the admin sees the whole city (the model
        monitoring view). Aggregates only, with no person in them."""
        self._require("read:triage_stats", "clinician", "admin")
        institution = self.principal.institution if self.principal.role == "clinician" else None
        rows = _triage_stats(self.readers.connect(), institution)
        self._audit("read:triage_stats", "monitoring", rows=rows.height, detail=institution)
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


STATS_SQL: Final = """
WITH f AS (
    SELECT * FROM ai.findings WHERE $institution IS NULL OR institution = $institution
    QUALIFY scored_at = max(scored_at) OVER (PARTITION BY study_instance_uid, service, finding_code)
), s AS (
    SELECT study_instance_uid, coalesce(study_datetime, first_received_at) AS acquired_at
    FROM silver.imaging_studies
), d AS (
    SELECT tracking_uid, min("at") AS first_decided_at, arg_max(decision, "at") AS decision
    FROM {events} WHERE decision <> 'review' GROUP BY tracking_uid
)
SELECT f.service,
       strftime(s.acquired_at, '%Y-%m') AS month,
       count(*) AS findings,
       count(*) FILTER (WHERE f.status = 'failed') AS failed,
       median(epoch(f.scored_at - s.acquired_at) / 3600) AS hours_to_score,
       median(epoch(d.first_decided_at - f.scored_at) / 3600) AS hours_to_decision,
       count(d.decision) AS decided,
       count(*) FILTER (WHERE f.positive) AS flags,
       count(*) FILTER (WHERE f.positive AND d.decision IS NOT NULL) AS flags_decided,
       count(*) FILTER (WHERE f.positive AND d.decision = 'accepted') AS flags_accepted,
       count(*) FILTER (WHERE d.decision IN ('rejected', 'amended')) AS disagreements
FROM f JOIN s USING (study_instance_uid) LEFT JOIN d USING (tracking_uid)
GROUP BY ALL
ORDER BY f.service, month
"""


def _triage_stats(con: duckdb.DuckDBPyConnection, institution: str | None) -> pl.DataFrame:
    """``Access.triage_stats``'s figures, computed by DuckDB over the Delta tables."""
    cursor = con.cursor()
    lake.ensure_views(cursor, (FINDINGS, "silver.imaging_studies", TRIAGE))
    if not lake.has_view(cursor, FINDINGS):
        return pl.DataFrame(schema=STATS_SCHEMA)
    events = TRIAGE if lake.has_view(cursor, TRIAGE) else EMPTY_EVENTS
    found = cursor.execute(STATS_SQL.format(events=events), {"institution": institution}).pl()
    return found.with_columns(
        (pl.col("flags_accepted") / pl.col("flags_decided")).alias("accepted_share")
    ).cast(STATS_SCHEMA)  # type: ignore[arg-type]


EMPTY_EVENTS: Final = (
    '(SELECT NULL::VARCHAR AS tracking_uid, NULL::TIMESTAMPTZ AS "at", '
    "NULL::VARCHAR AS decision WHERE false)"
)
STATS_SCHEMA: Final[dict[str, pl.DataType]] = {
    "service": pl.Utf8(),
    "month": pl.Utf8(),
    "findings": pl.Int64(),
    "failed": pl.Int64(),
    "hours_to_score": pl.Float64(),
    "hours_to_decision": pl.Float64(),
    "decided": pl.Int64(),
    "flags": pl.Int64(),
    "flags_decided": pl.Int64(),
    "flags_accepted": pl.Int64(),
    "disagreements": pl.Int64(),
    "accepted_share": pl.Float64(),
}


def _audit_row(
    at: datetime,
    account: str,
    role: Role,
    origin: str,
    action: str,
    purpose: str,
    *,
    institution: str | None = None,
    subject: str | None = None,
    rows: int = 1,
    allowed: bool = True,
    emergency: bool = False,
    detail: str | None = None,
) -> dict[str, object]:
    """One ``ops.audit_log`` entry; a subject that is not a citizen key is not recorded as one."""
    return {
        "event_id": uuid.uuid4().hex,
        "at": at,
        "month": at.strftime("%Y-%m"),
        "account": account,
        "role": role,
        "institution": institution,
        "origin": origin,
        "subject_key": subject if subject and KEY.fullmatch(subject) else None,
        "action": action,
        "purpose": purpose,
        "outcome": "allowed" if allowed else "denied",
        "rows": rows,
        "emergency": emergency,
        "detail": detail,
    }


def record_export(
    action: str, subjects: Sequence[str], run: str, detail: str, account: str = "system"
) -> int:
    """Audit a pipeline's disclosure of person-level data (a research copy): one entry per
    citizen whose data left, so it shows in their "who viewed my record" like any read. The
    pipelines run as the system under Dagster, outside any app's principal; ``run`` names the
    run (its origin) and ``detail`` who asked and why. Returns the entries written."""
    keys = sorted({s for s in subjects if s and KEY.fullmatch(s)})
    if not keys:
        return 0
    at = _now()
    rows = [
        _audit_row(at, account, "admin", run, action, "research", subject=key, detail=detail)
        for key in keys
    ]
    delta.append(AUDIT, pl.DataFrame(rows, schema=table(AUDIT).polars_schema()))
    return len(keys)


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
