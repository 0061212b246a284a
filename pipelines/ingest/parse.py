"""Reading one delivered file into rows, and turning what cannot be read into quarantine records.

Nothing fails as a traceback in the middle of a run: a file whose bytes are not what its manifest
says (checksum, encoding), whose header is not the layout the source agreed (schema drift), that
is empty, or that repeats an earlier file is quarantined whole with its reason; a line with the
wrong number of fields or with its quotes unclosed or misplaced (RFC 4180), or a JSON line that
does not parse, is quarantined alone. Everything else comes out as text rows with their line
numbers, ready for the bronze boundary.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import polars as pl

from lakehouse.catalog import table as catalog_table
from lakehouse.pseudonym import scrub
from pipelines.ingest.deliveries import DeliveredFile

# Quarantine reason codes. The first six are the fault kinds the synthetic city injects.
MALFORMED_ROW: Final = "malformed_row"
IMPOSSIBLE_DATE: Final = "impossible_date"
UNKNOWN_CODE: Final = "unknown_code"
OUT_OF_RANGE: Final = "out_of_range_value"
DUPLICATE_DELIVERY: Final = "duplicate_delivery"
WRONG_ENCODING: Final = "wrong_encoding"
SCHEMA_DRIFT: Final = "schema_drift"
EMPTY_FILE: Final = "empty_file"
CHECKSUM_MISMATCH: Final = "checksum_mismatch"
MISSING_VALUE: Final = "missing_value"
# A record dated outside the period its delivery covers (a daily export holding another day).
OUTSIDE_PERIOD: Final = "outside_period"
PAYLOAD_LIMIT: Final = 2000


@dataclass
class Quarantined:
    """One quarantine record (see ``quarantine.records`` in the catalogue)."""

    stage: str
    source: str
    table: str
    period: str
    delivery_id: str
    file: str
    line: int | None
    record_key: str | None
    reason: str
    message: str
    payload: str | None
    rows: int


def quarantine_frame(records: list[Quarantined]) -> pl.DataFrame:
    """Records as a frame with ``quarantine.records``' schema; payloads never carry a
    registration number (they are scrubbed to citizen keys)."""
    spec = catalog_table("quarantine.records")
    if not records:
        return pl.DataFrame(schema=spec.polars_schema())
    rows = [asdict(r) for r in records]
    for r in rows:
        if r["payload"] is not None:
            r["payload"] = scrub(r["payload"])[:PAYLOAD_LIMIT]
    return pl.DataFrame(rows, schema=spec.polars_schema())


@dataclass
class Parsed:
    """What came out of one file: its rows (text, with ``_line``), what was quarantined, and
    the accounting the ledger keeps."""

    file: DeliveredFile
    rows: pl.DataFrame
    quarantined: list[Quarantined] = field(default_factory=list)
    rows_read: int = 0
    status: str = "ingested"
    duplicate_of: str | None = None

    @property
    def rows_quarantined(self) -> int:
        return sum(q.rows for q in self.quarantined)


def _record(
    f: DeliveredFile,
    table: str,
    reason: str,
    message: str,
    *,
    line: int | None = None,
    payload: str | None = None,
    rows: int = 1,
    key: str | None = None,
) -> Quarantined:
    return Quarantined(
        "bronze",
        f.source,
        table,
        f.period,
        f.delivery_id,
        f.rel,
        line,
        key,
        reason,
        message,
        payload,
        rows,
    )


def rejected_rows(rows: pl.DataFrame, source: str, table: str) -> list[Quarantined]:
    """Silver-stage quarantine records, one per rejected bronze row.

    Args:
        rows: The rejected rows: the bronze lineage (``_period``, ``_delivery_id``, ``_file``,
            ``_line``) and ``key``, ``reason``, ``message`` and ``payload`` (text) per row. Each
            record is filed in the period of the delivery the row came in, so a partition rerun
            replaces it.
        source: The delivering source (``centre/gait``, ``programme/app_events``).
        table: The bronze table the rows are in.
    """
    return [
        Quarantined(
            "silver",
            source,
            table,
            r["_period"],
            r["_delivery_id"],
            r["_file"],
            r["_line"],
            r["key"],
            r["reason"],
            r["message"],
            r["payload"],
            1,
        )
        for r in rows.iter_rows(named=True)
    ]


def first_failure(rows: pl.DataFrame, checks: list[tuple[pl.Expr, str, pl.Expr]]) -> pl.DataFrame:
    """``rows`` with ``reason`` and ``message`` columns: those of the first check (condition,
    reason code, message) a row fails, in the order given, or null when it passes them all.

    One reason per row keeps the quarantine's accounting exact: a row counts once, under the
    most basic thing wrong with it.
    """
    reason: Any = pl
    message: Any = pl
    for condition, code, text in checks:
        reason = reason.when(condition.fill_null(False)).then(pl.lit(code))
        message = message.when(condition.fill_null(False)).then(text)
    return rows.with_columns(
        reason.otherwise(None).alias("reason"), message.otherwise(None).alias("message")
    )


def _whole(f: DeliveredFile, table: str, reason: str, message: str, rows: int) -> Parsed:
    """The file is quarantined whole; it stands for all the rows it declared or held."""
    empty = pl.DataFrame()
    return Parsed(
        f, empty, [_record(f, table, reason, message, rows=rows)], rows, status="rejected"
    )


def check_file(
    f: DeliveredFile, table: str, seen: dict[str, str]
) -> tuple[Parsed | None, bytes | None]:
    """File-level checks before parsing: checksum, duplicate, empty, encoding.

    Args:
        f: The file.
        table: The bronze table it feeds (for the quarantine record).
        seen: SHA-256 -> file of everything already ingested; updated with this file when it
            passes.

    Returns:
        ``(rejection, None)`` for a file quarantined whole, or ``(None, body)`` to parse: the
        text as UTF-8 bytes without a byte-order mark (a UTF-8 delivery's own bytes, not copied).
    """
    data = f.read_bytes()
    # The hash runs in a thread while this one decodes (hashlib lets go of the GIL on large
    # buffers): the file is read once and both cores work. The checks keep their order.
    with ThreadPoolExecutor(1, thread_name_prefix="sha256") as hasher:
        hashing = hasher.submit(_sha256, data)
        decoded = _decoded(data, f.encoding)
        actual = hashing.result()
    if f.sha256 and actual != f.sha256:
        message = "SHA-256 differs from the manifest"
        return _whole(f, table, CHECKSUM_MISMATCH, message, f.rows), None
    if actual in seen:
        rejected = _whole(f, table, DUPLICATE_DELIVERY, f"same bytes as {seen[actual]}", f.rows)
        rejected.status, rejected.duplicate_of = "duplicate", seen[actual]
        return rejected, None
    if isinstance(decoded, _Undecodable):
        return _whole(f, table, WRONG_ENCODING, decoded.message, f.rows), None
    if decoded.blank:
        return _whole(f, table, EMPTY_FILE, "the file is empty", f.rows), None
    seen[actual] = f.rel
    del data  # a re-encoded file's delivered bytes: only its UTF-8 text is needed from here
    return None, decoded.text().removeprefix(b"\xef\xbb\xbf")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Undecodable:
    message: str


# A file is decoded this many bytes at a time, so its whole text is never held as a Python
# string (up to four bytes a character) beside its bytes.
_DECODE_BYTES: Final = 16 << 20


@dataclass
class _Decoded:
    """A file's text as UTF-8: its own bytes when delivered in UTF-8, or its pieces re-encoded
    (joined by ``text``, once the delivered bytes can go), and whether it is blank."""

    pieces: list[bytes]
    blank: bool

    def text(self) -> bytes:
        body = self.pieces[0] if len(self.pieces) == 1 else b"".join(self.pieces)
        self.pieces = [body]
        return body


def _decoded(data: bytes, encoding: str) -> _Decoded | _Undecodable:
    """A file's text in its declared encoding, decoded ``_DECODE_BYTES`` at a time (a
    character cut at a slice's end is finished by the next); or why it does not decode."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        return _Undecodable(f"declares an unknown encoding {encoding!r}")
    decoder = codec.incrementaldecoder("strict")
    as_delivered = codec.name == "utf-8"
    pieces: list[bytes] = []
    blank = True
    view = memoryview(data)
    for start in range(0, max(len(data), 1), _DECODE_BYTES):
        last = start + _DECODE_BYTES >= len(data)
        # The decoder reports positions within what it was given: the bytes it kept back from
        # the slice before (an unfinished character), then this slice.
        held = len(decoder.getstate()[0])
        try:
            text = decoder.decode(view[start : start + _DECODE_BYTES], final=last)
        except UnicodeDecodeError as exc:
            at = start - held + exc.start
            return _Undecodable(
                f"does not decode as the declared {encoding}: {exc.reason} at byte {max(at, 0)}"
            )
        blank = blank and (not text or text.isspace())
        if not as_delivered:
            pieces.append(text.encode("utf-8"))
    return _Decoded([data] if as_delivered else pieces, blank)


def is_quiet(f: DeliveredFile) -> bool:
    """Whether ``f`` is a quiet day's export: it declares no rows and holds none (nothing at all,
    or only a header). Every quiet export of one device has the same bytes, so for these files
    the same bytes alone do not make a duplicate (``pipelines.ingest.bronze.QuietFiles``)."""
    if f.rows:
        return False
    lines = [line for line in f.read_bytes().splitlines() if line.strip()]
    return len(lines) <= (1 if f.format == "csv" else 0)


# A quoted CSV field ("..." with "" for a quote inside): removed before counting delimiters.
_QUOTED: Final = r'"(?:[^"]|"")*"'


def _well_quoted(delimiter: str) -> str:
    """A line whose quotes are where RFC 4180 allows them: every field is either quoted whole
    or holds no quote. Anything else (text after a closing quote, a quote inside an unquoted
    field) is a line Polars' reader would refuse or split differently than it was counted."""
    d = re.escape(delimiter)
    field_ = f'(?:{_QUOTED}|[^"{d}]*)'
    return f"^{field_}(?:{d}{field_})*$"


def _lines(body: bytes) -> pl.Series:
    """The file's lines (split on LF, a trailing CR dropped, a blank line an empty string, no
    final empty line), split by Polars' multi-threaded CSV reader with NUL as a separator no text
    holds; a file that does hold NUL is split the slower way."""
    if b"\0" in body:
        lines = pl.Series("line", [body.decode("utf-8")]).str.split("\n").explode()
        if lines.len() and lines[-1] == "":
            lines = lines.head(-1)
        return lines.str.strip_suffix("\r")
    read = pl.read_csv(
        body,
        has_header=False,
        new_columns=["line"],
        separator="\0",
        quote_char=None,
        infer_schema=False,
        schema_overrides={"line": pl.Utf8},
    )
    return read["line"].fill_null("")


def _field_counts(data: pl.Series, delimiter: str) -> pl.DataFrame:
    """Per line: how many fields it has (quoted delimiters do not count), whether its quotes
    are balanced and whether they are well placed (``_well_quoted``). Vectorised, so a city's
    month of claims is not split in Python.

    An empty quoted field between delimiters (``,"",``, in most claims lines) is first made an
    empty field: that removes two adjacent quotes, which changes neither which delimiters are
    quoted nor whether the line is well formed. Only lines still holding a quote pay for the
    regular expressions.
    """
    empty = f'{delimiter}""{delimiter}'
    # Twice: in ,"","", the first replacement consumes the delimiter the second one starts with.
    plain = data.str.replace_all(empty, delimiter * 2, literal=True)
    plain = plain.str.replace_all(empty, delimiter * 2, literal=True)
    quotes = plain.str.count_matches('"', literal=True)
    well_placed = pl.repeat(True, data.len(), dtype=pl.Boolean, eager=True)
    quoted = (quotes > 0).arg_true()
    if quoted.len():
        lines = plain.gather(quoted)
        well_placed.scatter(quoted, lines.str.contains(_well_quoted(delimiter)))
        plain.scatter(quoted, lines.str.replace_all(_QUOTED, ""))  # in place: plain is ours
    return pl.DataFrame(
        {
            "fields": plain.str.count_matches(delimiter, literal=True) + 1,
            "balanced": quotes % 2 == 0,
            "well_placed": well_placed,
        }
    )


# A delivered file larger than this is parsed in pieces of about this size, cut at line ends. A
# city month's largest file (the pharmacy lines, 570 MB) parsed whole held its text and its rows
# several times over at once; in pieces, only the file's text and one piece's rows are held.
CHUNK_BYTES: Final = 64 << 20


def parse_csv(
    f: DeliveredFile, table: str, headers: tuple[str, ...], seen: dict[str, str]
) -> Parsed:
    """Parse a delimited file into text rows with their line numbers.

    Lines are counted and split in Polars: a line with the layout's number of fields (quoted
    delimiters aside) is parsed by Polars' CSV reader, and one without it, or with an unclosed
    quote, is quarantined as ``malformed_row`` with its line number. Empty fields stay empty
    strings: bronze keeps what was delivered. The whole file's rows at once: the pipelines take
    them piece by piece (``parse_csv_pieces``).

    Args:
        f: The file.
        table: The bronze table it feeds.
        headers: The layout the source agreed to send, in order.
        seen: Checksums already ingested (see ``check_file``).
    """
    return joined(list(parse_csv_pieces(f, table, headers, seen)))


def parse_csv_pieces(
    f: DeliveredFile, table: str, headers: tuple[str, ...], seen: dict[str, str]
) -> Iterator[Parsed]:
    """``parse_csv`` in pieces of about ``CHUNK_BYTES``: the file is checked whole
    (``check_file``) and its header once, then its lines are parsed a piece at a time, each
    piece with its rows (numbered by the file's lines), its quarantined lines and the lines it
    read. A file rejected whole is one piece; ``joined`` gives the file's ``Parsed``."""
    rejected, body = check_file(f, table, seen)
    if rejected is not None or body is None:
        yield rejected or _whole(f, table, EMPTY_FILE, "the file is empty", f.rows)
        return
    end = body.find(b"\n")
    if len(body) <= CHUNK_BYTES or end < 0:
        yield _parse_body(f, table, headers, body)
        return
    header = body[: end + 1]
    checked = _parse_body(f, table, headers, header)
    if checked.status != "ingested":  # schema drift: the whole file, every line counted
        lines = body.count(b"\n") + (not body.endswith(b"\n")) - 1
        yield _whole(f, table, checked.quarantined[0].reason, checked.quarantined[0].message, lines)
        return
    before, start = 0, end + 1
    while start < len(body):
        stop = body.find(b"\n", start + CHUNK_BYTES)
        stop = len(body) if stop < 0 else stop + 1
        piece = _parse_body(f, table, headers, header + body[start:stop])
        yield _shifted(piece, before)
        before, start = before + piece.rows_read, stop


def joined(pieces: list[Parsed]) -> Parsed:
    """One file's pieces (``parse_csv_pieces``) as one ``Parsed``."""
    if len(pieces) == 1:
        return pieces[0]
    return Parsed(
        pieces[0].file,
        pl.concat([p.rows for p in pieces]),
        [q for p in pieces for q in p.quarantined],
        sum(p.rows_read for p in pieces),
    )


def _shifted(piece: Parsed, before: int) -> Parsed:
    """A piece's line numbers as the file's: ``before`` data lines came before it."""
    if not before:
        return piece
    piece.rows = piece.rows.with_columns(pl.col("_line") + before)
    for q in piece.quarantined:
        q.line = None if q.line is None else q.line + before
    return piece


def _parse_body(f: DeliveredFile, table: str, headers: tuple[str, ...], body: bytes) -> Parsed:
    """``parse_csv`` of a checked file's text (UTF-8, header line first)."""
    clean = _well_formed(f, body, headers)
    if clean is not None:
        return clean
    lines = _lines(body)
    data = lines.slice(1)
    header = next(csv.reader([lines[0]], delimiter=f.delimiter))
    if tuple(header) != headers:
        missing = [h for h in headers if h not in header]
        extra = [h for h in header if h not in headers]
        message = f"header differs from the agreed layout: missing {missing}, unexpected {extra}"
        if not missing and not extra:
            message = "columns are in a different order than the agreed layout"
        return _whole(f, table, SCHEMA_DRIFT, message, data.len())
    counts = _field_counts(data, f.delimiter).with_row_index("i")
    ok = (pl.col("fields") == len(headers)) & pl.col("balanced") & pl.col("well_placed")
    bad = [
        _malformed(f, table, data[i], i + 2, n, len(headers), balanced, well_placed)
        for i, n, balanced, well_placed in counts.filter(~ok).iter_rows()
    ]
    good = counts.filter(ok)["i"]
    # Every line well formed (the usual case): read the delivered text as it is, in one pass.
    whole = None if bad else body
    rows = _read_fields(data.gather(good), f.delimiter, headers, whole)
    return Parsed(f, rows.with_columns((good.cast(pl.Int64) + 2).alias("_line")), bad, data.len())


def _well_formed(f: DeliveredFile, body: bytes, headers: tuple[str, ...]) -> Parsed | None:
    """The usual file, proved well formed and read in one pass; None when that cannot be
    shown, and the file is then checked line by line (``parse_csv``), which finds the same.

    The proof: once every empty quoted field between delimiters (``,"",``) is made an empty
    field, no quote is left, so every line's fields are its delimiters plus one. The header is
    the agreed one; no line has more than its fields (Polars' reader refuses the file then);
    and the delimiters number exactly the header's per line, so no line has fewer. Read
    without quoting, the lines give the rows the quoted file gives.
    """
    delimiter = f.delimiter.encode("utf-8")
    empty = delimiter + b'""' + delimiter
    # Twice: in ,"","", the first replacement consumes the delimiter the second one starts with.
    plain = body.replace(empty, delimiter * 2).replace(empty, delimiter * 2)
    end = plain.find(b"\n")
    if b'"' in plain or end < 0:
        return None
    lines = plain.count(b"\n") + (not plain.endswith(b"\n"))
    first = plain[:end].decode("utf-8").removesuffix("\r")
    header = next(csv.reader([first], delimiter=f.delimiter))
    if tuple(header) != headers or plain.count(delimiter) != (len(headers) - 1) * lines:
        return None
    try:
        rows = pl.read_csv(
            plain,
            has_header=True,
            new_columns=list(headers),
            separator=f.delimiter,
            quote_char=None,
            infer_schema=False,
            empty_string_is_null=False,
            schema_overrides=dict.fromkeys(headers, pl.Utf8),
        )
    except pl.exceptions.ComputeError:  # a line with more fields than the header
        return None
    if rows.height != lines - 1:
        return None
    numbers = pl.int_range(2, rows.height + 2, dtype=pl.Int64, eager=True).alias("_line")
    return Parsed(f, rows.with_columns(numbers), [], rows.height)


def _read_fields(
    lines: pl.Series, delimiter: str, headers: tuple[str, ...], whole: bytes | None = None
) -> pl.DataFrame:
    """Well-formed lines (each with exactly ``headers``' fields) -> one text column per header.

    ``whole`` is the file's text (header line first) when every line is well formed: reading it
    directly gives the same rows without joining the lines again.
    """
    if not lines.len():
        return pl.DataFrame(schema=dict.fromkeys(headers, pl.Utf8))
    body = whole if whole is not None else lines.str.join("\n").item().encode("utf-8") + b"\n"
    return pl.read_csv(
        body,
        has_header=whole is not None,
        new_columns=list(headers),
        separator=delimiter,
        infer_schema=False,
        empty_string_is_null=False,
        schema_overrides=dict.fromkeys(headers, pl.Utf8),
    )


def _malformed(
    f: DeliveredFile,
    table: str,
    line: str,
    number: int,
    fields: int,
    wanted: int,
    balanced: bool,
    well_placed: bool,
) -> Quarantined:
    """The quarantine record of one line that cannot be a row, under the most basic thing wrong
    with it (a field count means little while the quotes are wrong)."""
    row = next(csv.reader([line], delimiter=f.delimiter), [])
    message = f"{fields} fields where the layout has {wanted}"
    if not well_placed:
        message = "a quote is misplaced: text after a closing quote, or inside an unquoted field"
    if not balanced:
        message = "a quoted field is not closed"
    return _record(
        f, table, MALFORMED_ROW, message, line=number, payload=line, key=row[0] if row else None
    )


def parse_jsonl(
    f: DeliveredFile, table: str, required: tuple[str, ...], seen: dict[str, str]
) -> tuple[Parsed, list[dict[str, Any]]]:
    """Parse a JSON Lines file: every line must be an object holding ``required`` keys.

    Returns:
        The accounting (its ``rows`` frame holds only ``_line``) and the parsed objects, in the
        same order.
    """
    rejected, body = check_file(f, table, seen)
    if rejected is not None or body is None:
        return rejected or _whole(f, table, EMPTY_FILE, "the file is empty", f.rows), []
    lines = body.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    objects: list[dict[str, Any]] = []
    numbers: list[int] = []
    bad: list[Quarantined] = []
    for i, line in enumerate(lines):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(
                _record(f, table, MALFORMED_ROW, f"not JSON: {exc.msg}", line=i + 1, payload=line)
            )
            continue
        if not isinstance(obj, dict) or any(k not in obj for k in required):
            missing = [k for k in required if not isinstance(obj, dict) or k not in obj]
            bad.append(
                _record(
                    f, table, MALFORMED_ROW, f"missing fields {missing}", line=i + 1, payload=line
                )
            )
            continue
        objects.append(obj)
        numbers.append(i + 1)
    frame = pl.DataFrame({"_line": numbers}, schema={"_line": pl.Int64})
    return Parsed(f, frame, bad, len(lines)), objects


def lineage(frame: pl.DataFrame, f: DeliveredFile) -> pl.DataFrame:
    """Add the bronze lineage columns to rows parsed from ``f``."""
    return frame.with_columns(
        pl.lit(f.delivery_id).alias("_delivery_id"),
        pl.lit(f.rel).alias("_file"),
        pl.lit(f.delivered_at).dt.convert_time_zone("UTC").alias("_delivered_at"),
        pl.lit(f.sha256).alias("_sha256"),
        pl.lit(f.period).alias("_period"),
    )


def ledger_row(p: Parsed, accepted: int) -> dict[str, Any]:
    """The ingestion ledger's row for one file (``bronze.deliveries``)."""
    f = p.file
    return {
        "source": f.source,
        "delivery_id": f.delivery_id,
        "file": f.rel,
        "sha256": f.sha256,
        "period": f.period,
        "delivered_at": f.delivered_at,
        "rows_declared": f.rows,
        "rows_read": p.rows_read,
        "rows_accepted": accepted,
        "rows_quarantined": p.rows_quarantined,
        "status": p.status,
        "duplicate_of": p.duplicate_of,
    }
