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

The per-file work may have been done ahead of the pass (``ReadAhead``, ``gjh intake``): the pass
then takes each file's result from there instead of reading it again, and decides as it would
have.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import polars as pl

from lakehouse import dicom_store
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from lakehouse.config import MissingKeyError
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
    read_and_store,
)
from pipelines.ingest.parse import Quarantined

Seen: TypeAlias = tuple[str, int, int]  # a file as listed: (path in the drop, size, mtime ns)


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
    accepted, the tables are written by the caller (``write``).

    When a ``ReadAhead`` of ``root`` is running in this process, its results stand in for the
    workers' for the files it read; the listing and every decision are this pass's own.
    """
    now = now or datetime.now(UTC)
    dicom_store.check_key()  # before the workers start, so a missing key is one clear error
    ahead = ReadAhead.running(root)
    orphans: set[str] = set()
    with Readers(0 if ahead else workers) as readers:
        files = new_files(root, settle_s, now)
        digest = hashlib.sha256("\n".join(f.rel for f in files).encode()).hexdigest()[:8]
        drop = Drop(f"drop-{now:%Y%m%dT%H%M%S}-{digest}", now)
        if files:
            index = _Index.load()
            seen: dict[str, str] = {}
            results = ahead.results(files) if ahead else readers.read_all(files)
            for f, r in zip(files, results, strict=True):
                if r.row is None:
                    drop.quarantined.append(
                        _quarantine(drop, f, r, r.reason or "", r.message or "")
                    )
                    drop.ledger.append(_ledger(drop, f, r, "rejected"))
                    continue
                if not _decide(drop, index, seen, f, r) and r.stored:
                    orphans.add(_object_key(r.row))
    if ahead is not None:
        orphans |= _unreferenced(ahead.untaken())
    for key in orphans - {row["file_uri"] for row in drop.instances}:
        dicom_store.remove(key)
    return drop


def _unreferenced(keys: set[str]) -> set[str]:
    """The object keys among ``keys`` that no indexed instance refers to."""
    if not keys:
        return keys
    referenced = (
        lake.scan(TABLE)
        .filter(pl.col("file_uri").is_in(sorted(keys)))
        .select("file_uri")
        .collect()["file_uri"]
    )
    return keys - set(referenced.to_list())


def _seen(f: Landed) -> Seen:
    return f.rel, f.size, f.mtime_ns


class ReadAhead:
    """The per-file work of a drop's next pass (hash, parse, checks, storing the original), done
    in the header workers while this process does something else, as a context manager.

    ``gjh intake`` (``pipelines.intake``) starts it before it imports Dagster, loads the
    definitions and opens the instance, so those seconds overlap the reading instead of
    preceding it (issue 23); the run's ``imaging_index`` then finds it (``running``: the run
    executes in this process, and a Dagster resource holds settings, not a live pool).

    It changes nothing of what a pass decides or writes. The pass lists the folder and the ledger
    again itself and takes a result from here only for a file listed with the same path, size
    and modification time; any other file it lists (one that settled since, or was rewritten)
    is read then, in this process. An object stored ahead for a file the pass did not take is
    deleted unless an instance refers to it (``untaken``), so the store still holds exactly the
    indexed originals. The workers exit as soon as they are done, before the run's own memory
    peak (its writes and checks).

    Args:
        root: The drop folder.
        readers: The header workers, already started by the caller (the earlier, the more
            of their start-up overlaps its own); closed here as soon as they are done.
        settle_s: As for ``ingest``.
    """

    _running: ClassVar[dict[Path, ReadAhead]] = {}  # by drop folder

    def __init__(self, root: Path, readers: Readers, settle_s: float) -> None:
        self.root = root.resolve()
        self.readers = readers
        self.settle_s = settle_s
        self._results: dict[Seen, FileResult] = {}
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def running(cls, root: Path) -> ReadAhead | None:
        """The read-ahead of ``root`` running in this process, if any."""
        return cls._running.get(root.resolve())

    def __enter__(self) -> ReadAhead:
        try:
            if self.root in self._running:
                raise RuntimeError(f"{self.root} is being read ahead already")
            dicom_store.check_key()
            files = new_files(self.root, self.settle_s, datetime.now(UTC))
        except MissingKeyError:
            self.readers.__exit__()
            return self  # nothing read ahead: the pass raises it itself, inside its run
        except BaseException:
            self.readers.__exit__()
            raise
        self._thread = threading.Thread(
            target=self._read, args=(files,), name="dicom-read-ahead", daemon=True
        )
        self._thread.start()
        self._running[self.root] = self
        return self

    def _read(self, files: list[Landed]) -> None:
        try:
            for f, r in zip(files, self.readers.read_all(files), strict=True):
                self._results[_seen(f)] = r
        except BaseException as error:  # raised in the pass that takes the results
            self._error = error
        finally:
            self.readers.__exit__()

    def results(self, files: Iterable[Landed]) -> Iterator[FileResult]:
        """Each file's result, in order: read ahead, else read now. Taken once: the read-ahead
        is done with when the pass has its results."""
        self._running.pop(self.root, None)
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        for f in files:
            found = self._results.pop(_seen(f), None)
            yield found if found is not None else read_and_store((str(f.path), f.rel))

    def untaken(self) -> set[str]:
        """The objects stored ahead for files the pass did not take (removed, rewritten or taken
        in by another pass since): the pass deletes those no instance refers to, as it deletes
        the objects of the files it rejects."""
        self._running.pop(self.root, None)
        if self._thread is not None:
            self._thread.join()
        keys = {_object_key(r.row) for r in self._results.values() if r.stored and r.row}
        self._results.clear()
        return keys

    def __exit__(self, *exc: object) -> None:
        self._running.pop(self.root, None)
        if self._thread is not None:
            self._thread.join()  # the pool's own timeouts bound it
        self._results.clear()


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
