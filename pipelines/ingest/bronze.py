"""The bronze boundary: parsed rows become bronze rows, and the ingestion is accounted for.

Each source's files are read in delivery order (``discover``), checked and parsed (``parse``),
then renamed to the catalogue's column names, stripped of direct identifiers, pseudonymised
(every registration number becomes a citizen key) and given their lineage. Per file, rows read =
rows accepted + rows quarantined, and the ledger records it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from lakehouse.pseudonym import pseudonymise
from lakehouse.schema import Table
from pipelines.ingest.deliveries import DeliveredFile, discover, file_sha256
from pipelines.ingest.parse import (
    EMPTY_FILE,
    Parsed,
    Quarantined,
    is_quiet,
    joined,
    ledger_row,
    lineage,
    parse_csv_pieces,
    parse_jsonl,
    quarantine_frame,
)


@dataclass(frozen=True)
class Layout:
    """One kind of delivered file: which files (by name prefix), the bronze table they feed and
    the header the source agreed to send."""

    prefix: str
    table: str
    headers: tuple[str, ...]


@dataclass
class Batch:
    """Everything one source delivered for one run: bronze rows per table, quarantine records
    and ledger rows, ready to be written.

    A file's bronze rows are kept in memory, or with ``spill`` set, in a Parquet file in that
    folder as soon as the file is parsed (``add``): a batch of a city's month then holds one
    piece of a file's rows at a time, and a table is streamed from its files (``rows``), even
    while the parse is still adding them.
    """

    source: str
    periods: list[str]
    tables: dict[str, list[pl.DataFrame]] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    spill: Path | None = None
    spilled: dict[str, list[Path]] = field(default_factory=dict)
    # Tables whose every file has been parsed; a parse that failed (``abort``). Guarded by
    # ``_changed``, which ``rows`` waits on.
    closed: set[str] = field(default_factory=set)
    _failed: BaseException | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, table: str, frame: pl.DataFrame) -> None:
        """Keep one file's bronze rows for ``table`` until the batch is written."""
        if self.spill is None:
            self.tables.setdefault(table, []).append(frame)
            return
        parts = self.spilled.setdefault(table, [])
        path = self.spill / f"{table}-{len(parts):05d}.parquet"
        # Read back once, by ``rows``: the fastest codec, not the smallest file.
        catalog_table(table).conform(frame).write_parquet(path, compression="lz4")
        with self._changed:
            parts.append(path)
            self._changed.notify_all()

    def close(self, table: str) -> None:
        """Every file of ``table`` has been parsed: no more rows will be added to it."""
        with self._changed:
            self.closed.add(table)
            self._changed.notify_all()

    def abort(self, error: BaseException) -> None:
        """The parse failed: a table being streamed (``rows``) fails with it, not waiting."""
        with self._changed:
            self._failed = error
            self._changed.notify_all()

    def rows(self, table: str) -> Iterator[pa.RecordBatch]:
        """A spilled table's rows, in the catalogue's Arrow types, file by file as the parse
        spills them, until the table is closed (``close``). Raises when the parse failed."""
        schema = delta.arrow_schema(table)
        done = 0
        while True:
            with self._changed:
                files = self.spilled.setdefault(table, [])
                while done == len(files) and table not in self.closed and self._failed is None:
                    self._changed.wait()
                if self._failed is not None:
                    raise RuntimeError(f"{table}: the batch's parse failed") from self._failed
                if done == len(files):
                    return
                path = files[done]
            done += 1
            for batch in pq.ParquetFile(path).iter_batches():
                yield batch.cast(schema)

    def frame(self, table: str) -> pl.DataFrame:
        """One bronze table's rows from this batch (empty with its schema when none)."""
        spec = catalog_table(table)
        if self.spilled.get(table):
            return pl.read_parquet(self.spilled[table])
        frames = self.tables.get(table, [])
        return pl.concat(frames) if frames else pl.DataFrame(schema=spec.polars_schema())


