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
