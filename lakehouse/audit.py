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

A row goes first to the lakehouse's local outbox (``lakehouse.outbox``, SQLite on local disk):
``append`` returns once it is there, on disk. A process that runs a flusher (``Flusher``: the
apps, from ``start_flusher``) leaves the rest to it: every ``FLUSH_SECONDS``, sooner once
``FLUSH_ROWS`` rows wait, and when it stops, it moves the waiting rows to the table in order,
``BATCH_ROWS`` a commit. Any other process (the pipelines, scripts, tests) flushes at once, so
its row is in the table when ``append`` returns, as before. Every reader of the log goes
through ``scan``: the table and the rows still waiting, so the citizen's "who viewed my record"
and the admin's review miss nothing that was acknowledged.

This module holds no access rule, so a pipeline that imports it imports nothing of who may see
what (``tests/lakehouse/test_audit.py`` checks that).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from lakehouse import config, delta
from lakehouse.catalog import table
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
# A flusher moves the outbox's rows at least this often (the most an app's row waits before it
# is in the table), and sooner once this many rows of its process wait; a commit carries at
# most ``BATCH_ROWS`` rows.
FLUSH_SECONDS: Final = 1.0
FLUSH_ROWS: Final = 500
BATCH_ROWS: Final = 5000


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


def outbox() -> Outbox:
    """This lakehouse's access-log outbox: a database in ``config.outbox_dir()`` named for the
    lakehouse, so two lakehouses never share one."""
    name = hashlib.sha256(config.lakehouse_uri().encode()).hexdigest()[:16]
    path = config.outbox_dir() / f"audit-{name}.sqlite"
    with _boxes_lock:
        box = _boxes.get(path)
        if box is None:
            box = _boxes[path] = Outbox(path, table(AUDIT).polars_schema(), "event_id")
        return box


_boxes: dict[Path, Outbox] = {}
_boxes_lock = threading.Lock()


def append(entries: Sequence[dict[str, object]]) -> None:
    """Append entries made by ``row`` to the access log, in one transaction of its outbox: on
    disk when this returns (never updated afterwards; the table's files are only compacted,
    rows unchanged). Without a flusher in this process the entries are then flushed at once
    (one commit, with whatever else waited)."""
    box = outbox()
    box.append(entries)
    flusher = _flushers.get(box.path)
    if flusher is None:
        flush(box)
    else:
        flusher.nudge(len(entries))


def flush(box: Outbox | None = None, committed: Callable[[], None] | None = None) -> int:
    """Move the rows waiting in the outbox (this lakehouse's, or ``box``) to the table, in
    order, ``BATCH_ROWS`` a commit; returns how many moved. The writer whose commit is a
    multiple of ``COMPACT_EVERY`` then compacts the log (``compact``), so one commit in that
    many pays it, whichever process made it. ``committed`` runs after each commit, before its
    rows leave the outbox (the kill test's hook)."""
    due: list[int] = []

    def deliver(batch: pl.DataFrame) -> None:
        written = delta.append(AUDIT, batch)
        if written.version and written.version % COMPACT_EVERY == 0:
            due.append(written.version)

    moved = (box or outbox()).flush(deliver, _delivered, BATCH_ROWS, committed)
    if due:
        compact()
    return moved


def _snapshot() -> pl.LazyFrame:
    """The table at its latest version (an empty frame of its columns before its first row)."""
    if not delta.exists(AUDIT):
        return pl.LazyFrame(schema=table(AUDIT).polars_schema())
    return pl.scan_delta(delta.open_table(AUDIT))


def _held(logged: pl.LazyFrame, rows: pl.DataFrame) -> set[str]:
    """The ids among ``rows`` that ``logged`` already holds (only their months' files read)."""
    found = logged.filter(
        pl.col("month").is_in(rows["month"].unique().implode())
        & pl.col("event_id").is_in(rows["event_id"].implode())
    )
    return set(found.select("event_id").collect()["event_id"].to_list())


def _delivered(rows: pl.DataFrame) -> set[str]:
    """The ids among ``rows`` the table holds now (a killed flusher's last batch)."""
    return _held(_snapshot(), rows)


def scan() -> pl.LazyFrame:
    """The access log as it stands: the table and the rows still in this lakehouse's outbox,
    each row once (by its ``event_id``), whatever a flusher is doing meanwhile
    (``Outbox.read``). Every reader of the log reads it here (on object storage, rows still
    waiting in another machine's outbox show once it flushed them: within ``FLUSH_SECONDS``)."""
    pending, logged = outbox().read(_snapshot)
    rows = pending.rows
    if pending.claimed:
        claimed = rows.filter(
            pl.col("event_id").is_in(pl.Series(list(pending.claimed), dtype=pl.String).implode())
        )
        rows = rows.filter(
            ~pl.col("event_id").is_in(
                pl.Series(list(_held(logged, claimed)), dtype=pl.String).implode()
            )
        )
    return pl.concat([logged, rows.lazy()], how="vertical_relaxed")


class Flusher:
    """A thread that flushes one outbox every ``every`` seconds, or sooner once ``rows`` rows
    of its process wait, and once more when stopped. A failed flush is logged and retried on
    the next round: the rows stay in the outbox meanwhile, on disk.

    Args:
        box: The outbox to flush.
        every: The most seconds between two flushes.
        rows: How many rows appended in this process wake it early.
    """

    def __init__(self, box: Outbox, every: float = FLUSH_SECONDS, rows: int = FLUSH_ROWS) -> None:
        self.box = box
        self.every = every
        self.rows = rows
        self._waiting = 0
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def nudge(self, appended: int) -> None:
        """``appended`` more rows wait; wake the thread once they are ``rows``."""
        self._waiting += appended
        if self._waiting >= self.rows:
            self._due.set()

    def _flush(self) -> None:
        self._waiting = 0
        try:
            flush(self.box)
        except Exception:
            log.exception("flushing the access log's outbox failed; it is retried")

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._due.wait(self.every)
            self._due.clear()
            self._flush()

    def stop(self) -> None:
        """Stop the thread after one last flush (every row appended before this call)."""
        self._stopping.set()
        self._due.set()
        self._thread.join()
        self._flush()


_flushers: dict[Path, Flusher] = {}


def start_flusher(every: float = FLUSH_SECONDS) -> Flusher:
    """Flush this lakehouse's outbox from a thread of this process (once per process and
    lakehouse; later calls return the running one), and once more at exit: from now on
    ``append`` returns as soon as a row is in the outbox."""
    box = outbox()
    with _boxes_lock:
        running = _flushers.get(box.path)
        if running is not None:
            return running
        running = _flushers[box.path] = Flusher(box, every)
    running.start()
    atexit.register(stop_flusher, box.path)
    return running


def stop_flusher(path: Path | None = None) -> None:
    """Stop this lakehouse's flusher (or the one of the outbox at ``path``) after a last flush;
    ``append`` flushes at once again."""
    path = path or outbox().path
    with _boxes_lock:
        running = _flushers.pop(path, None)
    if running is not None:
        running.stop()


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
