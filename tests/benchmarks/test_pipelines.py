"""Claims ingestion for one month of the whole city, stage by stage, against bare Polars doing
the same input and output in the same run. Only `make bench` runs this.

The target (issue 3): the whole run, bronze to silver, at most 1.5x bare ``pl.read_csv`` (declared
encoding, text columns) + ``write_delta`` of the same delivered files. Each stage is also set
against its own floor:

- bronze against that same read-and-append; the pipeline also pseudonymises, checks every row,
  keeps lineage and the ledger, and quarantines;
- silver against reading the month's bronze tables and writing the silver tables' rows to Delta;
  the pipeline also types, conforms, corrects and quarantines.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.benchmarks.conftest import record, run_measured
from tests.conftest import KEYS, TEST_IDENTITY_KEY, TEST_PSEUDONYM_KEY

# Full-city runs take far longer than the suite's per-test timeout.
pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(3 * 3600)]

CITIZENS = 1_430_000
TARGET = 1.5


def _row_count(metadata: Mapping[str, dg.MetadataValue]) -> int:
    """The row count a bronze asset reported, as Dagster's standard metadata key."""
    value = metadata["dagster/row_count"]
    assert isinstance(value, dg.IntMetadataValue)
    return int(value.value or 0)


def _bare_bronze(sources: Path, period: str, lake: Path) -> tuple[float, int]:
    """What a bare script would do with the month: read each delivered file with
    ``pl.read_csv`` (declared encoding and delimiter, text columns) and ``write_delta`` it."""
    began = time.perf_counter()
    rows = 0
    for source in ("claims", "pharmacy"):
        for manifest in sorted((sources / source).glob("*/delivery.json")):
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            if doc["period"] != period:
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


def _bare_silver(lake: Path) -> float:
    """Read the month's bronze claims tables and write the silver tables' rows (taken from the
    pipeline's output beforehand, untimed) to Delta: the IO floor of the silver stage."""
    from lakehouse import read
    from pipelines.defs import claims

    outputs = {name: read.frame(name) for name in claims.SILVER}
    began = time.perf_counter()
    for source in claims.SOURCES.values():
        for name in source.values():
            pl.read_delta(str(Path(os.environ["LAKEHOUSE_URI"]) / name.replace(".", "/")))
    for name, frame in outputs.items():
        frame.write_delta(str(lake / name), mode="append")
    return time.perf_counter() - began


def test_claims_month_bronze_to_silver(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    cmd = [
        sys.executable, "-m", "gjh.cli", "synth", "--citizens", str(CITIZENS),
        "--start", "2025-03-01", "--days", "31", "--seed", "20250101",
        "--out", str(sources), "--workers", "2",
    ]  # fmt: skip
    synth = run_measured(cmd)
    period = "2025-03"
    os.environ |= {
        "LAKEHOUSE_URI": str(tmp_path / "lakehouse"),
        "GJH_SOURCES": str(sources),
        "GJH_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        "GJH_IDENTITY_KEY": TEST_IDENTITY_KEY,
    }
    from pipelines.defs import claims
    from pipelines.defs.resources import Lakehouse

    began = time.perf_counter()
    result = dg.materialize(
        [claims.bronze_claims, claims.bronze_pharmacy, claims.silver_claims],
        partition_key=period,
        resources={"lakehouse": Lakehouse()},
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    pipeline_seconds = time.perf_counter() - began
    assert result.success
    steps: dict[str, float] = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS" and event.step_key:
            data = event.event_specific_data
            steps[event.step_key] = round(getattr(data, "duration_ms", 0) / 1000, 2)
    rows = sum(
        _row_count(e.step_materialization_data.materialization.metadata)
        for e in result.get_asset_materialization_events()
        if e.step_key and e.step_key.startswith("bronze")
    )
    bronze = sum(v for k, v in steps.items() if k.startswith("bronze"))
    silver = sum(v for k, v in steps.items() if k.startswith("silver"))
    bare_bronze, bare_rows = _bare_bronze(sources, period, tmp_path / "bare")
    bare_silver = _bare_silver(tmp_path / "bare_silver")
    ratio = pipeline_seconds / bare_bronze
    record(
        "pipeline_claims_month",
        {
            "citizens": CITIZENS,
            "period": period,
            "synth_seconds": round(synth["seconds"], 1),
            "delivered_rows": bare_rows,
            "bronze_rows": rows,
            "pipeline_seconds": round(pipeline_seconds, 1),
            "bare_read_csv_write_delta_seconds": round(bare_bronze, 1),
            "ratio": round(ratio, 2),
            "target_ratio": TARGET,
            "meets_target": ratio <= TARGET,
            "pipeline_step_seconds": steps,
            "bronze": {
                "seconds": round(bronze, 1),
                "ratio": round(bronze / bare_bronze, 2),
            },
            "silver": {
                "seconds": round(silver, 1),
                "bare_read_delta_write_delta_seconds": round(bare_silver, 1),
                "ratio": round(silver / bare_silver, 2),
            },
        },
    )
    assert rows == bare_rows


def test_demo_build(tmp_path: Path) -> None:
    """`make demo`'s build: `gjh build` of the demo city (5,000 citizens, a year, faults) into a
    persistent Dagster instance, as the demo runs it; wall time and peak memory per stage as
    `gjh build` reports them. Reported, no target: the stages' own floors are measured above."""
    sources = tmp_path / "sources"
    synth = [
        sys.executable, "-m", "gjh.cli", "synth", "--citizens", "5000",
        "--start", "2025-01-01", "--days", "365", "--seed", "20250101",
        "--out", str(sources), "--inject-faults", "--workers", "2",
    ]  # fmt: skip
    run_measured(synth)
    env = os.environ | {
        "LAKEHOUSE_URI": str(tmp_path / "lakehouse"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        **KEYS,
    }
    build = run_measured(
        [sys.executable, "-m", "gjh.cli", "build", "--sources", str(sources)], env=env
    )
    # gjh build prints "[i/n] <stage> ...: k tables ..." then "      done in S s: R rows written".
    lines = build["stdout"].splitlines()
    stages = {
        head.split("]", 1)[1].split(":", 1)[0].strip(): float(done.split("done in")[1].split()[0])
        for head, done in itertools.pairwise(lines)
        if head.startswith("[") and "done in" in done
    }
    record(
        "pipeline_demo_build",
        {
            "citizens": 5000,
            "days": 365,
            "seconds": round(build["seconds"], 1),
            "peak_rss_mib_all_processes": round(build["peak_rss_mib"]),
            "stage_seconds": stages,
        },
    )
    assert stages
