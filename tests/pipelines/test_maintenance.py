"""The weekly upkeep (``pipelines.defs.maintenance``) keeps what the platform promises: every
version of the last week still reads as it was after its vacuum, and compaction keeps the lookup
layout (a key bucket's files sorted by citizen) with fewer files and the same rows."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lakehouse import delta
from lakehouse.buckets import key_bucket_expr
from lakehouse.catalog import table
from pipelines.defs.maintenance import upkeep_job
from pipelines.defs.resources import Lakehouse
from tests.pipelines.conftest import Lake

pytestmark = pytest.mark.integration

TIMELINE = "gold.citizen_timeline"


def _rows(day: date, citizens: range) -> pl.DataFrame:
    """Timeline rows of one day for some citizens (measurements), sorted by citizen."""
    keys = [f"C{hashlib.sha256(str(i).encode()).hexdigest()[:32]}" for i in citizens]
    frame = pl.DataFrame({"citizen_key": keys}).with_columns(
        pl.lit(day).alias("event_date"),
        pl.lit("measurement").alias("kind"),
        pl.lit(1.5).alias("value"),
        (pl.col("citizen_key") + pl.lit(f"/{day}")).alias("source_ref"),
        key_bucket_expr().alias("key_bucket"),
    )
    spec = table(TIMELINE)
    missing = [pl.lit(None).alias(c) for c in spec.names if c not in frame.columns]
    return spec.conform(frame.with_columns(missing)).sort("citizen_key")


def _upkeep(lake: Lake) -> None:
    """The scheduled upkeep, with the schedule's configuration (none: the defaults)."""
    resources = {"lakehouse": Lakehouse(lakehouse_uri=str(lake.root))}
    with lake.active():
        assert upkeep_job.execute_in_process(resources=resources).success


def test_upkeep_keeps_versions_and_the_lookup_layout(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lakehouse", tmp_path / "sources")
    first = date(2025, 3, 1)
    with lake.active():
        delta.replace(TIMELINE, _rows(first, range(2000)), "key_bucket >= 0")
        for n in range(1, 4):  # three new days, each appended to the citizens' buckets
            delta.append(TIMELINE, _rows(first + timedelta(days=n), range(n, 2000, 7)))
        before = delta.open_table(TIMELINE)
        version, files = before.version(), len(before.file_uris())
        rows = pl.read_delta(before).sort(pl.all())
    _upkeep(lake)
    with lake.active():
        after = delta.open_table(TIMELINE)
        assert after.version() > version
        assert len(after.file_uris()) < files
        assert pl.read_delta(after).sort(pl.all()).equals(rows)
        old = DeltaTable(delta.uri(TIMELINE), version=version)
        assert pl.read_delta(old).sort(pl.all()).equals(rows)
        for uri in after.file_uris():
            keys = pq.read_table(uri, columns=["citizen_key"])["citizen_key"].to_pylist()
            assert keys == sorted(keys), f"{uri}: not sorted by citizen after upkeep"
