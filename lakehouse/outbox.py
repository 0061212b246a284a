"""A durable local outbox: rows bound for a Delta table, kept in SQLite until they are there.

A Delta commit costs 30-120 ms (more as the table's history grows), too much to pay on every
access of thousands of users; an SQLite transaction on local disk costs a fraction of a
millisecond and one fsync. So a writer appends its rows here (``append``: one transaction, on
disk before it returns) and a flusher moves them on (``flush``): the oldest rows first, by a
sequence that only grows, in batches of one Delta commit each, and deletes a batch only after
its commit succeeded.

Why no row is lost or doubled, whenever a process dies:

* a row is acknowledged only once its SQLite transaction committed, with ``synchronous=FULL``
  in WAL mode: the write-ahead log is synced on every commit, so it survives a power cut too,
  not only a killed process (``NORMAL`` would keep it through a killed process only);
* a batch is first marked claimed (one transaction), then committed to Delta, then deleted (one
  transaction). A flusher killed before the Delta commit leaves claimed rows that are not in the
  table; killed after it, claimed rows that are. The next flush looks the claimed rows' ids up
  in the table (``delivered``), deletes those found and sends the rest, oldest first: every row
  arrives exactly once, in order (at-least-once delivery made exactly-once by the row's id);
* one flusher at a time per outbox, across threads and processes: an exclusive ``flock`` on a
  file beside the database, which the kernel releases when its holder dies, so a killed flusher
  never blocks the next one;
* a reader (``read``) takes the same lock shared while it takes the pending rows and opens its
  snapshot of the table, so no batch is between its commit and its delete meanwhile: a row is
  in the snapshot or among the pending rows, never in both, except a killed flusher's claimed
  rows, which the reader looks up in the snapshot itself.

SQLite's own locking (``BEGIN IMMEDIATE``, a busy timeout) serialises the writers of several
processes; the outbox is a file on local disk (never on a network file system, where neither
SQLite's locks nor ``flock`` hold).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar

import polars as pl

T = TypeVar("T")
BUSY_MS: Final = 30_000  # how long a writer waits for another process's transaction
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL,
    claimed INTEGER NOT NULL DEFAULT 0
)
"""


def _encode(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"an outbox row holds no {type(value).__name__}")


@dataclass(frozen=True)
class Pending:
    """Rows still in the outbox, oldest first: ``rows`` (the target's columns) and which of them
    a killed flusher had claimed (``claimed``, their ids), which may already be in the table."""

    rows: pl.DataFrame
    claimed: frozenset[str]


