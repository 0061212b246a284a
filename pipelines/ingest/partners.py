"""A partner's OMOP extract into bronze: one file per CDM table, read as delivered.

A partner delivers ``partners/<partner>/<delivery>/`` with a ``delivery.json`` like every other
source, one CSV or Parquet file per CDM table named by the table in upper or lower case
(``PERSON.csv``, ``visit_occurrence.parquet``), and ``linkage.csv`` (``person_id,token``). Each
file is checked like the other sources' (checksum, duplicate, encoding, malformed lines:
``pipelines.ingest.parse``); its header must name fields of its table (any case, any order, the
optional ones may be left out) and hold every required one, or the file is quarantined whole as
``schema_drift``. A Parquet file's values are turned into text (dates as ``YYYY-MM-DD``), so
bronze keeps every delivered field as text whatever the format. Tables the platform does not use
(the vocabulary, cost, notes...) are written to the ledger as ``skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from lakehouse.catalog import table as catalog_table
from lakehouse.catalog.partners import DROPPED, USED
from lakehouse.omop import spec
from pipelines.ingest.deliveries import DeliveredFile, discover, file_sha256
from pipelines.ingest.parse import (
    CHECKSUM_MISMATCH,
    DUPLICATE_DELIVERY,
    SCHEMA_DRIFT,
    Parsed,
    Quarantined,
    ledger_row,
    lineage,
    parse_csv,
)

ROOT: Final = "partners"
LINKAGE: Final = "linkage"
LINKAGE_FIELDS: Final = ("person_id", "token")
SKIPPED: Final = "skipped"
UNREADABLE: Final = "unreadable_file"


def source(partner: str) -> str:
    """The source name of a partner's deliveries (its folder under the drop folder)."""
    return f"{ROOT}/{partner}"


def partners(root: Path) -> list[str]:
    """Every partner with a folder in the drop folder, sorted."""
    folder = root / ROOT
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def table_of(f: DeliveredFile) -> str:
    """The CDM table a delivered file holds, by its name (``PERSON.csv`` -> ``person``)."""
    return Path(f.name).stem.lower()


@dataclass
class PartnerBatch:
    """One partner's deliveries as bronze rows, linkage rows, quarantine and ledger rows."""

    partner: str
    periods: list[str] = field(default_factory=list)
    tables: dict[str, list[pl.DataFrame]] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)

    def frame(self, table: str) -> pl.DataFrame:
        """One bronze table's rows of this batch (empty with its schema when none)."""
        frames = self.tables.get(table, [])
        schema = catalog_table(table).polars_schema()
        return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def _whole(f: DeliveredFile, table: str, reason: str, message: str, rows: int) -> Parsed:
    record = Quarantined(
        "bronze", f.source, table, f.period, f.delivery_id, f.rel, None, None, reason, message,
        None, rows,
    )  # fmt: skip
    return Parsed(f, pl.DataFrame(), [record], rows, status="rejected")


def _checked_header(
    f: DeliveredFile, table: str, names: list[str], fields: tuple[str, ...], required: set[str]
) -> Parsed | None:
    """A whole-file rejection when the header is not the table's fields, else None."""
    lower = [n.strip().lower() for n in names]
    unknown = [n for n in lower if n not in fields]
    missing = sorted(required - set(lower))
    doubled = sorted({n for n in lower if lower.count(n) > 1})
    if unknown or missing or doubled:
        message = (
            f"header is not {table}'s fields: unknown {unknown}, missing required {missing}, "
            f"repeated {doubled}"
        )
        return _whole(f, table, SCHEMA_DRIFT, message, f.rows)
    return None


def _csv_header(f: DeliveredFile) -> list[str]:
    """The header line's names (as text; a file that does not decode yields nothing, and the
    parser quarantines it for its encoding)."""
    try:
        with f.path.open(encoding=f.encoding, newline="") as fh:
            line = fh.readline()
    except (UnicodeDecodeError, LookupError):
        return []
    return line.lstrip("\ufeff").rstrip("\r\n").split(f.delimiter)


