"""Partner OMOP extracts and a tiny resident register written by the tests themselves (not by
the generator), so the partners' pipeline is held to files built independently of it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import polars as pl

RESIDENT = ("RRN", "NAME", "SEX_CD", "BIRTH_DT", "SGG_CD", "EMD_CD", "ADDR")


def _entry(path: Path, rows: int, fmt: str) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": path.name,
        "format": fmt,
        "rows": rows,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    if fmt == "csv":
        entry |= {"encoding": "utf-8", "delimiter": ","}
    return entry


def manifest(folder: Path, source: str, period: str, at: str, entries: list[dict[str, object]],
             **extra: object) -> None:  # fmt: skip
    """Write ``delivery.json`` for the files of one delivery folder."""
    doc = {
        "source": source,
        "delivery_id": folder.name,
        "delivered_at": at,
        "period": period,
        **extra,
        "files": entries,
    }
    (folder / "delivery.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def register(sources: Path, people: list[tuple[str, str, str]]) -> None:
    """A first-day resident register of ``people`` (registration number, name, sex)."""
    folder = sources / "registry" / "citizens" / "test-2025-01"
    folder.mkdir(parents=True)
    rows = pl.DataFrame(
        [
            (rrn, name, sex, "19" + rrn[:6], "24010", "2401051000", "광주 동구")
            for rrn, name, sex in people
        ],
        schema=list(RESIDENT),
        orient="row",
    )
    path = folder / "residents_202501.csv"
    rows.write_csv(path)
    manifest(folder, "registry/citizens", "2025-01", "2025-01-02T09:00:00+09:00",
             [_entry(path, rows.height, "csv")])  # fmt: skip


def extract(
    sources: Path,
    partner: str,
    delivery: str,
    tables: Mapping[str, pl.DataFrame | str],
    *,
    fmt: str = "csv",
    upper: bool = False,
    at: str = "2025-12-31T18:00:00+09:00",
    holder: str | None = None,
) -> Path:
    """One partner delivery: each table as a file named by the table (upper case with
    ``upper``, its header too), in CSV or Parquet; a ``str`` value is written verbatim as a CSV
    file (to break it on purpose)."""
    folder = sources / "partners" / partner / delivery
    folder.mkdir(parents=True)
    entries = []
    for table, frame in tables.items():
        name = table.upper() if upper else table
        if isinstance(frame, str):
            path = folder / f"{name}.csv"
            path.write_text(frame, encoding="utf-8")
            entries.append(_entry(path, frame.count("\n") - 1, "csv"))
            continue
        out = frame.rename({c: c.upper() for c in frame.columns}) if upper else frame
        path = folder / f"{name}.{fmt}"
        if fmt == "parquet":
            out.write_parquet(path)
        else:
            out.write_csv(path)
        entries.append(_entry(path, frame.height, fmt))
    meta = {"holder": holder} if holder else {}
    manifest(folder, f"partners/{partner}", f"through-{delivery[-10:]}", at, entries, **meta)
    return folder
