"""The access log's ledger: its rows, how they reach the table, how it is read, its retention.

``ops.audit_log`` is the Medical Service Act's access log: one row per person-level access,
allowed or refused (account, role, time, origin, whose data, action, purpose, rows), which the
admin reviews and the citizen sees. A refusal keeps why in two forms: its one-word code
(``refusal``, the ``AccessDeniedError`` code), which the apps name in the reader's language, and
the English sentence (``detail``) for the reviewer and the export. The access layer
(``lakehouse.access``) decides every read of an app and writes its row through ``append``. The
pipelines run as the system under Dagster, outside any app's principal: they write here directly
when person-level data leaves (``record_export``) and drop the months past retention
(``expire_audit``).

A row goes first to the lakehouse's local outbox, through the ledger ``LOG``
(``lakehouse.ledger``, which the sign-ins use too): ``append`` returns once it is on disk, and
a flusher (the apps' servers) or the appending process itself moves it to the table. Every
reader of the log goes through ``scan``: the table and the rows still waiting, so the citizen's
"who viewed my record" and the admin's review miss nothing that was acknowledged.

This module holds no access rule, so a pipeline that imports it imports nothing of who may see
what (``tests/lakehouse/test_audit.py`` checks that).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from lakehouse import delta, ledger
from lakehouse.outbox import Outbox
from lakehouse.pseudonym import is_citizen_key

log = logging.getLogger(__name__)

AUDIT: Final = "ops.audit_log"
AUDIT_MIN_DAYS: Final = 731  # the Medical Service Act's two years, leap day included
AUDIT_DEFAULT_DAYS: Final = 1096  # three years unless the deployment says otherwise
# The access log is compacted every this many commits (``append``, ``compact``). An append costs
# more the longer the log's history and the more files it holds (measured on the officials'
# benchmark's log, 5,500 commits: 147 ms an append, 10.5 ms once its commit files before the
# latest checkpoint were removed; 677 ms at 1,600 small files, 61 ms once compacted;
# docs/benchmarks.md, issue 20), and every commit adds one of each.
COMPACT_EVERY: Final = 200
# How long the log's commit files are kept (Delta's ``logRetentionDuration``): its time travel,
# which nothing reads (rows are never updated; the rows themselves stay in the data files).
LOG_RETENTION: Final = "interval 1 hours"


def row(
    at: datetime,
    account: str,
    role: str,
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
    refusal: str | None = None,
) -> dict[str, object]:
    """One ``ops.audit_log`` entry; a subject that is not a citizen key is not recorded as one.
    ``refusal`` is a refused entry's code (``role``, ``no_basis``...), None for an allowed one."""
    return {
        "event_id": uuid.uuid4().hex,
        "at": at,
        "month": at.strftime("%Y-%m"),
        "account": account,
        "role": role,
        "institution": institution,
        "origin": origin,
        "subject_key": subject if is_citizen_key(subject) else None,
        "action": action,
        "purpose": purpose,
        "outcome": "allowed" if allowed else "denied",
        "rows": rows,
        "emergency": emergency,
        "detail": detail,
        "refusal": None if allowed else refusal or "denied",
    }


def _months(rows: pl.DataFrame) -> pl.Expr:
    """The log's partitions that can hold ``rows`` (an id lookup reads only their files)."""
    return pl.col("month").is_in(rows["month"].unique().implode())


def _committed(version: int) -> None:
    """The writer whose commit is a multiple of ``COMPACT_EVERY`` compacts the log
    (``compact``), so one commit in that many pays it, whichever process made it."""
    if version and version % COMPACT_EVERY == 0:
        compact()


LOG: Final = ledger.Ledger(AUDIT, "event_id", "audit", narrow=_months, committed=_committed)


def outbox() -> Outbox:
    """This lakehouse's access-log outbox (``Ledger.outbox``)."""
    return LOG.outbox()


def append(entries: Sequence[dict[str, object]]) -> None:
    """Append entries made by ``row`` to the access log, in one transaction of its outbox: on
    disk when this returns (never updated afterwards; the table's files are only compacted,
    rows unchanged). Without a flusher in this process the entries are then flushed at once
    (one commit, with whatever else waited)."""
    LOG.append(entries)


def flush(box: Outbox | None = None, committed: Callable[[], None] | None = None) -> int:
    """Move the rows waiting in the outbox (this lakehouse's, or ``box``) to the table, in
    order, ``ledger.BATCH_ROWS`` a commit; returns how many moved (``Ledger.flush``; every
    ``COMPACT_EVERY`` commits the log is compacted). ``committed`` runs after each commit,
    before its rows leave the outbox (the kill test's hook)."""
    return LOG.flush(box, committed)


def scan() -> pl.LazyFrame:
    """The access log as it stands: the table and the rows still in this lakehouse's outbox,
    each row once (by its ``event_id``), whatever a flusher is doing meanwhile
    (``Ledger.scan``). Every reader of the log reads it here."""
    return LOG.scan()


def start_flusher(every: float = ledger.FLUSH_SECONDS) -> ledger.Flusher:
    """Flush this lakehouse's access-log outbox from a thread of this process
    (``Ledger.start_flusher``)."""
    return LOG.start_flusher(every)


def stop_flusher(path: Path | None = None) -> None:
    """Stop this lakehouse's flusher (or the one of the outbox at ``path``) after a last flush;
    ``append`` flushes at once again."""
    ledger.stop_flusher(path or outbox().path)


def compact() -> None:
    """Compact the access log's small files (``delta.optimize``), then checkpoint its Delta log
    and remove the commit files the checkpoint makes unneeded, older than ``LOG_RETENTION``: the
    rows stay as they were, and an append stays as cheap as on a new log. A reader holding an
    older version brings it up to date from the checkpoint."""
    delta.optimize(AUDIT)
    log = delta.open_table(AUDIT)
    if log.metadata().configuration.get("delta.logRetentionDuration") != LOG_RETENTION:
        log.alter.set_table_properties({"delta.logRetentionDuration": LOG_RETENTION})
        log = delta.open_table(AUDIT)
    log.create_checkpoint()
    log.cleanup_metadata()


def record_export(
    action: str,
    subjects: Sequence[str],
    run: str,
    detail: str,
    account: str = "system",
    held: Mapping[str, tuple[int, str]] | None = None,
) -> int:
    """Audit a pipeline's disclosure of person-level data (a research copy): one entry per
    citizen whose data left, so it shows in their "who viewed my record" like any read. ``run``
    names the run (its origin) and ``detail`` who asked and why; ``held`` gives, per citizen,
    the rows of theirs that left and what they were (tables and counts, never values), added to
    their entry. Returns the entries written."""
    keys = sorted({s for s in subjects if is_citizen_key(s)})
    if not keys:
        return 0
    at = datetime.now(UTC)
    own = held or {}
    append(
        [
            row(
                at,
                account,
                "admin",
                run,
                action,
                "research",
                subject=key,
                rows=own[key][0] if key in own else 1,
                detail=f"{detail}; {own[key][1]}" if key in own else detail,
            )
            for key in keys
        ]
    )
    return len(keys)


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
    cutoff = (now or datetime.now(UTC)) - timedelta(days=audit_retention_days())
    return delta.delete(AUDIT, f"month < '{cutoff:%Y-%m}'")
