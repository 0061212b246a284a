"""Deliveries: how every non-DICOM source hands its files to the city.

A delivery is one folder, ``<out>/<source>/<delivery_id>/``, holding the data files and a
``delivery.json`` manifest that declares, per file, the encoding, the delimiter, the number of data
rows and the SHA-256. This is how the real feeds announce themselves (HIRA's extracts come with a
layout sheet, device exports with the export log), and it gives the pipelines something to check:
a file whose bytes do not decode in the declared encoding, or whose row count disagrees, is a
delivery fault, not a parsing accident.

Files are written incrementally (chunk by chunk), so a month of claims for the full city never has
to sit in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import polars as pl

from synth.config import KST

MANIFEST = "delivery.json"


class _File:
    """One file of a delivery, written in chunks, counting lines and hashing as it goes."""

    def __init__(
        self,
        path: Path,
        fmt: str,
        encoding: str,
        declared_encoding: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.encoding = encoding
        self.declared_encoding = declared_encoding
        self.extra = dict(extra or {})
        self.lines = 0
        self.header_lines = 0
        self._hash = hashlib.sha256()
        self._size = 0
        self._fh: BinaryIO = path.open("wb")

    def _write_text(self, text: str) -> None:
        self._write_bytes(text.encode(self.encoding))

    def _write_bytes(self, data: bytes) -> None:
        self._hash.update(data)
        self._size += len(data)
        self._fh.write(data)

    def write_lines(self, lines: Iterable[str]) -> int:
        """Append already rendered lines; return the line number of the first one."""
        first = self.lines + 1
        block = list(lines)
        if block:
            self._write_text("\n".join(block) + "\n")
            self.lines += len(block)
        return first

    @property
    def rows(self) -> int:
        """Data rows written so far (physical lines minus the header)."""
        return self.lines - self.header_lines

    def close(self) -> dict[str, Any]:
        self._fh.close()
        return {
            "name": self.path.name,
            "format": self.fmt,
            "encoding": self.declared_encoding,
            "rows": self.rows,
            "bytes": self._size,
            "sha256": self._hash.hexdigest(),
            **self.extra,
        }


class CsvFile(_File):
    """A delimited text file with a header row, as the claims extracts and most devices send."""

    def __init__(
        self,
        path: Path,
        columns: list[str],
        encoding: str,
        declared_encoding: str,
        delimiter: str = ",",
    ) -> None:
        super().__init__(path, "csv", encoding, declared_encoding, {"delimiter": delimiter})
        self.columns = columns
        self.delimiter = delimiter
        self._write_text(delimiter.join(columns) + "\n")
        self.lines = self.header_lines = 1

    def write_frame(
        self,
        frame: pl.DataFrame,
        edits: Mapping[int, Callable[[str], str]] | None = None,
    ) -> int:
        """Append ``frame``'s rows; return the physical line number of its first row.

        Args:
            frame: Rows with exactly this file's columns, in order.
            edits: Optional row index -> function that rewrites that row's rendered line (see
                ``render_csv``).
        """
        if frame.columns != self.columns:
            raise ValueError(f"{self.path.name}: columns {frame.columns} != {self.columns}")
        return self.write_rendered(
            render_csv(frame, self.encoding, self.delimiter, edits), frame.height
        )

    def write_rendered(self, data: bytes, lines: int) -> int:
        """Append rows already rendered and encoded (in a worker process, say) in this file's
        encoding; return the physical line number of the first of the ``lines`` lines."""
        first = self.lines + 1
        self._write_bytes(data)
        self.lines += lines
        return first


def render_csv(
    frame: pl.DataFrame,
    encoding: str,
    delimiter: str = ",",
    edits: Mapping[int, Callable[[str], str]] | None = None,
) -> bytes:
    """Rows as delimited text without a header, one line per row, encoded.

    Args:
        frame: The rows (no value holds a line break, so row i is line i).
        encoding: The bytes' encoding (Polars writes UTF-8; other encodings are converted).
        delimiter: The field separator.
        edits: Optional row index -> function that rewrites that row's line. Fault injection uses
            it to break a row the way real files break (a lost field, a stray delimiter) while the
            line numbers stay exact.
    """
    if frame.height == 0:
        return b""
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False, separator=delimiter)
    data = buf.getvalue()
    if edits:
        lines = data.split(b"\n")
        for index, edit in edits.items():
            lines[index] = edit(lines[index].decode("utf-8")).encode("utf-8")
        data = b"\n".join(lines)
    if encoding.replace("-", "").lower() != "utf8":
        data = data.decode("utf-8").encode(encoding)
    return data


class JsonLinesFile(_File):
    """One JSON object per line, as the EMG and app-event exports send."""

    def __init__(self, path: Path, encoding: str, declared_encoding: str) -> None:
        super().__init__(path, "jsonl", encoding, declared_encoding)

    def write_records(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append records, one compact JSON object per line; return the first line number."""
        return self.write_lines(
            json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records
        )


