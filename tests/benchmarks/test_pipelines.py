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

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import pytest

from gjh.bench.floors import bare_bronze, bare_silver
from gjh.bench.measure import run_measured
from gjh.bench.stages import build_stages
from tests.benchmarks.conftest import record
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
    from pipelines.defs import claims, registry
    from pipelines.defs.resources import Lakehouse

    # The registers first (not timed): silver's foreign-key checks run in its step.
    dg.materialize(
        [registry.bronze_registry, registry.silver_registry],
        resources={"lakehouse": Lakehouse()},
        instance=dg.DagsterInstance.ephemeral(),
    )
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
    bronze_s, bare_rows = bare_bronze(sources, [period], tmp_path / "bare")
    from lakehouse import read

    lake = Path(os.environ["LAKEHOUSE_URI"])
    silver_s = bare_silver(
        [str(lake / n.replace(".", "/")) for s in claims.SOURCES.values() for n in s.values()],
        {name: read.frame(name) for name in claims.SILVER},
        tmp_path / "bare_silver",
    )
    ratio = pipeline_seconds / bronze_s
    record(
        "pipeline_claims_month",
        {
            "citizens": CITIZENS,
            "period": period,
            "synth_seconds": round(synth["seconds"], 1),
            "delivered_rows": bare_rows,
            "bronze_rows": rows,
            "pipeline_seconds": round(pipeline_seconds, 1),
            "bare_read_csv_write_delta_seconds": round(bronze_s, 1),
            "ratio": round(ratio, 2),
            "target_ratio": TARGET,
            "meets_target": ratio <= TARGET,
            "pipeline_step_seconds": steps,
            "bronze": {
                "seconds": round(bronze, 1),
                "ratio": round(bronze / bronze_s, 2),
            },
            "silver": {
                "seconds": round(silver, 1),
                "bare_read_delta_write_delta_seconds": round(silver_s, 1),
                "ratio": round(silver / silver_s, 2),
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
    stages, _ = build_stages(build["stdout"])
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