def seen_checksums(source: str, excluding: list[str]) -> dict[str, str]:
    """SHA-256 -> file of everything this source had ingested, outside the periods being
    (re)processed, so a file delivered twice is recognised whenever it comes."""
    ledger = lake.frame(
        "bronze.deliveries",
        (pl.col("source") == source)
        & (pl.col("status") == "ingested")
        & ~pl.col("period").is_in(excluding),
    )
    return dict(zip(ledger["sha256"].to_list(), ledger["file"].to_list(), strict=True))


@dataclass
class QuietFiles:
    """Duplicate detection for quiet days' exports (``parse.is_quiet``).

    A device that measured nobody exports a header (or nothing) every such day, so the bytes of
    its quiet files are alike from day to day: only an earlier quiet file of the same name and
    bytes (the same day re-sent) is a duplicate of one. Files with rows are checked by checksum
    against everything seen, as usual.
    """

    earlier: dict[tuple[str, str], str] = field(default_factory=dict)

    def scope(self, f: DeliveredFile, seen: dict[str, str]) -> dict[str, str]:
        """The checksums ``f`` is a duplicate of if it matches one (pass it to the parser)."""
        if not is_quiet(f):
            return seen
        sha = file_sha256(f.path)
        earlier = self.earlier.get((f.name, sha))
        return {sha: earlier} if earlier else {}

    def passed(self, f: DeliveredFile, parsed: Parsed) -> Parsed:
        """Remember a quiet file that passed its checks; an empty JSON Lines file that declares
        no rows is a quiet day (no events), not an ``empty_file`` fault."""
        if not is_quiet(f):
            return parsed
        reasons = [q.reason for q in parsed.quarantined]
        if parsed.status == "rejected" and reasons == [EMPTY_FILE]:
            parsed = Parsed(f, pl.DataFrame(schema={"_line": pl.Int64}), [], 0)
        if parsed.status == "ingested":
            self.earlier[(f.name, file_sha256(f.path))] = f.rel
        return parsed


def delivered(root: Path, source: str, periods: list[str]) -> list[DeliveredFile]:
    """Every file ``source`` delivered for ``periods``, oldest delivery first, from one pass
    over its manifests (a daily source's range run would otherwise read every manifest once
    per day of the range)."""
    wanted = set(periods)
    return [f for f in discover(root, source) if f.period in wanted]


def to_bronze(rows: pl.DataFrame, spec: Table, f: DeliveredFile) -> pl.DataFrame:
    """Rows with the delivered headers -> the bronze table's columns: renamed, pseudonymised
    (columns declared ``pseudonym`` hash their source column), lineage added; columns the table
    does not declare (direct identifiers) are dropped here."""
    columns: list[pl.Expr] = []
    for c in spec.columns:
        if c.name.startswith("_"):
            continue
        if c.personal == "pseudonym":
            source = rows[c.header] if c.header in rows.columns else pl.Series([None] * rows.height)
            columns.append(pl.lit(pseudonymise(source.cast(pl.Utf8))).alias(c.name))
        else:
            columns.append(pl.col(c.header).alias(c.name))
    out = rows.select(*columns, "_line")
    return lineage(out, f)


def ingest_csv(
    root: Path,
    source: str,
    layouts: list[Layout],
    periods: list[str],
    prepare: Callable[[pl.DataFrame, DeliveredFile, Layout], pl.DataFrame] | None = None,
    *,
    quiet_days: bool = False,
    spill: Path | None = None,
    ready: Callable[[Batch, str], None] | None = None,
) -> Batch:
    """Read every delimited file ``source`` delivered for ``periods`` into a batch.

    Args:
        root: The drop folder.
        source: The source (first folder level).
        layouts: The kinds of file it sends.
        periods: The periods to ingest (a pipeline partition, or every period).
        prepare: Optional per-file step on the parsed text rows before the bronze boundary (to
            derive a column, or to take identities away to the vault).
        quiet_days: The source exports daily, header-only files on days with no rows; those are
            told apart by name as well as bytes (``QuietFiles``).
        spill: A folder for each file's bronze rows once parsed (``Batch.add``), so a large
            delivery is never held whole in memory; the caller removes it after writing.
        ready: Told each table as its first file is about to be parsed; with ``spill``, the
            table can be written meanwhile, from its rows as they are spilled
            (``BatchWriter.start``). Tables with no file are never told.
    """
    batch = Batch(source, periods, spill=spill)
    seen = seen_checksums(source, periods)
    quiet = QuietFiles()
    files = [
        (f, layout)
        for f in delivered(root, source, periods)
        if (layout := next((x for x in layouts if f.name.startswith(x.prefix)), None))
    ]  # a file no layout names is one this pipeline does not read (documented in the layouts)
    first = {layout.table: i for i, (_, layout) in reversed(list(enumerate(files)))}
    last = {layout.table: i for i, (_, layout) in enumerate(files)}
    try:
        for i, (f, layout) in enumerate(files):
            if ready is not None and first[layout.table] == i:
                ready(batch, layout.table)
            _ingest_file(batch, f, layout, quiet if quiet_days else None, seen, prepare)
            if last[layout.table] == i:
                batch.close(layout.table)
    except BaseException as error:
        batch.abort(error)
        raise
    return batch


