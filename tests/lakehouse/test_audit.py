"""The access log's ledger (``lakehouse.audit``): the pipelines write to it without importing
the access rules (``lakehouse.access``), and it compacts itself as it grows."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse import audit, delta
from lakehouse import read as lake

RULES = "lakehouse.access"


@pytest.mark.integration
@pytest.mark.parametrize(
    "module", ["lakehouse.audit", "pipelines.defs.maintenance", "pipelines.defs.research"]
)
def test_the_ledger_and_the_pipelines_that_write_it_load_no_access_rule(module: str) -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {module}; print(*sorted(m for m in sys.modules if m == {RULES!r} "
            f"or m.startswith({RULES + '.'!r})))",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == []


def test_the_access_log_compacts_itself_and_keeps_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each append is a commit and a file; every ``COMPACT_EVERY`` commits the log is compacted,
    so its files and its commits stay few (an append's cost grows with both), and no row is lost
    or changed."""
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    monkeypatch.setattr(audit, "COMPACT_EVERY", 10)
    at = datetime.now(UTC)
    written = [
        audit.row(at, f"reader.{n}", "official", "test", "read:aggregate", "monitoring")
        for n in range(25)
    ]
    for entry in written:
        audit.append([entry])
    files = delta.open_table(audit.AUDIT).file_uris()
    assert len(files) < 10, files
    # Its history too: the commit files before the checkpoint go (their retention made 0 here).
    monkeypatch.setattr(audit, "LOG_RETENTION", "interval 0 hours")
    audit.compact()
    commits = list(Path(delta.uri(audit.AUDIT), "_delta_log").glob("*.json"))
    assert len(commits) < 5, commits
    kept = lake.frame(audit.AUDIT).sort("account")
    assert kept["event_id"].sort().to_list() == sorted(str(e["event_id"]) for e in written)
    assert kept.height == 25
