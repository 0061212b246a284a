"""The one Delta IO module: every write to the lakehouse goes through here.

Writes are conformed to the catalogue first (``Table.conform``), so a table's schema is what the
catalogue says, whoever writes it. Four ways to write, each one atomic commit:

* ``append``: add rows (the ledger, audit-style tables);
* ``replace``: replace exactly the rows matching a predicate (a partition, a delivery) and nothing
  else, so a rerun is idempotent and neighbouring partitions survive; never a whole-table
  overwrite; ``replace_streamed`` does the same from a stream of batches too large to hold;
* ``merge``: upsert by key, optionally only where the incoming row is newer;
* ``delete``: remove rows matching a predicate.

A table written before the catalogue gained a column gets that column (null in its old rows) on
its next write, or when ``evolve`` is called (``gjh build`` evolves every table first): a deployed
lakehouse moves forward with the code without a rebuild. A new *required* column cannot be added
so, and the write stops with that reason.

Concurrent writers can lose the race to commit (``CommitFailedError``); nothing is lost, the
writer retries with backoff. ``optimize`` and ``vacuum`` keep tables fast and small.

An append goes through a handle kept open per process and brought up to date before each commit
(``update_incremental`` reads only the commits since), because the access log takes one append
per read: reopening it replayed up to a checkpoint's worth of commit files twice per row, most of
an audited read's time.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar
from urllib.parse import unquote

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, Schema, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError

from lakehouse.catalog import table as catalog_table
from lakehouse.config import lakehouse_uri, storage_options
from lakehouse.schema import Table

log = logging.getLogger(__name__)

RETRIES: Final = 10
T = TypeVar("T")


@dataclass(frozen=True)
class WriteResult:
    """What a write did: the table's new version and how many rows went in."""

    table: str
    version: int
    rows: int


def uri(name: str) -> str:
    """Where a table lives: ``<LAKEHOUSE_URI>/<layer>/<name>``."""
    layer, short = name.split(".", 1)
    return f"{lakehouse_uri()}/{layer}/{short}"


def spec(name: str | Table) -> Table:
    return name if isinstance(name, Table) else catalog_table(name)


def exists(name: str | Table) -> bool:
    """Whether the table has been created."""
    return DeltaTable.is_deltatable(uri(spec(name).name), storage_options=storage_options())


@dataclass(frozen=True)
class TableState:
    """What ``gjh catalog`` reports of one table: where it is, its rows, version and last
    commit (all None when the table has not been created yet)."""

    table: str
    uri: str
    rows: int | None
    version: int | None
    updated: datetime | None


def state(name: str | Table) -> TableState:
    """A table's size and version from its Delta log alone (file statistics, no data read)."""
    table = spec(name)
    where = uri(table.name)
    if not exists(table):
        return TableState(table.name, where, None, None, None)
    dt = open_table(table)
    actions = pl.DataFrame(dt.get_add_actions(flatten=True))
    rows = int(actions["num_records"].sum()) if actions.height else 0
    last = dt.history(1)
    updated = datetime.fromtimestamp(last[0]["timestamp"] / 1000, UTC) if last else None
    return TableState(table.name, where, rows, dt.version(), updated)


def open_table(name: str | Table) -> DeltaTable:
    """The Delta table, at its latest version."""
    return DeltaTable(uri(spec(name).name), storage_options=storage_options())


class SchemaError(RuntimeError):
    """A table lacks a column the catalogue requires (never null): its old rows have no value."""


_evolved: set[tuple[str, tuple[str, ...]]] = set()


def relayout(table: Table) -> bool:
    """Rewrite a table whole, in one commit, when the catalogue now partitions it otherwise
    than it was written (a partitioned write into it would fail); returns whether it did. The
    rows stay as they are, and earlier versions stay readable until vacuumed."""
    dt = open_table(table)
    if list(dt.metadata().partition_columns) == list(table.partition_by):
        return False
    data = table.conform(pl.read_delta(dt)).to_arrow()
    write_deltalake(
        uri(table.name),
        data,
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=list(table.partition_by) or None,
        storage_options=storage_options(),
    )
    log.info("%s: rewritten partitioned by %s", table.name, list(table.partition_by))
    return True