def _ingest_file(
    batch: Batch,
    f: DeliveredFile,
    layout: Layout,
    quiet: QuietFiles | None,
    seen: dict[str, str],
    prepare: Callable[[pl.DataFrame, DeliveredFile, Layout], pl.DataFrame] | None,
) -> None:
    """One delivered file into ``batch``: its rows, its quarantine records, its ledger row."""
    scope = quiet.scope(f, seen) if quiet is not None else seen
    accepted = 0
    pieces: list[Parsed] = []
    # A large file comes in pieces (``parse_csv_pieces``): each piece's rows cross the
    # bronze boundary and are kept (``Batch.add``) before the next is parsed.
    for piece in parse_csv_pieces(f, layout.table, layout.headers, scope):
        parsed = quiet.passed(f, piece) if quiet is not None else piece
        if parsed.status == "ingested" and parsed.rows.height:
            rows = prepare(parsed.rows, f, layout) if prepare else parsed.rows
            frame = to_bronze(rows, catalog_table(layout.table), f)
            del rows  # the text rows are not needed past the bronze boundary
            parsed.rows = parsed.rows.clear()
            batch.add(layout.table, frame)
            accepted += frame.height
            del frame
        pieces.append(parsed)
    whole = joined(pieces)
    batch.quarantined += whole.quarantined
    batch.ledger.append(ledger_row(whole, accepted))


def ingest_jsonl(
    root: Path,
    source: str,
    table: str,
    required: tuple[str, ...],
    periods: list[str],
    fields: Callable[[dict[str, Any]], dict[str, str | None]],
) -> Batch:
    """Read every JSON Lines file ``source`` delivered for ``periods`` into a batch (the JSON
    counterpart of ``ingest_csv``; empty files of days with nothing to report are quiet days).

    Args:
        root: The drop folder.
        source: The source (``centre/emg``, ``programme/app_events``).
        table: The bronze table every file feeds.
        required: Keys every object must hold; a line without them is quarantined
            (``malformed_row``).
        periods: The periods to ingest.
        fields: One object -> its text values by the table's delivered headers (nested parts as
            JSON). Keys it does not return never reach bronze; headers of columns declared
            ``pseudonym`` are hashed to citizen keys by ``to_bronze``.
    """
    batch = Batch(source, periods)
    seen = seen_checksums(source, periods)
    quiet = QuietFiles()
    spec = catalog_table(table)
    headers = {c.header: pl.Utf8 for c in spec.columns if not c.name.startswith("_")}
    for f in delivered(root, source, periods):
        if f.format != "jsonl":
            continue  # a file this pipeline does not read
        parsed, objects = parse_jsonl(f, table, required, quiet.scope(f, seen))
        parsed = quiet.passed(f, parsed)
        accepted = 0
        if parsed.status == "ingested" and objects:
            rows = pl.DataFrame([fields(o) for o in objects], schema=headers)
            frame = to_bronze(rows.with_columns(parsed.rows["_line"]), spec, f)
            batch.add(table, frame)
            accepted = frame.height
        batch.quarantined += parsed.quarantined
        batch.ledger.append(ledger_row(parsed, accepted))
    return batch


