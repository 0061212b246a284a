"""``gjh bench``'s query stages (``gjh.bench.queries``): each stage's process runs on a built lake
and reports its lookups, their p95 and the naive scan's beside them; the worklist is read
through the access layer (its audit rows are there). No timing is judged here: the bench does."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from gjh.bench import queries, report, stages
from lakehouse import read
from lakehouse.config import environment
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_p95_is_the_nearest_rank() -> None:
    assert queries.p95_ms([0.001 * n for n in range(1, 101)]) == pytest.approx(95.0)
    assert queries.p95_ms([0.002]) == pytest.approx(2.0)


def test_query_stages_report_their_fields(platform_lake: Lake, tmp_path: Path) -> None:
    (tmp_path / "built").symlink_to(platform_lake.root)
    outbox = tmp_path / "outbox"
    env = stages.stage_env() | {
        "GJH_SECRETS_DIR": str(platform_lake.root.parent / "secrets"),
        "GJH_OUTBOX_DIR": str(outbox),
    }
    ctx = stages.Context(platform_lake.sources, tmp_path, env)
    for stage in queries.STAGES:
        row = queries.measured(ctx, stage, 3)
        assert (row.stage, row.items, row.unit) == (stage, 3, "lookups")
        assert row.p95_ms is not None and row.p95_ms > 0 and row.seconds > 0
        assert row.peak_rss_mib > 0 and row.floor is not None and row.floor.seconds > 0
        assert row.detail["floor_p95_ms"] > 0 and row.detail["keys"] >= 1
        assert report.TARGETS[stage].kind == "p95_ms_max"
        if stage != queries.KPI:  # the key reads' data files, beside the tables' in all
            assert 1 <= row.detail["files_read_max"] <= row.detail["table_files"], row.detail
    with environment(LAKEHOUSE_URI=str(platform_lake.root), GJH_OUTBOX_DIR=str(outbox)):
        audited = read.frame("ops.audit_log").group_by("action").len()
    counts = dict(audited.iter_rows())
    # The worklist's lookups and the warm-up each audited as the app's are; the programme
    # page's each audit their KPI read.
    assert counts["read:worklist"] == 4, counts
    assert counts["read:aggregate"] >= 4, counts
    assert pl.Series(list(counts)).is_in(["read:worklist", "read:aggregate"]).all(), counts