class Outbox:
    """The outbox of one target table, in the SQLite database at ``path``.

    Args:
        path: The database file (created with its folder on first use).
        schema: The target's columns; every row appended has them (datetimes with a zone).
        key: The column that identifies a row (unique, set by the writer): the flush's
            idempotency key.
    """

    def __init__(self, path: Path, schema: pl.Schema, key: str) -> None:
        self.path = path
        self.schema = schema
        self.key = key
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")  # kept by the file: every connection uses it
        db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection, opened once and kept (SQLite connections stay in their
        thread, and never cross a fork): opening one per call was half of an audited read's
        cost. In autocommit mode between transactions, so a kept connection holds no snapshot
        that a checkpoint would wait for."""
        kept: sqlite3.Connection | None = getattr(self._local, "db", None)
        if kept is not None and self._local.pid == os.getpid():
            return kept
        db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
        db.execute("PRAGMA synchronous=FULL")
        self._local.db, self._local.pid = db, os.getpid()
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``), committed on exit."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _locked(self, how: int) -> Iterator[None]:
        """The flush lock (``flock`` on ``<path>.lock``): exclusive to flush, shared to read."""
        with Path(f"{self.path}.lock").open("a") as handle:
            fcntl.flock(handle, how)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Add ``rows`` in one transaction, after every row already there; on disk when this
        returns."""
        encoded = [(str(r[self.key]), json.dumps(r, default=_encode)) for r in rows]
        with self._transaction() as db:
            db.executemany("INSERT INTO pending (id, entry) VALUES (?, ?)", encoded)

    def count(self) -> int:
        """How many rows wait."""
        return int(self._connect().execute("SELECT count(*) FROM pending").fetchone()[0])

    def _frame(self, entries: Sequence[str]) -> pl.DataFrame:
        """Rows as the target's columns (a datetime column travels as ISO 8601 text)."""
        times = {c: t for c, t in self.schema.items() if isinstance(t, pl.Datetime)}
        text = pl.Schema({c: pl.String if c in times else t for c, t in self.schema.items()})
        frame = pl.DataFrame([json.loads(e) for e in entries], schema=text, orient="row")
        return frame.with_columns(
            pl.col(c).str.to_datetime(time_unit=t.time_unit, time_zone=t.time_zone)
            for c, t in times.items()
        )

    def _pending(
        self, db: sqlite3.Connection, limit: int = -1, claimed: bool = False
    ) -> list[tuple[int, str, str, int]]:
        """Pending rows, oldest first (only the claimed ones when ``claimed``): their sequence
        number, id, entry and whether a flusher claimed them."""
        found = db.execute(
            "SELECT seq, id, entry, claimed FROM pending WHERE claimed >= ? ORDER BY seq LIMIT ?",
            (int(claimed), limit),
        ).fetchall()
        return [(int(s), str(i), str(e), int(c)) for s, i, e, c in found]

    def read(self, snapshot: Callable[[], T]) -> tuple[Pending, T]:
        """The pending rows and ``snapshot()`` (the reader's view of the target: open its
        version there), taken together while no flush runs, so each row is in exactly one of
        them but a killed flusher's ``claimed`` rows (see the module's docstring)."""
        with self._locked(fcntl.LOCK_SH):
            found = self._pending(self._connect())
            taken = snapshot()
        claimed = frozenset(i for _, i, _, c in found if c)
        return Pending(self._frame([e for _, _, e, _ in found]), claimed), taken

    def flush(
        self,
        deliver: Callable[[pl.DataFrame], None],
        delivered: Callable[[pl.DataFrame], set[str]],
        batch: int,
        committed: Callable[[], None] | None = None,
    ) -> int:
        """Move every pending row to the target, oldest first, ``batch`` rows a commit, and
        return how many were moved. Waits for a flush running elsewhere to end first.

        Args:
            deliver: Writes a batch to the target in one commit (raises when it did not).
            delivered: The ids among some rows that the target already holds (a killed
                flusher's last batch, looked up once before anything is sent).
            batch: The most rows one commit carries.
            committed: Called after each commit, before its rows are deleted (tests kill the
                process there).
        """
        moved = 0
        with self._locked(fcntl.LOCK_EX):
            self._recover(delivered)
            while True:
                with self._transaction() as db:
                    found = self._pending(db, batch)
                    if not found:
                        return moved
                    first, last = found[0][0], found[-1][0]
                    db.execute(
                        "UPDATE pending SET claimed = 1 WHERE seq BETWEEN ? AND ?", (first, last)
                    )
                deliver(self._frame([e for _, _, e, _ in found]))
                if committed is not None:
                    committed()
                with self._transaction() as db:
                    db.execute("DELETE FROM pending WHERE seq BETWEEN ? AND ?", (first, last))
                moved += len(found)

    def _recover(self, delivered: Callable[[pl.DataFrame], set[str]]) -> None:
        """Settle the rows a killed flusher claimed (the caller holds the flush lock, so no one
        else claims any): delete those the target holds, and send the rest again, unclaimed,
        in their place in the sequence. The target is looked up outside any transaction, so
        writers are not held up meanwhile."""
        found = self._pending(self._connect(), claimed=True)
        if not found:
            return
        present = delivered(self._frame([e for _, _, e, _ in found]))
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM pending WHERE seq = ?", [(s,) for s, i, _, _ in found if i in present]
            )
            db.execute("UPDATE pending SET claimed = 0")
