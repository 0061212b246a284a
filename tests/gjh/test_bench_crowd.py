"""``gjh bench``'s many-people stage (``gjh.bench.crowd``) at a tiny count: its process makes the
accounts on a built lake, serves the two apps, has two clinicians and two citizens arrive at
once after the single-user baseline and reports one row per step, each with the baseline as its
floor, the servers' CPU and memory, and no error. A browser run, so with the benchmarks."""

from __future__ import annotations

from pathlib import Path

import pytest

from gjh.bench import crowd, report, stages
from tests.pipelines.conftest import Lake

pytestmark = [
    pytest.mark.benchmark,
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.timeout(900),
]


def test_crowd_stage_at_two_of_each(platform_lake: Lake, tmp_path: Path) -> None:
    (tmp_path / "built").symlink_to(platform_lake.root)
    env = stages.stage_env() | {
        "GJH_SOURCES": str(platform_lake.sources),
        "GJH_SECRETS_DIR": str(platform_lake.root.parent / "secrets"),
        "GJH_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    rows = crowd.measured(stages.Context(platform_lake.sources, tmp_path, env), people=2)
    assert [r.stage for r in rows] == list(report.CROWD_STAGES)
    for row in rows:
        assert row.items == 2 and row.unit == "people"
        assert row.detail["errors"] == [], row.detail["errors"]
        assert row.floor is not None and row.floor.seconds > 0
        assert row.p95_ms is not None and row.p95_ms > 0 and row.peak_rss_mib > 0
        assert report.met(row) is not None
        for server in ("clinician", "citizen"):
            usage = row.detail["crowd_usage"][server]
            assert usage["cpu_s"] > 0 and usage["peak_rss_mib"] > 0