class Delivery:
    """One delivery folder and its manifest. Use as a context manager.

    Args:
        root: The output root (``--out``).
        source: The delivering source, also the first folder level (``claims``, ``centre/gait``).
        delivery_id: The folder name inside the source; unique per delivery.
        delivered_at: When the source sent it; a time without a zone is Korean time (KST).
        encoding: The encoding the files are written in and declared as.
        period: What the delivery covers: ``YYYY-MM`` for a month, ``YYYY-MM-DD`` for a day. The
            pipelines partition by it.
        meta: Extra manifest fields, for example the claims period.
    """

    def __init__(
        self,
        root: Path,
        source: str,
        delivery_id: str,
        delivered_at: datetime,
        encoding: str = "utf-8",
        meta: Mapping[str, Any] | None = None,
        *,
        period: str,
    ) -> None:
        self.root = root
        self.source = source
        self.delivery_id = delivery_id
        self.delivered_at = (
            delivered_at if delivered_at.tzinfo else delivered_at.replace(tzinfo=KST)
        )
        self.period = period
        self.encoding = encoding
        self.meta = dict(meta or {})
        self.folder = root / source / delivery_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files: list[_File] = []

    def relpath(self, name: str) -> str:
        """The path of one of this delivery's files relative to the output root."""
        return (self.folder / name).relative_to(self.root).as_posix()

    def csv(
        self,
        name: str,
        columns: list[str],
        encoding: str | None = None,
        declared_encoding: str | None = None,
        delimiter: str = ",",
    ) -> CsvFile:
        """Open a CSV file in this delivery.

        ``declared_encoding`` differs from ``encoding`` only when a fault is being injected on
        purpose: the manifest then lies about the bytes, as real senders sometimes do.
        """
        actual = encoding or self.encoding
        f = CsvFile(self.folder / name, columns, actual, declared_encoding or actual, delimiter)
        self._files.append(f)
        return f

    def jsonl(self, name: str, encoding: str | None = None) -> JsonLinesFile:
        """Open a JSON Lines file in this delivery."""
        actual = encoding or self.encoding
        f = JsonLinesFile(self.folder / name, actual, actual)
        self._files.append(f)
        return f

    def close(self) -> Path:
        """Close every file and write ``delivery.json``."""
        entries = [f.close() for f in self._files]
        doc = {
            "source": self.source,
            "delivery_id": self.delivery_id,
            "delivered_at": self.delivered_at.isoformat(),
            "period": self.period,
            **self.meta,
            "files": sorted(entries, key=lambda e: str(e["name"])),
        }
        target = self.folder / MANIFEST
        target.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return target

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def resend(original: Delivery, delivery_id: str, delivered_at: datetime) -> Path:
    """Send a closed delivery again under a new id, byte for byte, as a sender's retry does.

    Returns the new delivery's folder. Its manifest differs only in id and delivery time, so the
    pipelines must recognise the files by content, not by name.
    """
    target = original.folder.parent / delivery_id
    target.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((original.folder / MANIFEST).read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        shutil.copyfile(original.folder / entry["name"], target / entry["name"])
    manifest["delivery_id"] = delivery_id
    manifest["delivered_at"] = delivered_at.isoformat()
    (target / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return target
