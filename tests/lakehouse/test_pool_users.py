"""Every process-pool user finishes, on small real data, when it is run from a process that
ignores SIGTERM (as a shell leaves a job it starts in the background), and leaves no process
behind; so does a pool that was never closed. With ``multiprocessing.Pool`` the same run never
returned (issue 17): its shutdown sends SIGTERM, which the workers inherited ignored, and then
joins them forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
# A shell that ignores SIGTERM, as one leaves a job it starts in the background, execs the
# command, which inherits the ignored signal.
SIGTERM_IGNORED = ("sh", "-c", 'trap "" TERM; exec "$@"', "sh")
LIMIT_S = 420  # the run takes about a minute on two busy cores

# A file, not -c: spawned workers re-import the main module. Imports under the main guard, for
# the same reason. Each user prints its name once its pool is closed.
USERS = """
import shutil
import signal
import sys
from datetime import UTC, date, datetime
from pathlib import Path


def main(work: Path) -> None:
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN

    from pydicom.data import get_testdata_file

    import synth.city
    from pipelines.ingest import dicom
    from pipelines.score import scoring
    from models.runtime.registry import registry
    from synth.config import CityConfig
    from tests.pipelines.ecg import stored_ecg_job

    # The generator: 400 citizens in slices of 150 (three claims slices in two workers), and
    # the imaging writer's studies in two workers.
    synth.city.SLICE_PEOPLE = 150
    cfg = CityConfig(citizens=400, start=date(2025, 6, 1), days=60, seed=99, workers=2)
    summary = synth.city.generate(cfg, work / "city")
    assert summary.counts["imaging"]["studies"] > 2, summary.counts
    print("city", flush=True)

    # DICOM indexing: 64 copies of one of pydicom's test files, read and stored by two workers.
    folder = work / "drop" / "imaging" / "clinic"
    folder.mkdir(parents=True)
    for n in range(64):
        shutil.copy(get_testdata_file("CT_small.dcm"), folder / f"{n:03d}.dcm")
    with dicom.Readers(2) as readers:
        results = list(readers.read_all(dicom.landed(work / "drop", 0, datetime.now(UTC))))
    assert len(results) == 64 and all(r.row is not None for r in results)
    print("readers", flush=True)

    # AI scoring: pydicom's ECG, one study per chunk, scored twice by two workers.
    job = stored_ecg_job()
    with scoring.Scorers(2) as scorers:
        work_list = [(registry()["ecg"], [job, job])]
        rows = list(scorers.score(work_list, datetime.now(UTC), batch=1))
    assert [r["status"] for r in rows] == ["scored", "scored"], rows
    print("scorers", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
"""


def group(pgid: int) -> list[int]:
    """The live processes of one process group, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(stat.parent.name))
    return found


def test_every_pool_user_finishes_from_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "pool_users.py"
    script.write_text(USERS)
    run = subprocess.Popen(
        [*SIGTERM_IGNORED, sys.executable, str(script), str(tmp_path)],
        cwd=ROOT,
        env=os.environ | {"LAKEHOUSE_URI": str(tmp_path / "lake")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: everything it starts can be found
    )
    try:
        out, err = run.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        out, err = run.communicate()
        pytest.fail(f"the pool users did not finish in {LIMIT_S} s; done: {out.split()}")
    finally:
        deadline = time.monotonic() + 30  # the resource tracker ends once its parent is gone
        while group(run.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = group(run.pid)
        if left:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 0, err[-3000:]
    assert out.split() == ["city", "readers", "scorers"]
    assert left == [], "processes left behind"


NEVER_CLOSED = """
import multiprocessing, time
from lakehouse.pool import WorkerPool
pool = WorkerPool(2, initializer=time.sleep, initargs=(600,), grace=1).__enter__()
print(*(p.pid for p in multiprocessing.active_children()), flush=True)
"""


def test_a_pool_never_closed_is_killed_when_the_interpreter_exits(tmp_path: Path) -> None:
    """With SIGTERM ignored, multiprocessing's exit handler alone would wait forever."""
    script = tmp_path / "never_closed.py"  # a file: spawned workers re-import the main module
    script.write_text(NEVER_CLOSED)
    done = subprocess.run(
        [*SIGTERM_IGNORED, sys.executable, str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 2
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]
