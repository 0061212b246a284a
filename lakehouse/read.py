"""The one read path: Polars for pipelines, DuckDB for queries.

``scan`` gives a Polars ``LazyFrame`` of a table (``pl.scan_delta`` prunes partitions on
filters). ``connect`` gives a DuckDB connection where every existing table is a view under its
catalogue name (``SELECT * FROM silver.claims``), read through DuckDB's delta extension, which is
loaded from the ``duckdb-extension-delta`` wheel because ``INSTALL delta`` needs the network.
``lookup`` gives the rows of a table whose columns take given values (the apps' lookups by a
citizen, a clinic, a study), reading only the files whose Delta statistics can hold them.
On object storage (``LAKEHOUSE_URI=s3://...``) the delta extension reads through a DuckDB S3
secret, a secret type only the ``httpfs`` extension defines: it is loaded from the
``duckdb-extension-httpfs`` wheel and the secret made from the ``AWS_*`` settings delta-rs uses
(without one the extension asks the cloud's instance metadata for credentials).
"""

from __future__ import annotations

import bisect
import functools
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import duckdb
import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lakehouse import audit
from lakehouse.catalog import TABLES
from lakehouse.config import duckdb_memory, is_remote, lakehouse_uri, storage_options
from lakehouse.delta import exists, open_table, spec, uri
from lakehouse.schema import Table

# Table features under which a Delta table's files are not its rows as written: a reader that
# lists the files itself would show deleted rows or wrong column names.
UNSAFE_FEATURES: Final = frozenset({"deletionVectors", "columnMapping"})


def scan(name: str | Table) -> pl.LazyFrame:
    """A table as a Polars LazyFrame; an empty one with the catalogue's schema when the table
    has not been written yet (a pipeline's first run)."""
    table = spec(name)
    if table.name == audit.AUDIT:
        return audit.scan()  # with the rows still in the outbox (``lakehouse.audit``)
    if not exists(table):
        return pl.LazyFrame(schema=table.polars_schema())
    return pl.scan_delta(uri(table.name), storage_options=storage_options())


def frame(name: str | Table, where: pl.Expr | None = None) -> pl.DataFrame:
    """A table's rows, optionally filtered (partition filters prune files)."""
    lazy = scan(name)
    return (lazy.filter(where) if where is not None else lazy).collect()


def _extension(name: str) -> Path:
    """A DuckDB extension shipped in its ``duckdb-extension-<name>`` wheel."""
    root = Path(str(resources.files(f"duckdb_extension_{name}")))
    return root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"


def _s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """Let ``con`` read the remote lakehouse: httpfs loaded and an S3 secret of the ``AWS_*``
    settings (a custom endpoint path-style, as delta-rs and Polars address it)."""
    con.execute(f"LOAD '{_extension('httpfs')}'")
    options = storage_options() or {}
    endpoint = urlsplit(options.get("AWS_ENDPOINT_URL", ""))
    settings = {
        "KEY_ID": options.get("AWS_ACCESS_KEY_ID"),
        "SECRET": options.get("AWS_SECRET_ACCESS_KEY"),
        "SESSION_TOKEN": options.get("AWS_SESSION_TOKEN"),
        "REGION": options.get("AWS_REGION"),
        "ENDPOINT": endpoint.netloc or None,
        "URL_STYLE": "path" if endpoint.netloc else None,
        "USE_SSL": "false" if endpoint.scheme == "http" else None,
    }
    given = {k: v for k, v in settings.items() if v is not None}
    # Parameters keep the keys out of the statement's text (and of DuckDB's error messages).
    fields = ", ".join(["TYPE s3", *(f"{k} ?" for k in given)])
    con.execute(f"CREATE OR REPLACE SECRET lakehouse ({fields})", list(given.values()))


def _spill() -> str:
    """Where DuckDB spills what passes its memory limit: the system's temporary folder (its own
    default for an in-memory database is ``.tmp`` in the working folder, which an app server
    may not own)."""
    return str(Path(tempfile.gettempdir()) / "gjh-duckdb")