def _text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text: dates and times in ISO form, as a CSV export would hold them."""
    out = []
    for name, dtype in frame.schema.items():
        c = pl.col(name)
        if dtype == pl.Date:
            out.append(c.dt.strftime("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime):
            out.append(c.dt.strftime("%Y-%m-%d %H:%M:%S"))
        else:
            out.append(c.cast(pl.Utf8))
    return frame.select(out)


def _parquet(f: DeliveredFile, table: str, seen: dict[str, str]) -> Parsed:
    """A Parquet file: checksum and duplicate as for text files, then its rows as text."""
    actual = file_sha256(f.path)
    if f.sha256 and actual != f.sha256:
        return _whole(f, table, CHECKSUM_MISMATCH, "SHA-256 differs from the manifest", f.rows)
    if actual in seen:
        parsed = _whole(f, table, DUPLICATE_DELIVERY, f"same bytes as {seen[actual]}", f.rows)
        parsed.status, parsed.duplicate_of = "duplicate", seen[actual]
        return parsed
    try:
        rows = pl.read_parquet(f.path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        return _whole(f, table, UNREADABLE, f"not a readable Parquet file: {exc}"[:300], f.rows)
    seen[actual] = f.rel
    rows = (
        _text(rows).with_row_index("_line", offset=1).with_columns(pl.col("_line").cast(pl.Int64))
    )
    return Parsed(f, rows, [], rows.height)


def fields(table: str) -> tuple[tuple[str, ...], set[str]]:
    """A used table's fields (or the linkage file's) and those it must hold."""
    if table == LINKAGE:
        return LINKAGE_FIELDS, set(LINKAGE_FIELDS)
    declared = spec.fields(table)
    return tuple(x.name for x in declared), {x.name for x in declared if x.required}


def read_file(f: DeliveredFile, table: str, seen: dict[str, str]) -> Parsed:
    """One delivered file of a used table (or the linkage file) as text rows, lower-case field
    names and ``_line``, or its quarantine records."""
    target = f"bronze.partner_{table}"
    names_of, required = fields(table)
    if f.format == "parquet":
        parsed = _parquet(f, target, seen)
        names = parsed.rows.columns[1:] if parsed.status == "ingested" else []
    else:
        names = _csv_header(f)
        parsed = (
            parse_csv(f, target, tuple(names), seen) if names else parse_csv(f, target, (), seen)
        )
    if parsed.status != "ingested":
        return parsed
    rejected = _checked_header(f, target, names, names_of, required)
    if rejected is not None:
        return rejected
    renamed = parsed.rows.rename({n: n.strip().lower() for n in names})
    return Parsed(f, renamed, parsed.quarantined, parsed.rows_read)


def _bronze(rows: pl.DataFrame, table: str, partner: str, f: DeliveredFile) -> pl.DataFrame:
    """Parsed rows -> the bronze table's columns: the partner, every field of the table as text
    (a field the file left out is null, and so is a partner's own patient number: ``DROPPED``),
    lineage."""
    names = fields(table)[0]
    frame = rows.select(
        pl.lit(partner).alias("partner"),
        *(
            (pl.col(n) if n in rows.columns and n not in DROPPED else pl.lit(None, pl.Utf8))
            .cast(pl.Utf8)
            .alias(n)
            for n in names
        ),
        "_line",
    )
    return lineage(frame, f).select(catalog_table(f"bronze.partner_{table}").names)


def ingest(root: Path, partner: str) -> PartnerBatch:
    """Every delivery of ``partner`` into a batch, oldest first (each run reads them all)."""
    batch = PartnerBatch(partner)
    seen: dict[str, str] = {}
    for f in discover(root, source(partner)):
        if f.period not in batch.periods:
            batch.periods.append(f.period)
        table = table_of(f)
        if table != LINKAGE and table not in USED:
            skipped = Parsed(f, pl.DataFrame(), [], 0, status=SKIPPED)
            batch.ledger.append(ledger_row(skipped, 0))
            continue
        parsed = read_file(f, table, seen)
        accepted = 0
        if parsed.status == "ingested" and parsed.rows.height:
            frame = _bronze(parsed.rows, table, partner, f)
            batch.tables.setdefault(f"bronze.partner_{table}", []).append(frame)
            accepted = frame.height
        batch.quarantined += parsed.quarantined
        batch.ledger.append(ledger_row(parsed, accepted))
    return batch
