"""Append-only tables written through a local outbox: the access log and the sign-ins.

A Delta commit costs 30-120 ms, too much for every access or sign-in of thousands of users, and
concurrent appends to one table conflict and retry. So a ``Ledger``'s rows go first to the
lakehouse's local outbox (``lakehouse.outbox``, SQLite on local disk): ``append`` returns once
they are on disk. A process that runs a flusher (``start_flusher``: the apps' servers) leaves
the rest to it: every ``FLUSH_SECONDS``, sooner once ``FLUSH_ROWS`` rows wait, and when it stops,
it moves the waiting rows to the table in order, ``BATCH_ROWS`` a commit. Any other process (the
pipelines, scripts, tests) flushes at once, so its row is in the table when ``append`` returns.
Every reader goes through ``scan``: the table and the rows still waiting, so nothing that was
acknowledged is missed (on object storage, rows still waiting in another machine's outbox show
once it flushed them: within ``FLUSH_SECONDS``).

Each row carries a unique id (``key``), by which a killed flusher's last batch is looked up in
the table, so every row arrives exactly once (``Outbox.flush``).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from lakehouse import config, delta
from lakehouse.catalog import table
from lakehouse.outbox import Outbox

log = logging.getLogger(__name__)

# A flusher moves the outbox's rows at least this often (the most an app's row waits before it
# is in the table), and sooner once this many rows of its process wait; a commit carries at
# most ``BATCH_ROWS`` rows.
FLUSH_SECONDS: Final = 1.0
FLUSH_ROWS: Final = 500
BATCH_ROWS: Final = 5000


@dataclass(frozen=True)
class Ledger:
    """One append-only table and how its outbox reaches it.

    Args:
        table: The Delta table.
        key: Its column of unique row ids.
        name: The outbox file's prefix (one outbox per ledger and lakehouse).
        narrow: Given rows, an expression that narrows the table to where they can be (the
            access log: their months' partitions), so looking ids up reads only those files.
        committed: Called with each commit's table version (the access log compacts itself
            every so many commits).
    """

    table: str
    key: str
    name: str
    narrow: Callable[[pl.DataFrame], pl.Expr] | None = None
    committed: Callable[[int], None] | None = None

    def outbox(self) -> Outbox:
        """This ledger's outbox for the current lakehouse: a database in
        ``config.outbox_dir()`` named for the lakehouse, so two lakehouses never share one."""
        lake = hashlib.sha256(config.lakehouse_uri().encode()).hexdigest()[:16]
        path = config.outbox_dir() / f"{self.name}-{lake}.sqlite"
        with _lock:
            box = _boxes.get(path)
            if box is None:
                box = _boxes[path] = Outbox(path, table(self.table).polars_schema(), self.key)
            return box

    def append(self, entries: Sequence[Mapping[str, object]]) -> None:
        """Append rows in one transaction of the outbox: on disk when this returns (never
        updated afterwards). Without a flusher in this process they are then flushed at once
        (one commit, with whatever else waited)."""
        box = self.outbox()
        box.append(entries)
        flusher = _flushers.get(box.path)
        if flusher is None:
            self.flush(box)
        else:
            flusher.nudge(len(entries))

    def flush(self, box: Outbox | None = None, committed: Callable[[], None] | None = None) -> int:
        """Move the rows waiting in the outbox (this lakehouse's, or ``box``) to the table, in
        order, ``BATCH_ROWS`` a commit; returns how many moved. ``committed`` runs after each
        commit, before its rows leave the outbox (the kill test's hook)."""
        versions: list[int] = []

        def deliver(batch: pl.DataFrame) -> None:
            written = delta.append(self.table, batch)
            if written.version is not None:
                versions.append(written.version)

        moved = (box or self.outbox()).flush(deliver, self._delivered, BATCH_ROWS, committed)
        if self.committed is not None:
            for version in versions:
                self.committed(version)
        return moved

    def snapshot(self) -> pl.LazyFrame:
        """The table at its latest version (an empty frame of its columns before its first
        row)."""
        if not delta.exists(self.table):
            return pl.LazyFrame(schema=table(self.table).polars_schema())
        return pl.scan_delta(delta.open_table(self.table))

    def held(self, logged: pl.LazyFrame, rows: pl.DataFrame) -> set[str]:
        """The ids among ``rows`` that ``logged`` already holds."""
        ids = pl.col(self.key).is_in(rows[self.key].implode())
        found = logged.filter(ids if self.narrow is None else self.narrow(rows) & ids)
        return set(found.select(self.key).collect()[self.key].to_list())

    def _delivered(self, rows: pl.DataFrame) -> set[str]:
        """The ids among ``rows`` the table holds now (a killed flusher's last batch)."""
        return self.held(self.snapshot(), rows)

    def scan(self) -> pl.LazyFrame:
        """The table as it stands: its rows and the rows still in this lakehouse's outbox,
        each once (by its id), whatever a flusher is doing meanwhile (``Outbox.read``)."""
        pending, logged = self.outbox().read(self.snapshot)
        rows = pending.rows
        if pending.claimed:
            claimed = rows.filter(
                pl.col(self.key).is_in(pl.Series(list(pending.claimed), dtype=pl.String).implode())
            )
            in_table = pl.Series(list(self.held(logged, claimed)), dtype=pl.String)
            rows = rows.filter(~pl.col(self.key).is_in(in_table.implode()))
        return pl.concat([logged, rows.lazy()], how="vertical_relaxed")

    def start_flusher(self, every: float = FLUSH_SECONDS) -> Flusher:
        """Flush this lakehouse's outbox from a thread of this process (once per process and
        lakehouse; later calls return the running one), and once more at exit: from now on
        ``append`` returns as soon as a row is in the outbox."""
        box = self.outbox()
        with _lock:
            running = _flushers.get(box.path)
            if running is not None:
                return running
            running = _flushers[box.path] = Flusher(lambda: self.flush(box), self.table, every)
        running.start()
        atexit.register(stop_flusher, box.path)
        return running

    def stop_flusher(self) -> None:
        """Stop this lakehouse's flusher after a last flush; ``append`` flushes at once
        again."""
        stop_flusher(self.outbox().path)


class Flusher:
    """A thread that flushes one outbox every ``every`` seconds, or sooner once ``rows`` rows
    of its process wait, and once more when stopped. A failed flush is logged and retried on
    the next round: the rows stay in the outbox meanwhile, on disk.

    Args:
        flush: Moves the outbox's rows to the table.
        what: The table, for the log.
        every: The most seconds between two flushes.
        rows: How many rows appended in this process wake it early.
    """

    def __init__(
        self,
        flush: Callable[[], int],
        what: str,
        every: float = FLUSH_SECONDS,
        rows: int = FLUSH_ROWS,
    ) -> None:
        self._flush_rows = flush
        self.what = what
        self.every = every
        self.rows = rows
        self._waiting = 0
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"flusher-{what}", daemon=True)

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
            self._flush_rows()
        except Exception:
            log.exception("flushing the outbox of %s failed; it is retried", self.what)

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


_boxes: dict[Path, Outbox] = {}
_flushers: dict[Path, Flusher] = {}
_lock = threading.Lock()


def stop_flusher(path: Path) -> None:
    """Stop the flusher of the outbox at ``path``, if one runs, after a last flush."""
    with _lock:
        running = _flushers.pop(path, None)
    if running is not None:
        running.stop()