def _view(create: str, name: str) -> str:
    """The statement making a catalogue table a DuckDB view (names come from the catalogue)."""
    return f"{create} {name} AS SELECT * FROM delta_scan('{uri(name)}')"


def connect(tables: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per existing table, named as in the catalogue.

    Args:
        tables: Only these tables (all existing ones by default). Views read the latest version
            at query time, so a long-lived connection sees new commits.
    """
    con = duckdb.connect(config={"memory_limit": duckdb_memory(), "temp_directory": _spill()})
    con.execute(f"LOAD '{_extension('delta')}'")
    if is_remote(lakehouse_uri()):
        _s3_secret(con)
    for layer in sorted({t.split(".")[0] for t in TABLES}):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
    for name in tables or sorted(TABLES):
        if exists(name):
            con.execute(_view("CREATE OR REPLACE VIEW", name))
    return con


def has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether ``con`` has a view for table ``name``."""
    schema, view = name.split(".")
    found = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
        [schema, view],
    ).fetchone()
    return bool(found and found[0])


def ensure_views(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    """Add views for tables written since ``con`` was made (a long-lived connection is made
    before the apps' own tables exist). Two threads adding the same view: the loser's
    conflict is ignored, the view is there."""
    for name in names:
        if not has_view(con, name) and exists(name):
            try:
                con.execute(_view("CREATE VIEW IF NOT EXISTS", name))
            except duckdb.TransactionException:
                continue


# --- Lookups by key: a kept log, the files its statistics allow, the row groups theirs allow ---


@dataclass(frozen=True)
class Snapshot:
    """One version of a table as its Delta log lists it, what a lookup prunes by.

    Attributes:
        name: The catalogue name.
        table_id: The Delta table's id (a table made anew at the same place starts its versions
            again; its id tells them apart).
        version: The version listed.
        partitions: The partition columns.
        files: One row per data file: ``uri`` (where a reader opens it), ``num_records``, and
            from the log's add actions ``partition.<column>`` (typed) and ``min.<column>`` /
            ``max.<column>`` (the file's statistics, null where the writer kept none).
    """

    name: str
    table_id: str
    version: int
    partitions: tuple[str, ...]
    files: pl.DataFrame
    _columns: dict[str, list[Any]] = field(default_factory=dict, compare=False, repr=False)

    def column(self, name: str) -> list[Any]:
        """One column of ``files`` as Python values, taken once (what lookups compare)."""
        found = self._columns.get(name)
        if found is None:
            found = self._columns[name] = self.files[name].to_list()
        return found


# The Delta logs of the tables the apps look rows up in, opened once per process and location
# and brought up to date on each lookup (``update_incremental`` reads only the commits since):
# opening one afresh (``pl.scan_delta`` by path) replays the log and lists the whole table on
# every call, several times the read of one citizen's or one clinic's rows, and more as the
# table grows. The file list with its statistics is taken once per version. One lock per table:
# a DeltaTable is not shared across threads, and one table's new version being listed does not
# hold up lookups in the others.
_KEPT: dict[str, DeltaTable] = {}
_SNAPSHOTS: dict[str, Snapshot] = {}
_LOCKS: dict[str, threading.Lock] = {}
_LOCKING: Final = threading.Lock()


def _lock(location: str) -> threading.Lock:
    """The lock of one table's kept log."""
    with _LOCKING:
        return _LOCKS.setdefault(location, threading.Lock())


def kept(name: str) -> DeltaTable | None:
    """``name``'s Delta log as this process keeps it, brought up to date, or None when the table
    does not exist or its files cannot be read as they are (``UNSAFE_FEATURES``: features these
    tables' writers never use). The caller holds the table's ``_lock``."""
    if not exists(name):
        _KEPT.pop(uri(name), None)
        return None
    location = uri(name)
    table = _KEPT.get(location)
    try:
        if table is None:
            raise DeltaError("not opened yet")
        table.update_incremental()
    except DeltaError:  # first read here, or the table was made anew at the same place
        table = _KEPT[location] = open_table(name)
    if UNSAFE_FEATURES & set(table.protocol().reader_features or ()):
        return None
    return table


def _listed(name: str, table: DeltaTable) -> Snapshot:
    """The table's files at its current version with their partition values and statistics."""
    actions = pl.DataFrame(table.get_add_actions(flatten=True))
    uris = table.file_uris()
    if actions.height:
        # ``file_uris`` and the add actions list the same files in the same order; the check
        # keeps a reader from ever pairing a file with another's statistics.
        paths = [unquote(p) for p in actions["path"].to_list()]
        if len(uris) != len(paths) or not all(
            u.endswith(p) for u, p in zip(uris, paths, strict=True)
        ):
            raise DeltaError(f"{name}: the log's files and their add actions do not pair")
    keep = [c for c in actions.columns if c.startswith(("partition.", "min.", "max."))]
    files = actions.select("num_records", *keep).with_columns(uri=pl.Series(uris, dtype=pl.Utf8))
    partitions = tuple(table.metadata().partition_columns)
    return Snapshot(name, str(table.metadata().id), table.version(), partitions, files)


def snapshot(name: str) -> Snapshot | None:
    """``name``'s files at its latest version, from the log this process keeps open (listed once
    per version), or None before its first build or when it cannot be read as it is."""
    table = spec(name).name
    with _lock(uri(table)):
        opened = kept(table)
        if opened is None:
            return None
        known = _SNAPSHOTS.get(uri(table))
        if known is not None and (known.table_id, known.version) == (
            str(opened.metadata().id),
            opened.version(),
        ):
            return known
        found = _SNAPSHOTS[uri(table)] = _listed(table, opened)
        return found


def _may_hold(snap: Snapshot, column: str, values: Sequence[object], rows: list[int]) -> list[int]:
    """Those of the snapshot's files (by row) that may hold a row whose ``column`` is one of
    ``values``: by the file's partition value, or else by its min/max statistics (a file without
    them may hold anything). Plain Python over the file list: a lookup's files are a few dozen
    to a few thousand, and a Polars expression per step cost more than the comparisons."""
    wanted = sorted({v for v in values if v is not None})  # type: ignore[type-var]
    if column in snap.partitions:
        held = snap.column(f"partition.{column}")
        return [i for i in rows if held[i] in set(wanted)]
    if f"min.{column}" not in snap.files.columns or f"max.{column}" not in snap.files.columns:
        return rows
    lows, highs = snap.column(f"min.{column}"), snap.column(f"max.{column}")
    kept = []
    for i in rows:
        low, high = lows[i], highs[i]
        if low is None or high is None:
            kept.append(i)
            continue
        # The smallest wanted value at or above the file's minimum: the file may hold a wanted
        # value exactly when that one is at or below its maximum. Delta keeps a long string's
        # maximum cut short and raised, still a bound; strings compare by code point, which is
        # the byte order of their UTF-8 that the statistics are kept in.
        at = bisect.bisect_left(wanted, low)
        if at < len(wanted) and wanted[at] <= high:
            kept.append(i)
    return kept


def _chosen(snap: Snapshot, where: Mapping[str, Sequence[object]]) -> list[int]:
    """The snapshot's files (by row) that may hold rows where every column of ``where`` takes
    one of its values."""
    rows = list(range(snap.files.height))
    for column, values in where.items():
        rows = _may_hold(snap, column, values, rows)
    return rows


def files_for(name: str, where: Mapping[str, Sequence[object]]) -> list[str] | None:
    """The files ``lookup`` reads for ``where``; None when it reads the table by ``scan``."""
    snap = snapshot(name)
    if snap is None:
        return None
    uris = snap.column("uri")
    return [uris[i] for i in _chosen(snap, where)]


def lookup(name: str | Table, where: Mapping[str, Sequence[object]]) -> pl.LazyFrame:
    """The rows of a table where every column of ``where`` takes one of its values, as a lookup
    by key should read them: only the files whose partition value or ``min``/``max`` statistics
    in the Delta log can hold such a row (a table written sorted by the key, or z-ordered by it,
    has few), and in them only the row groups whose Parquet statistics can (Polars skips the
    rest). The work does not grow with the table, only with the rows and files that match.

    Args:
        name: The table.
        where: Column to the values it may take (an empty sequence matches nothing). A table not
            built yet gives no rows; one that cannot be read by its files (``UNSAFE_FEATURES``)
            is read by ``scan``, with the same result.
    """
    table = spec(name)
    schema = table.polars_schema()
    if any(not [v for v in values if v is not None] for values in where.values()):
        return pl.LazyFrame(schema=schema)  # a column that may take no value: no row
    wanted = [pl.col(c).is_in(list(v)) for c, v in where.items()]
    snap = snapshot(table.name)
    if snap is None:
        return scan(table).filter(*wanted) if wanted else scan(table)
    chosen = _chosen(snap, where)
    if not chosen:
        return pl.LazyFrame(schema=schema)
    stored = {c: t for c, t in schema.items() if c not in snap.partitions}
    # One scan per partition value (usually one: the key's), its value a literal: no reading
    # of partition values back out of the paths.
    uris = snap.column("uri")
    values = [snap.column(f"partition.{c}") for c in snap.partitions]
    groups: dict[tuple[object, ...], list[str]] = {}
    for i in chosen:
        groups.setdefault(tuple(v[i] for v in values), []).append(uris[i])
    scans = [
        pl.scan_parquet(
            files,
            schema=stored,
            missing_columns="insert",
            extra_columns="ignore",
            storage_options=storage_options(),
        ).with_columns(
            pl.lit(v, schema[c]).alias(c) for c, v in zip(snap.partitions, given, strict=True)
        )
        for given, files in groups.items()
    ]
    rows = scans[0] if len(scans) == 1 else pl.concat(scans, how="vertical")
    return (rows.filter(*wanted) if wanted else rows).select(list(schema))


def greatest(name: str | Table, column: str) -> Any:
    """A column's largest value (None when it has none), from the Delta log's statistics when
    every file keeps them: no data file is read (a nightly job asks for the last day of a year of
    claims). A string's maximum is kept cut short and raised, and a file may keep none: then the
    column is scanned."""
    table = spec(name)
    snap = snapshot(table.name)
    if snap is None or snap.files.is_empty():
        return None
    if column in snap.partitions:
        held = [v for v in snap.column(f"partition.{column}") if v is not None]
        return max(held) if held else None
    stat = f"max.{column}"
    exact = table.polars_schema()[column] not in (pl.String, pl.Binary)
    if exact and stat in snap.files.columns and snap.files[stat].null_count() == 0:
        return snap.files[stat].max()
    return scan(table).select(pl.col(column).max()).collect().item()


def current(name: str | Table) -> pl.DataFrame:
    """A small table's rows at its latest version, read once per version and kept (a table at
    a version never changes, so no time to live is needed and a new commit is read on the next
    call): the published aggregates and the registers a page reads whole on every view. Empty
    with the catalogue's schema before its first build. Callers must not mutate it."""
    table = spec(name)
    snap = snapshot(table.name)
    if snap is None:
        return scan(table).collect()
    return _current_at(table.name, uri(table.name), snap.table_id, snap.version)


@functools.lru_cache(maxsize=16)
def _current_at(name: str, location: str, table_id: str, version: int) -> pl.DataFrame:
    """``name``'s rows at ``version`` (``current``; the location, id and version are the key)."""
    del location, table_id, version
    return lookup(name, {}).collect()
