"""The gate: who is asking, whether they may see what they ask for, and the audit row.

Every call of the access layer names a ``Principal`` (who is asking, in which role, from where)
and is decided here, never in a page: hiding a page is not access control. The rules deny by
default:

* **citizen**: their own record, and the records of people who made them a proxy (family
  carer) once they accepted, until that grant is revoked or ends. What the record holds depends
  on what the citizen agreed to in the programme (``folds.consent`` over
  ``silver.programme_events``, as the gold job folded it into ``gold.citizen_consent``, with
  the events since folded on top, ``_consent``): before the record link with a joint
  certificate only what the programme itself holds (centre measurements, imaging sent through
  the AI platform); after it the national extracts' history as well (``NATIONAL_KINDS``);
  withdrawing the consent hides it again (``_national_visible``);
* **clinician**: what their own institution recorded, for patients it treated recently (a visit
  or a study within ``config.treatment_days``); other institutions' records only with the
  citizen's say: a share code they gave (limited to the kinds they chose, until it expires or is
  revoked), a standing consent to the clinician's institution (until withdrawn), or emergency
  access: a stated reason, time-limited, every read flagged for review and shown to the
  citizen. What they see is the union of every basis they hold: a share code redeemed for a
  recent patient adds the shared kinds of every institution to their own institution's records
  (``institution_share``), never cuts those (``_shown`` is the one cut of the rows). A study is
  theirs to see when their institution sent it, when it was sent to them for a remote reading
  (until 30 days after they replied), or when its patient's basis shows it (``_study``);
* **official**: aggregates only, with small cells suppressed and complemented
  (``lakehouse.disclosure``) in the access layer, so no page can forget to;
* **admin**: operations and the audit log, no clinical content.

Every person-level access, allowed or refused, appends one row to ``ops.audit_log``
(``lakehouse.audit``), which the admin reviews and the citizen sees: on disk in the access
log's outbox before the call returns, in the table within a second. A page that makes many
calls may run them in one ``view``: each call keeps its own row, and the rows are appended
together, in one outbox transaction, when the view ends (a refusal at once).
Inputs are never spliced into SQL: lookups are Polars expressions on typed columns, and a
citizen key or a DICOM UID must have its exact shape before it is looked up, so a guessed or
injected value is refused (and audited) before any table is read.

``Gate`` is the base of every concern of ``lakehouse.access.Access`` (grants, records, imaging,
readings, aggregates): each of their methods starts with ``_require``, ``basis`` or ``_study``
and ends with ``_audit``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal, TypedDict, Unpack

import duckdb
import polars as pl

from lakehouse import audit, config, queries
from lakehouse import read as lake
from lakehouse.access import folds
from lakehouse.access.folds import Consent, Grant
from lakehouse.pseudonym import is_citizen_key

log = logging.getLogger(__name__)
Role = Literal["citizen", "clinician", "official", "admin"]
ROLES: Final[tuple[Role, ...]] = ("citizen", "clinician", "official", "admin")
GRANTS: Final = "ops.grants"
READINGS: Final = "ops.reading_requests"
UID: Final = re.compile(r"[0-9]+(\.[0-9]+)*")  # fullmatch; 64 characters at most
REMOTE_DAYS: Final = 30  # a reading hospital keeps access this long after it replied
# The timeline's kinds that come from the national extracts (HIRA claims: visits, admissions,
# diagnoses, prescriptions; pharmacy dispensings). Every other kind is the programme's own
# (centre measurements, imaging sent through the AI platform, ...). The one list of them.
NATIONAL_KINDS: Final = frozenset({"visit", "admission", "diagnosis", "prescription", "dispensing"})
# What a citizen may choose to share (``Grants.create_share``): groups of timeline kinds. Kinds
# in no group (new programme kinds) are shared only with everything.
SHARE_SCOPES: Final[dict[str, frozenset[str]]] = {
    "visits": frozenset({"visit", "admission"}),
    "diagnoses": frozenset({"diagnosis"}),
    "medicines": frozenset({"prescription", "dispensing"}),
    "imaging": frozenset({"imaging", "study"}),
    "measurements": frozenset({"measurement", "checkup"}),
}
# A clinician's basis when they hold both a share code and a recent treatment relationship:
# their institution's records, and the shared kinds of every institution (the union, ``_shown``).
INSTITUTION_SHARE: Final = "institution_share"
# Bases under which the national extracts follow the citizen's own consent: what they see, and
# what they hand over (under ``institution_share``, its shared part). A clinician's own
# institution's records, a standing consent to it and an emergency access do not depend on the
# app's record link.
CONSENT_BOUND: Final = frozenset({"self", "proxy", "share", INSTITUTION_SHARE})
# Bases that see only what one institution recorded (the clinician's, or the study's sender).
ONE_INSTITUTION: Final = frozenset({"institution", "remote_reading"})
# Bases limited to the kinds a share code covers (beyond one institution's own records).
SHARED: Final = frozenset({"share", INSTITUTION_SHARE})


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
        self._views = threading.local()

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
        self._log([self._entry(action, purpose, **fields)])

    def _log(self, entries: list[dict[str, object]], at_once: bool = False) -> None:
        """Append audit rows: gathered into the open ``view`` of this thread, if any, else
        (or ``at_once``, with what the view gathered so far) in one transaction of the
        outbox now, on disk when this returns (``lakehouse.audit.append``)."""
        gathered: list[dict[str, object]] | None = getattr(self._views, "rows", None)
        if gathered is None:
            audit.append(entries)
            return
        gathered.extend(entries)
        if at_once:
            audit.append(gathered)
            gathered.clear()

    @contextmanager
    def view(self, name: str) -> Iterator[None]:
        """One audited unit of work, such as one page view: the audit rows of every call of
        this layer inside the block are gathered and appended together, in one transaction of
        the access log's outbox (and so one commit of the table), when the block ends,
        however it ends (an exception, ``st.stop``, a rerun), before the exception goes on.
        Each call keeps its own row, as it would have written alone (its time, action,
        purpose, rows, detail): only the transactions are fewer.

        Opt-in, for a page that makes many calls (the officials' pages): a read outside a view
        is appended as it is made. A refusal is never held back: it is on disk before the
        refusal is raised, with the rows gathered before it. A view opened inside a view joins
        it. Only calls from the thread that opened the view are gathered (a deferred download
        run from another thread appends its own row as it is made).

        Args:
            name: What the unit is (a page's name), for the server's log.
        """
        if getattr(self._views, "rows", None) is not None:
            yield
            return
        gathered: list[dict[str, object]] = []
        self._views.rows = gathered
        try:
            yield
        finally:
            self._views.rows = None
            if gathered:
                audit.append(gathered)
            log.debug("view %s: %d audit rows in one transaction", name, len(gathered))

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
        self._log([{**entry, "refusal": code}], at_once=True)
        return AccessDeniedError(detail, code)

    # --- the rules ----------------------------------------------------------------------------

    def _require(self, action: str, *roles: Role) -> None:
        if self.principal.role not in roles:
            raise self._deny(
                action, f"the {self.principal.role} role may not {action}", code="role"
            )

    def enter(self, app: str, role: Role) -> None:
        """Admit this principal to ``app``, the app made for ``role``. Another role's account
        is refused, and the refusal is audited (``open:app``), so an official at the citizens'
        or the clinicians' door leaves its row in the access log like any refused read."""
        if self.principal.role != role:
            raise self._deny(
                "open:app",
                f"the {self.principal.role} role may not open the {app} app",
                code="role",
            )

    def _subject(self, action: str, subject_key: str) -> str:
        """``subject_key`` if it has a citizen key's shape; refused (and audited) otherwise."""
        if not is_citizen_key(subject_key):
            raise self._deny(action, "not a citizen key", code="not_a_key")
        return subject_key

    def _grants(self, where: pl.Expr) -> list[Grant]:
        """The grants whose ``ops.grants`` events match ``where``, as they stand now."""
        return folds.grants(lake.frame(GRANTS, where))

    def _requests(self, column: str, values: Sequence[object]) -> pl.DataFrame:
        """The remote-reading requests whose ``ops.reading_requests`` events have one of
        ``values`` in ``column`` (read by ``lakehouse.read.lookup``: the files that can hold
        them)."""
        return folds.requests(lake.lookup(READINGS, {column: values}).collect())

    def _treated_recently(self, subject: str, institution: str) -> bool:
        """A visit, an admission or a study at the institution within ``config.treatment_days``
        before today, or before the newest day the records reach when they end earlier (a
        frozen extract, such as the synthetic city's)."""
        newest: date | None = self._q(queries.records_until)()
        today = self.clock().date()
        until = min(today, newest) if newest else today
        since = until - timedelta(days=config.treatment_days())
        return bool(self._q(queries.treated)(subject, institution, since))

    def _basis_of(self, subject: str) -> str | None:
        """Why this principal may read ``subject``'s record, or None: ``basis`` without its
        refusal (the viewer asks it of a study's patient, whose study it may already see)."""
        if self.principal.role == "citizen":
            return self._citizen_basis(subject)
        if self.principal.role == "clinician":
            return self._clinician_basis(subject)
        return None

    def _citizen_basis(self, subject: str) -> str | None:
        """Their own record, or one whose carer they accepted to be (an active proxy grant)."""
        p, now = self.principal, self.clock()
        if subject == p.citizen_key:
            return "self"
        proxies = self._grants(pl.col("subject_key") == subject)
        if any(g.kind == "proxy" and g.grantee == p.account and g.active(now) for g in proxies):
            return "proxy"
        return None

    def _clinician_basis(self, subject: str) -> str | None:
        """The citizen's standing consent to this institution (the whole record), this
        clinician's emergency access (the whole record, flagged: broken on purpose, so even a
        clinician of a recent patient sees beyond their own institution's records), in that
        order; else what a share code they redeemed (the kinds chosen) and a recent treatment
        relationship (their institution's records) show together: ``institution_share`` when
        both stand, ``share`` or ``institution`` when one does. Each of the first two shows the
        whole record, so no union with another basis could show more."""
        p, now = self.principal, self.clock()
        grants = [g for g in self._grants(pl.col("subject_key") == subject) if g.active(now)]
        if any(g.kind == "consent" and g.institution == p.institution for g in grants):
            return "consent"
        if any(g.kind == "emergency" and g.grantee == p.account for g in grants):
            return "emergency"
        shared = any(g.kind == "share" and g.grantee == p.account for g in grants)
        treated = bool(p.institution) and self._treated_recently(subject, str(p.institution))
        if shared and treated:
            return INSTITUTION_SHARE
        if shared:
            return "share"
        if treated:
            return "institution"
        return None

    def basis(self, action: str, subject_key: str) -> str:
        """Why this principal may read ``subject_key``'s record (the audit's purpose), or
        ``AccessDeniedError`` (audited). The one decision every person-level read goes through;
        what the basis shows of the record is ``_visible``'s."""
        subject = self._subject(action, subject_key)
        found = self._basis_of(subject)
        if found is not None:
            return found
        p = self.principal
        if p.role == "citizen":
            raise self._deny(action, "not your record, and no proxy grant", subject)
        if p.role == "clinician":
            raise self._deny(
                action,
                "not a recent patient of your institution, and no grant",
                subject,
                "no_basis",
            )
        raise self._deny(action, f"the {p.role} role sees no person-level data", subject)

    def _consent(self, subject: str) -> Consent:
        """What the citizen has agreed to in the programme (``folds.consent``): the state the
        gold job folded (``gold.citizen_consent``, the citizen's bucket) with the events that
        arrived since folded on top, or every day of their events when that table cannot
        answer (``queries.consent``). Read fresh, never through the app's cache, so a
        withdrawal counts on the next read."""
        types = tuple(folds.CONSENT_EVENTS)
        found = queries.consent(subject, types)
        if found is None:
            return folds.consent(queries.consent_events(subject, types))
        row, since = found
        start = Consent(**{f: row[f] for f in folds.CONSENT_FIELDS}) if row else None
        return folds.consent(since, start)

    def _national_visible(self, subject_key: str, purpose: str) -> bool:
        """Whether the national extracts' records (``NATIONAL_KINDS``: claims and dispensings)
        may be shown of ``subject_key`` under ``purpose`` (a basis): for the citizen, their
        carer and what they share, only once their record link stands (consent given, link
        completed, not withdrawn); for a clinician's own institution's records, a standing
        consent or an emergency access, always. Every read of those tables asks this."""
        return purpose not in CONSENT_BOUND or self._consent(subject_key).national

    def _share_scope(self, subject: str) -> frozenset[str] | None:
        """The kinds of records the active share code this clinician redeemed covers (None:
        all), the widest when they hold several."""
        now, account = self.clock(), self.principal.account
        scopes = [
            g.scope
            for g in self._grants(pl.col("subject_key") == subject)
            if g.kind == "share" and g.grantee == account and g.active(now)
        ]
        if not scopes or any(s is None for s in scopes):
            return None
        return frozenset(k for s in scopes for group in s or () for k in SHARE_SCOPES[group])

    def _shown(
        self,
        subject: str,
        purpose: str,
        kind: pl.Expr,
        institution: pl.Expr,
        own: str | None = None,
        national: bool = True,
    ) -> pl.Expr:
        """Which rows of ``subject``'s record ``purpose`` shows, as a predicate over each row's
        ``kind`` (a timeline kind) and ``institution`` (who recorded it; null: no clinic, as the
        centre's measurements): the one cut of every read of a record.

        Under ``institution`` and ``remote_reading`` one institution's own rows (``own``,
        default the clinician's); under ``share`` the kinds the share codes cover, of every
        institution; under ``institution_share`` the union of both, so a share never hides what
        the clinician's institution recorded; under every other basis the whole record. The
        national extracts' kinds follow the citizen's consent where the basis is bound by it
        (``_national_visible``; under ``institution_share`` its shared part only), asked only
        when the rows can be of those kinds (``national``)."""
        mine = institution.eq_missing(pl.lit(own or self.principal.institution, pl.Utf8))
        if purpose in ONE_INSTITUTION:
            return mine
        shown = pl.lit(True)
        if purpose in SHARED and (scope := self._share_scope(subject)) is not None:
            shown = kind.is_in(sorted(scope))
        if national and not self._national_visible(subject, purpose):
            shown &= ~kind.is_in(sorted(NATIONAL_KINDS))
        return mine | shown if purpose == INSTITUTION_SHARE else shown

    def _visible(
        self, rows: pl.DataFrame, subject: str, purpose: str, institution: str | None = None
    ) -> pl.DataFrame:
        """The rows of ``subject``'s record (any frame with ``kind`` and ``institution``) that
        ``purpose`` shows (``_shown``; ``institution``: whose own rows, default the
        clinician's). A hospital partner's records (rows with a ``partner``, linked by token:
        docs/partners.md) follow the citizen's record-link consent as the national extracts
        do (``_national_visible``), whatever their kind."""
        shown = self._shown(subject, purpose, pl.col("kind"), pl.col("institution"), institution)
        partner = "partner" in rows.columns and rows["partner"].is_not_null().any()
        if partner and not self._national_visible(subject, purpose):
            shown &= pl.col("partner").is_null()
        return rows.filter(shown)

    def _record_rows(
        self, rows: pl.DataFrame, subject: str, purpose: str, kind: str, institution: pl.Expr
    ) -> pl.DataFrame:
        """Rows of a source table of ``subject``'s record (claims and their children, studies,
        centre measurements) cut as ``_visible`` cuts the timeline's rows of ``kind``:
        ``institution`` is the rows' institution as the timeline names it (the prescriber, the
        pharmacy, the claim's institution of a diagnosis, a study's sender; a null literal for
        the centre's measurements, no clinic's own record)."""
        national = kind in NATIONAL_KINDS
        return rows.filter(self._shown(subject, purpose, pl.lit(kind), institution, None, national))

    def _timeline_rows(
        self, subject: str, purpose: str, institution: str | None = None
    ) -> pl.DataFrame:
        """``subject``'s timeline as ``purpose`` may see it (``_visible``), newest first: the
        one read of the national extracts' records for every concern."""
        rows: pl.DataFrame = self._q(queries.timeline)(subject)
        return self._visible(rows, subject, purpose, institution)

    def _remote_studies(self) -> set[str]:
        """Studies sent to this clinician's institution for a reading that is still open, or
        was answered within ``REMOTE_DAYS``."""
        mine = self._requests("to_institution", [self.principal.institution])
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
            purpose = self.basis(action, subject)
        except AccessDeniedError:
            raise AccessDeniedError("a study of another institution") from None
        # The patient's basis must show this study as their record's imaging row: not one of
        # another institution under the institution rule, nor under a share left without it.
        sender = pl.lit(study["institution"], pl.Utf8)
        shown = self._shown(subject, purpose, pl.lit("imaging"), sender, national=False)
        if not pl.select(shown).item():
            raise self._deny(
                action, f"a study of another institution, not shown under {purpose}", subject
            )
        return study, purpose