def evolve(name: str | Table) -> list[str]:
    """Add to an existing table the columns the catalogue has gained since the table was written;
    returns their names. Old rows read them as null, which only a nullable column allows."""
    table = spec(name)
    if not exists(table):
        return []
    relayout(table)
    dt = open_table(table)
    have = {field.name for field in dt.schema().fields}
    new = [c for c in table.columns if c.name not in have]
    if not new:
        return []
    required = [c.name for c in new if c.required]
    if required:
        raise SchemaError(
            f"{table.name} lacks the required column(s) {required} the catalogue now has; its "
            "rows hold no value for them: rebuild the table from its sources"
        )
    empty = table.conform(pl.DataFrame(schema=table.polars_schema()))
    arrow = empty.select(c.name for c in new).to_arrow().schema
    dt.alter.add_columns(list(Schema.from_arrow(arrow).fields))
    log.info("%s: added column(s) %s from the catalogue", table.name, [c.name for c in new])
    return [c.name for c in new]


def _evolved_once(table: Table) -> None:
    """``evolve`` a table before this process first writes it (a write of the catalogue's
    columns into a table without one of them would fail on its schema)."""
    seen = (uri(table.name), tuple(table.names))
    if seen in _evolved:
        return
    evolve(table)
    _evolved.add(seen)


_handles: dict[str, DeltaTable] = {}
_handles_lock = threading.Lock()
_table_locks: dict[str, threading.Lock] = {}


def _append_lock(target: str) -> threading.Lock:
    """One lock per table: a handle is one Rust object that two threads must not commit through
    at once (the apps serve every session from one process)."""
    with _handles_lock:
        return _table_locks.setdefault(target, threading.Lock())


def _append(
    table: Table, data: pa.Table, parts: list[str] | None, properties: WriterProperties
) -> int:
    """Append through the process's open handle of the table; returns the new version. The
    handle is created on the table's first append and dropped when a commit fails for any
    reason but a lost race, so a broken handle is never reused."""
    target = uri(table.name)
    with _append_lock(target):
        handle = _handles.get(target)
        if handle is None and not exists(table):
            write_deltalake(
                target,
                data,
                mode="append",
                partition_by=parts,
                storage_options=storage_options(),
                writer_properties=properties,
            )
            return open_table(table).version()
        if handle is None:
            handle = _handles[target] = open_table(table)

        def commit() -> None:
            assert handle is not None
            handle.update_incremental()
            write_deltalake(
                handle,
                data,
                mode="append",
                partition_by=parts,
                writer_properties=properties,
            )

        try:
            _retry(commit, table.name)
        except Exception:
            _handles.pop(target, None)
            raise
        return handle.version()


