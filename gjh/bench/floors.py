"""The bare-library floors the platform's stages are set against, measured in the same run:
what a bare script would do with the same input and output and nothing else. Shared by
``gjh bench`` and the benchmark tests (tests/benchmarks/test_pipelines.py, test_imaging.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import polars as pl

# One process of the bare header loop: the files listed one a line in argv[1], each read with
# ``pydicom.dcmread(stop_before_pixels=True)``, nothing else. Run as two processes over the two
# halves of the files, it is the floor of header indexing with both cores used.
BARE_DCMREAD = """
import sys
import pydicom
files = open(sys.argv[1], encoding="utf-8").read().split("\\n")
for f in files:
    pydicom.dcmread(f, stop_before_pixels=True)
"""


def bare_bronze(sources: Path, periods: Iterable[str], lake: Path) -> tuple[float, int]:
    """Read each delivered claims and pharmacy file of ``periods`` with ``pl.read_csv``
    (declared encoding and delimiter, text columns) and ``write_delta`` it: (seconds, rows)."""
    wanted = set(periods)
    began = time.perf_counter()
    rows = 0
    for source in ("claims", "pharmacy"):
        for manifest in sorted((sources / source).glob("*/delivery.json")):
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            if doc["period"] not in wanted:
                continue
            for entry in doc["files"]:
                frame = pl.read_csv(
                    manifest.parent / entry["name"],
                    encoding="utf8" if entry["encoding"] == "utf-8" else entry["encoding"],
                    separator=entry["delimiter"],
                    infer_schema=False,
                )
                frame.write_delta(str(lake / entry["name"].rsplit("_", 1)[0]), mode="append")
                rows += frame.height
    return time.perf_counter() - began, rows


def bare_silver(bronze: Iterable[str], silver: dict[str, pl.DataFrame], lake: Path) -> float:
    """Read the bronze tables (Delta locations) and write the silver tables' rows (read from the
    pipeline's output beforehand, untimed) to Delta under ``lake``: the IO floor of silver."""
    began = time.perf_counter()
    for location in bronze:
        pl.read_delta(location)
    for name, frame in silver.items():
        frame.write_delta(str(lake / name), mode="append")
    return time.perf_counter() - began
