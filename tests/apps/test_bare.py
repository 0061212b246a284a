"""The app scripts outside a Streamlit run: imported bare (as a process spawned after an
AppTest re-imports its parent's main module) they do nothing and fail nothing, and a process
pool started after an app ran under AppTest comes up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lakehouse.pool import WorkerPool

ROOT = Path(__file__).resolve().parents[2]
APPS = ("citizen", "clinician", "public_health", "admin")


def double(x: int) -> int:
    return 2 * x


@pytest.mark.parametrize("app", APPS)
def test_an_app_script_run_bare_does_nothing(app: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "apps" / app / "streamlit_app.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_spawned_pool_starts_after_an_app_ran_under_apptest() -> None:
    AppTest.from_file(str(ROOT / "apps/admin/streamlit_app.py"), default_timeout=60).run()
    with WorkerPool(2, timeout=120, name="after-apptest") as pool:  # the project's one kind
        assert list(pool.map(double, [21, 1])) == [42, 2]
