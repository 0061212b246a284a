"""Imaging benchmark: header indexing against a bare ``pydicom.dcmread`` loop over the same files.

The files are the synthetic city's real uploads, replicated to ``GJH_BENCH_INSTANCES`` instances
(default 100,000) with new Study, Series and SOP Instance UIDs of the same length written into the
bytes, so every copy is a distinct, valid instance of a distinct study.

* bare: one process, ``pydicom.dcmread(path, stop_before_pixels=True)`` per file, nothing else;
* indexed: the ``imaging_index`` asset in its own process (two header workers): hashing, the
  header parse and checks, pseudonymisation, encrypting and storing every original, the Delta
  writes of instances, series and studies, the ledger.

Target (issue 4): indexed files per second per core >= 0.9 x the bare loop's, with both cores used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from tests.benchmarks.conftest import record, run_measured
from tests.conftest import KEYS

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(0)]
INSTANCES = int(os.environ.get("GJH_BENCH_INSTANCES", "100000"))
WORKERS = 2
INDEX = """
import dagster as dg
from pipelines.defs.imaging import imaging_index
from pipelines.defs.resources import Imaging, Lakehouse
dg.materialize([imaging_index], resources={{
    "lakehouse": Lakehouse(lakehouse_uri={lake!r}, sources_dir={sources!r}),
    "imaging": Imaging(settle_s=0, workers={workers}),
}}, instance=dg.DagsterInstance.ephemeral())
"""


def _renamed(uid: str, copy: int) -> str:
    """A distinct UID of the same length: the last six digits of the last component replaced."""
    head, last = uid.rsplit(".", 1)
    if len(last) < 8:
        raise ValueError(f"{uid}: last component too short to vary")
    return f"{head}.{last[:-6]}{copy:06d}"


def _replicate(sources: Path, out: Path, count: int) -> list[Path]:
    """``count`` instances under ``out/imaging/<YKIHO>/bench/``, from the city's valid files."""
    originals = []
    for path in sorted((sources / "imaging").rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # the city's injected faults are not benchmark material
            continue
        uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        originals.append((path.read_bytes(), uids, path.relative_to(sources).parts[1]))
    files: list[Path] = []
    copy = 0
    while len(files) < count:
        copy += 1
        for original, uids, ykiho in originals:
            if len(files) == count:
                break
            data = original
            for uid in uids:
                data = data.replace(uid.encode(), _renamed(uid, copy).encode())
            target = out / "imaging" / ykiho / "bench" / f"{copy:04d}" / f"{len(files)}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            files.append(target)
    past = time.time() - 3600
    for f in files:
        os.utime(f, (past, past))
    return files


def test_header_indexing_against_a_bare_dcmread_loop(tmp_path: Path) -> None:
    city = tmp_path / "city"
    subprocess.run(
        [
            str(Path(sys.executable).with_name("gjh")),
            "synth",
            *("--citizens", "5000", "--start", "2025-01-01", "--days", "365"),
            *("--seed", "7", "--out", str(city), "--workers", "2"),
        ],
        check=True,
        capture_output=True,
    )
    sources = tmp_path / "sources"
    files = _replicate(city, sources, INSTANCES)
    size = sum(f.stat().st_size for f in files)

    began = time.perf_counter()
    for f in files:
        pydicom.dcmread(f, stop_before_pixels=True)
    bare_s = time.perf_counter() - began

    lake = tmp_path / "lakehouse"
    script = INDEX.format(lake=str(lake), sources=str(sources), workers=WORKERS)
    indexed = run_measured([sys.executable, "-c", script], env=os.environ | KEYS)

    bare_rate = len(files) / bare_s
    rate = len(files) / indexed["seconds"]
    per_core = rate / WORKERS / bare_rate
    record(
        "imaging_indexing",
        {
            "instances": len(files),
            "mean_file_kib": round(size / len(files) / 1024, 1),
            "bare_dcmread_files_per_s_one_core": round(bare_rate),
            "indexed_files_per_s_two_cores": round(rate),
            "indexed_seconds": round(indexed["seconds"], 1),
            "indexed_peak_rss_mib_all_processes": round(indexed["peak_rss_mib"]),
            "per_core_ratio": round(per_core, 3),
            "target_per_core_ratio": 0.9,
            "cores": os.cpu_count(),
        },
    )
    assert lake.joinpath("silver", "imaging_instances").is_dir()
