"""Finding deliveries in the drop folder and reading their manifests.

Every non-DICOM source delivers folders ``<root>/<source>/<delivery_id>/`` with a
``delivery.json`` that declares each file's encoding, delimiter, row count and SHA-256, and the
period the delivery covers. The pipelines process deliveries in the order they were sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

MANIFEST: Final = "delivery.json"


@dataclass(frozen=True)
class DeliveredFile:
    """One file of one delivery, as its manifest declares it.

    Attributes:
        source: The delivering source (``claims``, ``centre/gait``, ...).
        delivery_id: The delivery folder's name.
        period: What the delivery covers (``YYYY-MM`` or ``YYYY-MM-DD``).
        delivered_at: When the source sent it.
        path: The file on disk.
        rel: Its path relative to the drop folder (what lineage and quarantine record).
        name: The file name.
        format: ``csv`` or ``jsonl``.
        encoding: The declared encoding.
        delimiter: The declared delimiter (CSV).
        rows: The declared number of data rows.
        sha256: The declared checksum.
    """

    source: str
    delivery_id: str
    period: str
    delivered_at: datetime
    path: Path
    rel: str
    name: str
    format: str
    encoding: str
    delimiter: str
    rows: int
    sha256: str

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path, folder: Path, doc: dict[str, Any]) -> list[DeliveredFile]:
    delivered = datetime.fromisoformat(doc["delivered_at"])
    return [
        DeliveredFile(
            source=doc["source"],
            delivery_id=doc["delivery_id"],
            period=doc["period"],
            delivered_at=delivered,
            path=folder / entry["name"],
            rel=(folder / entry["name"]).relative_to(root).as_posix(),
            name=entry["name"],
            format=entry.get("format", "csv"),
            encoding=entry.get("encoding", "utf-8"),
            delimiter=entry.get("delimiter", ","),
            rows=int(entry.get("rows", 0)),
            sha256=entry.get("sha256", ""),
        )
        for entry in doc["files"]
    ]


def discover(root: Path, source: str, period: str | None = None) -> list[DeliveredFile]:
    """Every file delivered by ``source`` (optionally only for one period), oldest delivery
    first, so that the first copy of a file sent twice is the one ingested."""
    folder = root / source
    if not folder.is_dir():
        return []
    out: list[DeliveredFile] = []
    for manifest in sorted(folder.glob(f"*/{MANIFEST}")):
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        if period is None or doc.get("period") == period:
            out += _files(root, manifest.parent, doc)
    return sorted(out, key=lambda f: (f.delivered_at, f.delivery_id, f.name))


def periods(root: Path, source: str) -> list[str]:
    """The periods ``source`` has delivered, sorted (the partitions there is work for)."""
    found = {
        json.loads(m.read_text(encoding="utf-8"))["period"]
        for m in (root / source).glob(f"*/{MANIFEST}")
    }
    return sorted(found)


# A range run of a monthly extract handles its periods in passes of at most about this many
# delivered rows (the manifests' declared counts), so its memory is bounded by one pass, not by
# the range: a year of Gwangju's claims and pharmacy is about 240 M rows, one month about 20 M
# (a month is never split: a pass over the limit holds that one month alone). Small cities (the
# demo, the tests) fit their whole range in one pass, as before.
PASS_ROWS: Final = 2_000_000


def delivered_rows(root: Path, sources: list[str], periods: list[str]) -> dict[str, int]:
    """Rows ``sources`` declared for each of ``periods`` in their manifests."""
    rows = dict.fromkeys(periods, 0)
    for source in sources:
        for f in discover(root, source):
            if f.period in rows:
                rows[f.period] += f.rows
    return rows


def passes(rows_by_period: dict[str, int], rows: int | None = None) -> list[list[str]]:
    """The periods (sorted) in consecutive groups of at most ``rows`` rows, a period with more
    alone: the passes a range run takes one after another.

    Every pass of a range run then does what a run of only its periods does, in period order,
    so a range run's tables are those of its partitions run one pass at a time. ``rows`` is
    ``PASS_ROWS`` unless given."""
    limit = PASS_ROWS if rows is None else rows
    groups: list[list[str]] = []
    held = 0
    for period in sorted(rows_by_period):
        n = rows_by_period[period]
        if groups and held + n <= limit:
            groups[-1].append(period)
            held += n
        else:
            groups.append([period])
            held = n
    return groups