def _retry(action: Callable[[], T], what: str) -> T:
    """Run a commit, retrying when another writer committed first."""
    for attempt in range(RETRIES):
        try:
            return action()
        except CommitFailedError:
            if attempt == RETRIES - 1:
                raise
            wait = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random())
            log.info("%s: commit conflict, retrying in %.2f s", what, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _write(
    table: Table, frame: pl.DataFrame, predicate: str | None, row_group_rows: int | None = None
) -> WriteResult:
    """Append (no predicate) or replace the rows matching ``predicate``, in one commit."""
    data = table.conform(frame).to_arrow()
    _evolved_once(table)
    target = uri(table.name)
    parts = list(table.partition_by) or None
    options = storage_options()
    properties = WriterProperties(max_row_group_size=row_group_rows)

    if predicate is None:
        return WriteResult(table.name, _append(table, data, parts, properties), frame.height)

    def commit() -> None:
        write_deltalake(
            target,
            data,
            mode="overwrite",
            predicate=predicate,
            partition_by=parts,
            storage_options=options,
            writer_properties=properties,
        )

    _retry(commit, table.name)
    return WriteResult(table.name, open_table(table).version(), frame.height)


def append(name: str | Table, frame: pl.DataFrame) -> WriteResult:
    """Add rows to a table, creating it if need be."""
    return _write(spec(name), frame, None)


def replace(
    name: str | Table, frame: pl.DataFrame, predicate: str, row_group_rows: int | None = None
) -> WriteResult:
    """Replace exactly the rows matching ``predicate`` with ``frame``, in one commit.

    Args:
        name: The table.
        frame: The new rows; every one of them must match ``predicate``.
        predicate: A SQL predicate on the table's columns, such as ``_period = '2025-03'``. It
            bounds what is replaced: rows outside it are never touched.
        row_group_rows: At most this many rows per Parquet row group (the writer's default
            otherwise): small groups of sorted rows let a reader of one key skip the rest.
    """
    table = spec(name)
    if not exists(table):
        return _write(table, frame, None, row_group_rows)
    return _write(table, frame, predicate, row_group_rows)


def arrow_schema(name: str | Table) -> pa.Schema:
    """The Arrow schema of a table's rows as the catalogue types them (``Table.conform``)."""
    table = spec(name)
    return table.conform(pl.DataFrame(schema=table.polars_schema())).to_arrow().schema


def replace_streamed(
    name: str | Table, batches: Callable[[], pa.RecordBatchReader], predicate: str
) -> WriteResult:
    """Replace exactly the rows matching ``predicate`` with a stream of rows, in one commit,
    never holding them all in memory (a table built in passes, each pass's rows kept on disk
    until the last: ``pipelines.defs.omop``).

    Args:
        name: The table.
        batches: Opens the new rows afresh (a commit that lost a race reads them again), in the
            catalogue's columns; each batch is cast to the catalogue's types.
        predicate: As for ``replace``: what is replaced, rows outside it are never touched.
    """
    table = spec(name)
    schema = arrow_schema(table)
    existed = exists(table)
    if existed:
        _evolved_once(table)
    rows = 0

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        rows = 0
        for batch in batches().cast(schema):
            rows += batch.num_rows
            yield batch

    def commit() -> None:
        write_deltalake(
            uri(table.name),
            pa.RecordBatchReader.from_batches(schema, counted()),
            mode="overwrite",
            predicate=predicate if existed else None,
            partition_by=list(table.partition_by) or None,
            storage_options=storage_options(),
        )

    _retry(commit, table.name)
    return WriteResult(table.name, open_table(table).version(), rows)


def merge(
    name: str | Table,
    frame: pl.DataFrame,
    keys: tuple[str, ...] | None = None,
    newer: str | None = None,
    insert_only: bool = False,
) -> WriteResult:
    """Upsert rows by key in one commit.

    Args:
        name: The table.
        frame: The incoming rows.
        keys: Columns identifying a row; the table's declared key by default.
        newer: A column (such as ``delivered_at``): a matched row is replaced only when the
            incoming value is at least the stored one, so re-running an older delivery never
            undoes a later correction.
        insert_only: Add new keys and leave existing rows untouched (for values that are not
            reproducible, such as ciphertexts with random nonces).
    """
    table = spec(name)
    if not exists(table):
        return _write(table, frame, None)
    on = keys or table.key
    # Partition columns in the join let delta-rs skip the files of untouched partitions.
    join = " AND ".join(f"t.{k} = s.{k}" for k in (*table.partition_by, *on) if k)
    data = table.conform(frame).to_arrow()
    _evolved_once(table)

    def commit() -> None:
        builder = open_table(table).merge(
            data, predicate=join, source_alias="s", target_alias="t", streamed_exec=False
        )
        if not insert_only:
            condition = f"s.{newer} >= t.{newer}" if newer else None
            builder = builder.when_matched_update_all(predicate=condition)
        builder.when_not_matched_insert_all().execute()

    _retry(commit, table.name)
    return WriteResult(table.name, open_table(table).version(), frame.height)


def delete(name: str | Table, predicate: str) -> int:
    """Delete the rows matching ``predicate``; return how many went."""
    table = spec(name)
    if not exists(table):
        return 0
    metrics = _retry(lambda: open_table(table).delete(predicate), table.name)
    return int(metrics.get("num_deleted_rows", 0) or 0)


def optimize(name: str | Table, row_group_rows: int | None = None) -> dict[str, object]:
    """Compact small files (each run adds some); returns delta-rs's metrics.

    A table the catalogue sorts (``Table.sort_by``, a citizen key within its key bucket) is
    z-ordered by that column instead, partition by partition and only where a partition has
    more than one file, so the rows a day appended join their citizens' row groups again and
    compaction never undoes the layout the lookups rely on.

    Args:
        name: The table.
        row_group_rows: At most this many rows per row group in the files a z-order writes.
    """
    table = spec(name)
    dt = open_table(table)
    if not table.sort_by:
        result: dict[str, object] = _retry(dt.optimize.compact, table.name)
        return result
    columns = [f"partition.{c}" for c in table.partition_by]
    actions = pl.DataFrame(dt.get_add_actions(flatten=True))
    crowded = (
        actions.group_by(columns).len().filter(pl.col("len") > 1).drop("len").rows()
        if columns
        else [()] * (actions.height > 1)
    )
    removed = added = 0
    properties = WriterProperties(max_row_group_size=row_group_rows)
    for values in crowded:
        filters = [(c, "=", str(v)) for c, v in zip(table.partition_by, values, strict=True)]
        metrics = _retry(
            lambda f=filters: open_table(table).optimize.z_order(  # type: ignore[misc]
                list(table.sort_by), partition_filters=f or None, writer_properties=properties
            ),
            table.name,
        )
        removed += int(metrics.get("numFilesRemoved", 0))
        added += int(metrics.get("numFilesAdded", 0))
    return {"numFilesRemoved": removed, "numFilesAdded": added, "partitions": len(crowded)}


# The table properties where a derived table keeps what it was last computed from
# (``read_state``, ``record_state``), and where a table keeps its quality checks' last counts
# (``lakehouse.quality``: what the next evaluation adds the appended rows' counts to).
STATE_PROPERTY: Final = "gjh.computed_from"
CHECKED_PROPERTY: Final = "gjh.checked"


def version(name: str | Table) -> int:
    """The table's latest version, -1 when it has not been created yet."""
    table = spec(name)
    return open_table(table).version() if exists(table) else -1


def read_state(name: str | Table, key: str = STATE_PROPERTY) -> dict[str, object]:
    """What a table recorded under property ``key`` (``record_state``; by default a derived
    table's last computation), {} when the table does not exist or recorded nothing."""
    table = spec(name)
    if not exists(table):
        return {}
    raw = open_table(table).metadata().configuration.get(key)
    found = json.loads(raw) if raw else {}
    return found if isinstance(found, dict) else {}


def record_state(name: str | Table, state: dict[str, object], key: str = STATE_PROPERTY) -> None:
    """Record in a table's properties, in one commit of its own, under ``key``: by default what
    a derived table was computed from (the versions of its sources it read), so its next
    refresh reads only what changed since.

    Recorded after the table's data commits, so a failure between them leaves the older state:
    the next refresh then recomputes a little more than needed, never less. The commit changes
    no row (``ROWLESS``): no reader keyed on rows looks at it.
    """
    table = spec(name)
    text = json.dumps(state, sort_keys=True, default=str)
    _retry(
        lambda: open_table(table).alter.set_table_properties(
            {key: text}, raise_if_not_exists=False
        ),
        table.name,
    )


# Commits that change no row: the weekly upkeep's compaction and z-order (files rewritten with
# the same rows, ``dataChange`` false), its vacuum, and a derived table's ``record_state``.
ROWLESS: Final = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES"})


def _operations(table: Table, since: int, until: int) -> dict[int, str]:
    """Each commit's operation after version ``since`` up to ``until``, read from the commits'
    own info (one small log file each)."""
    if until <= since:
        return {}
    opened = open_table(table)
    found = opened.history(limit=opened.version() - max(since, -1))
    return {
        int(c["version"]): str(c.get("operation", ""))
        for c in found
        if since < int(c["version"]) <= until
    }


def row_commits(name: str | Table, since: int, until: int | None = None) -> list[int]:
    """The versions after ``since`` (up to ``until``, the latest by default) whose commits may
    have changed rows: all but the ``ROWLESS`` ones. An empty list means nothing a reader keyed
    on rows needs to look at, however many commits the upkeep made. A version whose commit
    info can no longer be read (log files cleaned up) counts as one that may have."""
    table = spec(name)
    last = version(table) if until is None else until
    known = _operations(table, since, last)
    return [v for v in range(max(since, -1) + 1, last + 1) if known.get(v) not in ROWLESS]


def _added(table: Table, at: int) -> pl.DataFrame:
    return pl.DataFrame(
        DeltaTable(uri(table.name), version=at, storage_options=storage_options()).get_add_actions(
            flatten=True
        )
    )


def _changed_files(
    table: Table, now: DeltaTable, since: int
) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """The add actions of the files version ``now`` has that ``since`` had not, and of those
    ``since`` had that ``now`` has not; None when an old version can no longer be read.

    The upkeep's ``optimize`` rewrites files without changing a row; its commits are stepped
    over (the files on each side of one are compared, never across it), so the night after the
    upkeep reads only that day's changes, not every compacted file.
    """
    last = now.version()
    after = pl.DataFrame(now.get_add_actions(flatten=True))
    if since < 0:
        return after, after.clear()
    rewrites = [v for v, op in _operations(table, since, last).items() if op == "OPTIMIZE"]
    # Compare the versions around each rewrite, never across one: [since, r1 - 1],
    # [r1, r2 - 1], ..., [rk, last].
    starts, ends = [since, *sorted(rewrites)], [r - 1 for r in sorted(rewrites)] + [last]
    added: list[pl.DataFrame] = []
    removed: list[pl.DataFrame] = []
    try:
        for start, end in zip(starts, ends, strict=True):
            if start >= end:
                continue
            before = _added(table, start)
            later = after if end == last else _added(table, end)
            added.append(later.join(before.select("path"), on="path", how="anti"))
            removed.append(before.join(later.select("path"), on="path", how="anti"))
    except Exception:  # any unreadable old version: the caller reads the table whole
        return None

    def files(pieces: list[pl.DataFrame]) -> pl.DataFrame:
        found = pl.concat(pieces, how="diagonal_relaxed") if pieces else after.clear()
        return found.unique("path", keep="first", maintain_order=True)

    return files(added), files(removed)


def _rows_of(table: Table, files: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame | None:
    """The rows of these files (add actions) in ``columns`` and the catalogue's types, the
    partition columns from the log; None when a file can no longer be read."""
    schema = table.polars_schema()
    wanted = {c: schema[c] for c in columns}
    if files.is_empty():
        return pl.DataFrame(schema=wanted)
    parts = [c for c in columns if c in table.partition_by]
    in_files = [c for c in columns if c not in table.partition_by]
    scans = [
        pl.scan_parquet(
            unquote(f"{uri(table.name)}/{row['path']}"),
            missing_columns="insert",
            storage_options=storage_options(),
        )
        .select(in_files)
        .with_columns(pl.lit(row[f"partition.{c}"]).alias(c) for c in parts)
        for row in files.iter_rows(named=True)
    ]
    try:
        rows = pl.concat(scans, how="diagonal_relaxed").collect()
    except (OSError, pl.exceptions.ComputeError):
        return None
    return rows.select(pl.col(c).cast(dtype) for c, dtype in wanted.items())


def _at(table: Table, until: int | None) -> DeltaTable:
    now = open_table(table)
    if until is not None:
        now.load_as_version(until)
    return now


def changed_rows(
    name: str | Table, since: int, columns: tuple[str, ...], until: int | None = None
) -> pl.DataFrame | None:
    """The rows of the files a table added or removed between version ``since`` and ``until``
    (the latest by default): every row that appeared, vanished or changed is among them (a
    rewritten file brings its unchanged rows along, so this is a superset), read from the
    files themselves, the removed ones still on storage until vacuumed. The upkeep's
    ``optimize`` commits are stepped over (``_changed_files``).

    Args:
        name: The table.
        since: The version last read; -1 when the table did not exist then (all its rows).
        columns: The columns wanted (partition columns come from the log).
        until: The version read now.

    Returns:
        The rows, in the catalogue's types; None when version ``since`` or one of its files can
        no longer be read (vacuumed, or the table was recreated): the caller recomputes whole.
    """
    table = spec(name)
    now = _at(table, until)
    if since > now.version():
        return None
    found = _changed_files(table, now, since)
    if found is None:
        return None
    added, removed = found
    files = pl.concat([added, removed], how="diagonal_relaxed").unique("path", keep="first")
    return _rows_of(table, files, columns)


def keys_kept(name: str | Table, column: str, since: int) -> bool:
    """Whether the table still holds every value of ``column`` it held at version ``since``:
    rows rewritten since (a night's merge of the persons it touched) kept their keys, so a
    foreign key into it that every row met then is met by those rows still.

    Only the files removed since (the upkeep's compactions stepped over) can have held a key
    that is gone: their values are looked for in the table's column. False when a version in
    between can no longer be read.
    """
    table = spec(name)
    now = open_table(table)
    if now.version() == since:
        return True
    changed = _changed_files(table, now, since)
    if changed is None:
        return False
    removed = changed[1]
    if removed.is_empty():
        return True
    held = _rows_of(table, removed, [column])
    if held is None:
        return False
    current = pl.from_arrow(now.to_pyarrow_dataset().to_table(columns=[column]))
    assert isinstance(current, pl.DataFrame)
    lost = held.drop_nulls().unique().join(current.unique(), on=column, how="anti")
    return lost.is_empty()


def appended_rows(
    name: str | Table, since: int, until: int | None = None, most: int | None = None
) -> pl.DataFrame | None:
    """The rows a table gained between version ``since`` and ``until`` (the latest by default)
    when it only gained rows: every column, read from the files added. None when a commit in
    between removed a file (a row may have changed or vanished: the caller reads the table
    whole), when an old version or file can no longer be read, or when the files added hold
    more than ``most`` rows (by the log's counts, before any is read). The upkeep's
    ``optimize`` commits are stepped over (``_changed_files``): compacting removes files but
    no row."""
    table = spec(name)
    now = _at(table, until)
    if since > now.version():
        return None
    found = _changed_files(table, now, since)
    if found is None or not found[1].is_empty():
        return None
    added = found[0]
    if most is not None and added.height and int(added["num_records"].sum()) > most:
        return None
    return _rows_of(table, added, table.names)


def vacuum(name: str | Table, retention_hours: int = 168) -> list[str]:
    """Remove files no version within ``retention_hours`` needs (default a week, so readers of
    recent versions and time travel keep working); returns the removed files."""
    table = spec(name)
    return list(
        open_table(table).vacuum(
            retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
        )
    )