def _in(column: str, values: list[str]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def write_table(batch: Batch, name: str) -> int:
    """Replace one bronze table's rows of the batch's periods with the batch's: rows written.
    A spilled batch's table (``Batch.spill``) is streamed from its files as they are spilled
    (``Batch.rows``), so it may be written while its files are still being parsed."""
    window = _in("_period", batch.periods)
    if batch.spill is not None:
        schema = delta.arrow_schema(name)
        stream = lambda: pa.RecordBatchReader.from_batches(schema, batch.rows(name))  # noqa: E731
        return delta.replace_streamed(name, stream, window).rows
    return delta.replace(name, batch.frame(name), window).rows


class BatchWriter:
    """Writes a batch's bronze tables, each in a thread of its own, then the ledger and the
    quarantine (``finish``). Given to ``ingest_csv`` as ``ready``, ``start`` begins writing a
    spilled table as its first file is parsed, streaming its pieces as they are spilled.

    Each table is its own commit: delta-rs encodes and writes a table without holding the GIL
    (about one core for one table's Parquet encoding), while the parse holds the other decoding
    and checking the text, so a table's write costs little beyond its parse. The claims and
    pharmacy bronze of the city's month, against its floor in the same rounds: 2.1x with the
    tables written after the parse, 1.8-2.2x with each begun after its last file, 1.7-1.9x
    streamed (docs/performance.md). The ledger waits for the tables: a file is recorded as
    ingested only once its rows are committed.
    """

    def __init__(self, tables: list[str]) -> None:
        self.tables = tables
        self._pool = ThreadPoolExecutor(max(1, len(tables)), thread_name_prefix="bronze-write")
        self._started: dict[str, Future[int]] = {}
        self._batches: list[Batch] = []

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if error is not None:  # a table still streaming fails instead of waiting for rows
            for batch in self._batches:
                batch.abort(error)
        self._pool.shutdown(wait=True)

    def start(self, batch: Batch, name: str) -> None:
        """Begin writing table ``name`` of ``batch``: at once from its rows as they are
        spilled (a spilled batch), or once the table is closed (a batch held in memory is
        written as it stands, so not before: ``finish`` starts it)."""
        if batch.spill is None and name not in batch.closed:
            return
        if name in self.tables and name not in self._started:
            self._batches.append(batch)
            self._started[name] = self._pool.submit(write_table, batch, name)

    def finish(self, batch: Batch) -> dict[str, int]:
        """The tables not started yet, then the ledger and the quarantine, each replacing exactly
        the batch's periods for its source (so a rerun gives identical tables): rows written
        per table, and the quarantine records written (``quarantine``)."""
        for name in self.tables:
            batch.close(name)  # the parse is done: no table waits for more rows
            self.start(batch, name)
        ledger = pl.DataFrame(
            batch.ledger, schema=catalog_table("bronze.deliveries").polars_schema()
        )
        if batch.ledger:
            ledger = ledger.with_columns(pl.col("delivered_at").dt.convert_time_zone("UTC"))
        own = f"source = '{batch.source}' AND {_in('period', batch.periods)}"
        written = {name: self._started.pop(name).result() for name in self.tables}
        ledger_written = self._pool.submit(delta.replace, "bronze.deliveries", ledger, own)
        write_quarantine("bronze", batch.source, batch.periods, batch.quarantined)
        ledger_written.result()
        return written | {"quarantine": len(batch.quarantined)}


def write_batch(batch: Batch, tables: list[str]) -> dict[str, int]:
    """Write a batch: each bronze table (one thread each), then the ledger and the quarantine
    (``BatchWriter``, for a batch already parsed)."""
    with BatchWriter(tables) as writer:
        return writer.finish(batch)


def write_quarantine(
    stage: str, source: str, periods: list[str], records: list[Quarantined]
) -> int:
    """Replace the quarantine records of one stage, source and set of periods."""
    predicate = f"stage = '{stage}' AND source = '{source}' AND {_in('period', periods)}"
    delta.replace("quarantine.records", quarantine_frame(records), predicate)
    return len(records)
