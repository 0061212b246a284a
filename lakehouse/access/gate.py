"""The gate: who is asking, whether they may see what they ask for, and the audit row.

Every call of the access layer names a ``Principal`` (who is asking, in which role, from where)
and is decided here, never in a page: hiding a page is not access control. The rules deny by
default:

* **citizen**: their own record, and the records of people who made them a proxy (family
  carer) until that grant is revoked or ends;
* **clinician**: patients of their own institution (a visit there, or a study it sent), a
  record a citizen shared with them through a share code (until it expires or is revoked), and
  otherwise only under emergency access: a stated reason, time-limited, every read flagged for
  review and shown to the citizen. A study is theirs to see when their institution sent it, when
  it was sent to them for a remote reading (until 30 days after they replied), or when its
  patient is (``basis``);
* **official**: aggregates only, with small cells suppressed and complemented
  (``lakehouse.disclosure``) in the access layer, so no page can forget to;
* **admin**: operations and the audit log, no clinical content.

Every person-level access, allowed or refused, appends one row to ``ops.audit_log``
(``lakehouse.audit``), which the admin reviews and the citizen sees. Inputs are never spliced
into SQL: lookups are Polars expressions on typed columns, and a citizen key or a DICOM UID must
have its exact shape before it is looked up, so a guessed or injected value is refused (and
audited) before any table is read.

``Gate`` is the base of every concern of ``lakehouse.access.Access`` (grants, records, imaging,
readings, aggregates): each of their methods starts with ``_require``, ``basis`` or ``_study``
and ends with ``_audit``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypedDict, Unpack

import duckdb
import polars as pl

from lakehouse import audit, queries
from lakehouse import read as lake
from lakehouse.access import folds
from lakehouse.access.folds import Grant
from lakehouse.pseudonym import is_citizen_key

Role = Literal["citizen", "clinician", "official", "admin"]
ROLES: Final[tuple[Role, ...]] = ("citizen", "clinician", "official", "admin")
GRANTS: Final = "ops.grants"
READINGS: Final = "ops.reading_requests"
UID: Final = re.compile(r"[0-9]+(\.[0-9]+)*")  # fullmatch; 64 characters at most
REMOTE_DAYS: Final = 30  # a reading hospital keeps access this long after it replied


class AuditFields(TypedDict, total=False):
    """What an audit row says beyond who, when, what and why (``lakehouse.audit.row``)."""

    subject: str | None
    rows: int
    allowed: bool
    emergency: bool
    detail: str | None


class AccessDeniedError(PermissionError):
    """The principal may not do this; the refusal is already in the audit log.

    The message is the audit log's detail, in English, for the log and the reviewer; ``code``
    says why in one word (``role``, ``not_a_key``, ``no_basis``, ``reason_required``,
    ``share_unknown``...), which an app turns into a message in the person's language, so no
    English detail reaches a Korean screen. ``denied`` when no more is said."""

    def __init__(self, detail: str, code: str = "denied") -> None:
        super().__init__(detail)
        self.code = code


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
        if self.role == "citizen" and not is_citizen_key(self.citizen_key):
            raise ValueError("a citizen principal needs their citizen key")
        if self.role == "clinician" and not self.institution:
            raise ValueError("a clinician principal needs an institution")

    def at(self, origin: str) -> Principal:
        """The same principal, asking from ``origin``."""
        return replace(self, origin=origin)


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


class Gate:
    """The checks and the audit row every call of the access layer goes through.

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

    # --- the audit row and refusals -----------------------------------------------------------

    def _entry(self, action: str, purpose: str, **fields: Unpack[AuditFields]) -> dict[str, object]:
        """One audit row of this principal's call, now (``_audit`` appends one; a call that
        names several people appends one each)."""
        p = self.principal
        fields.setdefault("rows", 0)
        return audit.row(
            self.clock(),
            p.account,
            p.role,
            p.origin,
            action,
            purpose,
            institution=p.institution,
            **fields,
        )

    def _audit(self, action: str, purpose: str, **fields: Unpack[AuditFields]) -> None:
        audit.append([self._entry(action, purpose, **fields)])

    def _audit_study(
        self, action: str, study: dict[str, Any], purpose: str, rows: int, detail: str | None
    ) -> None:
        """The audit row of an access to a study: its patient, or the clinic's own patient key
        when the study has no citizen key."""
        self._audit(
            action,
            purpose,
            subject=study["citizen_key"],
            rows=rows,
            emergency=purpose == "emergency",
            detail=detail if study["citizen_key"] else f"patient {study['patient_key']}",
        )

    def _deny(
        self, action: str, detail: str, subject: str | None = None, code: str = "denied"
    ) -> AccessDeniedError:
        """Audit a refusal and return the exception to raise (``raise self._deny(...)``), with
        ``code`` for the apps' message (``AccessDeniedError``) and in the audit row's
        ``refusal``, where the admin's page names it."""
        entry = self._entry(action, "none", subject=subject, allowed=False, detail=detail)
        audit.append([{**entry, "refusal": code}])
        return AccessDeniedError(detail, code)

    # --- the rules ----------------------------------------------------------------------------

    def _require(self, action: str, *roles: Role) -> None:
        if self.principal.role not in roles:
            raise self._deny(
                action, f"the {self.principal.role} role may not {action}", code="role"
            )

    def _subject(self, action: str, subject_key: str) -> str:
        """``subject_key`` if it has a citizen key's shape; refused (and audited) otherwise."""
        if not is_citizen_key(subject_key):
            raise self._deny(action, "not a citizen key", code="not_a_key")
        return subject_key

    def _grants(self, where: pl.Expr) -> list[Grant]:
        """The grants whose ``ops.grants`` events match ``where``, as they stand now."""
        return folds.grants(lake.frame(GRANTS, where))

    def _requests(self, where: pl.Expr) -> pl.DataFrame:
        """The remote-reading requests whose ``ops.reading_requests`` events match ``where``."""
        return folds.requests(lake.frame(READINGS, where))

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
            raise self._deny(
                action, "not a patient of your institution, and no grant", subject, "no_basis"
            )
        raise self._deny(action, f"the {p.role} role sees no person-level data", subject)

    def _remote_studies(self) -> set[str]:
        """Studies sent to this clinician's institution for a reading that is still open, or
        was answered within ``REMOTE_DAYS``."""
        mine = self._requests(pl.col("to_institution") == self.principal.institution)
        return folds.open_studies(mine, self.clock() - timedelta(days=REMOTE_DAYS))

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
