"""The access log's ledger (``lakehouse.audit``): the pipelines write to it without importing
the access rules (``lakehouse.access``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
