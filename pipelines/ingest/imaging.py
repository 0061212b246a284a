"""One pass over the imaging drop folder: new files in, instances indexed, originals stored.

A *drop* is one such pass: every file that landed (and settled) since the last pass, whatever
its folder layout and however many parts its study came in. The ledger (``bronze.deliveries``,
source ``imaging``) lists every file with what became of it, so for each drop
files in = instances indexed + files quarantined, and a file already in the ledger (same path,
same modification time) is never read again.

Per file, in worker processes: hash, one header parse, the checks of ``pipelines.ingest.dicom``.
Then, in file order, the decisions that need more than one file:

* de-duplication by SOP Instance UID: an instance already indexed, or met earlier in this drop,
  is quarantined as ``duplicate_instance`` and adds nothing;
* one patient per study: an instance whose (pseudonymised) patient differs from the study's is
  quarantined as ``conflicting_patient_id`` and the study is flagged, so routing holds it back;
* storage: the workers store each indexable original under its study and series
  (``lakehouse.dicom_store``) from the very bytes they hashed and parsed, the first copy of a
  key winning. Here, an accepted instance whose key held other bytes (a losing duplicate stored
  first, or a pass that stopped midway) gets its own bytes put in place, and an object stored
  for a file rejected here (a duplicate under another key, a conflicting patient) is deleted,
  so the store holds exactly the indexed originals.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from lakehouse import dicom_store
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from pipelines.ingest.dicom import (
    CONFLICTING_PATIENT_ID,
    DUPLICATE_INSTANCE,
    KST,
    SOURCE,
    TABLE,
    FileResult,
    Landed,
    Readers,
    landed,
)
from pipelines.ingest.parse import Quarantined


@dataclass
class Drop:
    """What one pass found and decided, ready to be written."""

    drop_id: str
    indexed_at: datetime
    instances: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    conflicted: set[str] = field(default_factory=set)
    changed: list[str] = field(default_factory=list)  # files that changed while being read

    @property
    def studies(self) -> set[str]:
        """Studies this drop added to (or flagged)."""
        return {r["study_instance_uid"] for r in self.instances} | self.conflicted

    def frame(self) -> pl.DataFrame:
        spec = catalog_table(TABLE)
        return spec.conform(pl.DataFrame(self.instances, schema=spec.polars_schema()))


def known_files() -> set[tuple[str, datetime]]:
    """(file, modification time) of every imaging file already in the ledger."""
    ledger = (
        lake.scan("bronze.deliveries")
        .filter(pl.col("source") == SOURCE)
        .select("file", "delivered_at")
        .collect()
    )
    return set(zip(ledger["file"].to_list(), ledger["delivered_at"].to_list(), strict=True))


def unindexed(files: list[Landed]) -> list[Landed]:
    """The files among ``files`` not yet in the ledger."""
    known = known_files()
    return [f for f in files if (f.rel, f.modified) not in known]


def new_files(root: Path, settle_s: float, now: datetime) -> list[Landed]:
    """The settled files of the drop folder not yet in the ledger."""
    return unindexed(landed(root, settle_s, now))


@dataclass
class _Index:
    """What is already indexed: instance -> (sha256, source file), study -> patient key."""

    instances: dict[str, tuple[str, str]]
    patients: dict[str, str | None]

    @classmethod
    def load(cls) -> _Index:
        columns = ("sop_instance_uid", "sha256", "source_file", "study_instance_uid")
        existing = lake.scan(TABLE).select(*columns, "patient_key").collect()
        firsts = existing.unique("study_instance_uid", keep="first")
        return cls(
            {
                sop: (sha, src)
                for sop, sha, src in existing.select(
                    "sop_instance_uid", "sha256", "source_file"
                ).iter_rows()
            },
            dict(zip(firsts["study_instance_uid"], firsts["patient_key"], strict=True)),
        )


def _quarantine(drop: Drop, f: Landed, r: FileResult, reason: str, message: str) -> Quarantined:
    payload = json.dumps(r.summary, sort_keys=True) if r.summary else None
    return Quarantined(
        "bronze",
        SOURCE,
        TABLE,
        _period(f, drop.indexed_at),
        drop.drop_id,
        f.rel,
        None,
        (r.summary or {}).get("sop_instance_uid"),
        reason,
        message,
        payload,
        1,
    )


def _received(f: Landed, now: datetime) -> datetime:
    """When a file landed: its modification time (the upload agent wrote it then), never later
    than now (a clock ahead of ours does not delay its study)."""
    return min(f.modified, now)


def _period(f: Landed, now: datetime) -> str:
    return _received(f, now).astimezone(KST).strftime("%Y-%m-%d")


def _ledger(
    drop: Drop, f: Landed, r: FileResult, status: str, duplicate_of: str | None = None
) -> dict[str, Any]:
    accepted = int(status == "ingested")
    return {
        "source": SOURCE,
        "delivery_id": drop.drop_id,
        "file": f.rel,
        "sha256": r.sha256,
        "period": _period(f, drop.indexed_at),
        "delivered_at": f.modified,
        "rows_declared": None,
        "rows_read": 1,
        "rows_accepted": accepted,
        "rows_quarantined": 1 - accepted,
        "status": status,
        "duplicate_of": duplicate_of,
    }


def ingest(root: Path, workers: int, settle_s: float = 10.0, now: datetime | None = None) -> Drop:
    """Index every new file in ``<root>/imaging``; the originals are stored as they are
    accepted, the tables are written by the caller (``write``)."""
    now = now or datetime.now(UTC)
    dicom_store.check_key()  # before the workers start, so a missing key is one clear error
    with Readers(workers) as readers:
        files = new_files(root, settle_s, now)
        digest = hashlib.sha256("\n".join(f.rel for f in files).encode()).hexdigest()[:8]
        drop = Drop(f"drop-{now:%Y%m%dT%H%M%S}-{digest}", now)
        if not files:
            return drop
        index = _Index.load()
        seen: dict[str, str] = {}
        orphans: set[str] = set()
        for f, r in zip(files, readers.read_all(files), strict=True):
            if r.row is None:
                drop.quarantined.append(_quarantine(drop, f, r, r.reason or "", r.message or ""))
                drop.ledger.append(_ledger(drop, f, r, "rejected"))
                continue
            if not _decide(drop, index, seen, f, r) and r.stored:
                orphans.add(_object_key(r.row))
    for key in orphans - {row["file_uri"] for row in drop.instances}:
        dicom_store.remove(key)
    return drop


def _object_key(row: dict[str, Any]) -> str:
    return dicom_store.object_key(
        row["study_instance_uid"], row["series_instance_uid"], row["sop_instance_uid"]
    )


def _decide(drop: Drop, index: _Index, seen: dict[str, str], f: Landed, r: FileResult) -> bool:
    """Account for one readable file; True when it is (or already was) indexed."""
    row = r.row or {}
    sop, study = row["sop_instance_uid"], row["study_instance_uid"]
    earlier = index.instances.get(sop)
    if earlier == (r.sha256, f.rel):
        # Indexed by a pass that stopped before its ledger was written: account for it only.
        drop.ledger.append(_ledger(drop, f, r, "ingested"))
        return True
    first = earlier[1] if earlier else seen.get(sop)
    if first is not None:
        same = earlier is None or earlier[0] == r.sha256
        message = (
            f"SOP Instance UID already indexed from {first} "
            f"({'the same' if same else 'different'} bytes); the first one is kept"
        )
        drop.quarantined.append(_quarantine(drop, f, r, DUPLICATE_INSTANCE, message))
        drop.ledger.append(_ledger(drop, f, r, "duplicate", first))
        return False
    patient = row["patient_key"]
    if study in index.patients and index.patients[study] != patient:
        message = "names another patient than the study's other instances (pseudonyms differ)"
        drop.quarantined.append(_quarantine(drop, f, r, CONFLICTING_PATIENT_ID, message))
        drop.ledger.append(_ledger(drop, f, r, "rejected"))
        drop.conflicted.add(study)
        return False
    key = _object_key(row)
    if not r.stored and r.stored_sha256 != r.sha256:
        data = f.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != r.sha256:
            drop.changed.append(f.rel)  # being rewritten: taken with its new time next pass
            return False
        dicom_store.put(key, data, replace=True)  # no table refers to the bytes it held
    index.patients.setdefault(study, patient)
    seen[sop] = f.rel
    drop.instances.append(
        row
        | {
            "file_uri": key,
            "drop_id": drop.drop_id,
            "received_at": _received(f, drop.indexed_at),
            "indexed_at": drop.indexed_at,
        }
    )
    drop.ledger.append(_ledger(drop, f, r, "ingested"))
    return True
