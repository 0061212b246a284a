"""``gjh bench``'s DICOM intake stage: Debian's Orthanc as the peer and ``gjh intake`` on a handful
of the small city's uploads. What is checked is that both sides run, take in every file and
report sane fields; no timing is asserted (the figures are the benchmark's, ``make bench``)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from gjh.bench import orthanc, report
from gjh.bench.stages import Context, stage_env
from tests.conftest import KEYS, City

NEEDS_ORTHANC = pytest.mark.skipif(
    not orthanc.ORTHANC.exists(), reason="make orthanc installs Debian's Orthanc"
)
FILES = 12


def test_the_intake_is_judged_on_files_per_second_and_on_memory() -> None:
    floor = report.Floor("Orthanc", 10.0, 200.0)
    row = report.Measured(orthanc.STAGE, 9.0, 9.0, 100, "files", 400.0, floor)
    assert report.ratio(row) == pytest.approx(10 / 9)
    assert report.met(row) is True
    assert (
        report.met(report.Measured(orthanc.STAGE, 11.0, 11.0, 100, "files", 400.0, floor)) is False
    )
    # Faster, but more than twice Orthanc's memory: not met.
    assert report.met(report.Measured(orthanc.STAGE, 9.0, 9.0, 100, "files", 401.0, floor)) is False
    assert "peak memory ≤ 2× floor's" in report.TARGETS[orthanc.STAGE].describe()


@pytest.mark.integration
def test_the_drop_holds_distinct_valid_instances(small_city: City, tmp_path: Path) -> None:
    files = orthanc.drop(small_city.out, tmp_path / "drop", FILES * 3)
    assert len(files) == FILES * 3
    uids = set()
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        uids.add(ds.SOPInstanceUID)
        assert f.stat().st_mtime < tmp_path.stat().st_mtime  # settled
    assert len(uids) == len(files)


def test_orthanc_is_configured_to_keep_to_itself(tmp_path: Path) -> None:
    settings = orthanc.config(tmp_path, 8042)
    assert settings["DicomServerEnabled"] is False
    assert settings["RemoteAccessAllowed"] is False
    assert settings["Plugins"] == []
    assert Path(settings["StorageDirectory"]).parent == tmp_path
    assert Path(settings["IndexDirectory"]).parent == tmp_path
    # Orthanc 1.10 binds every interface: it runs in a network namespace of only a loopback.
    assert orthanc.isolated(tmp_path / "files", tmp_path)[:2] == ["unshare", "--net"]


@pytest.mark.integration
@pytest.mark.slow
@NEEDS_ORTHANC
def test_the_intake_stage_measures_orthanc_and_gjh_intake(small_city: City, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = stage_env() | KEYS | {"GJH_SECRETS_DIR": str(tmp_path / "secrets")}
    row = orthanc.against_orthanc(Context(small_city.out, work, env), count=FILES)

    assert row.stage == orthanc.STAGE and row.unit == "files" and row.items == FILES
    assert row.floor is not None and row.floor.name.startswith("Orthanc 1.")
    assert row.floor.seconds > 0 and row.floor.peak_rss_mib > 0
    assert row.seconds > 0 and row.peak_rss_mib > 0
    detail = row.detail
    assert detail["floor_items"] == FILES
    assert detail["orthanc_instances"] == FILES
    assert detail["orthanc_statuses"] == {"Success": FILES}
    intake = detail["intake"]
    assert intake["success"] is True and intake["checks_failed"] == []
    assert intake["files"] == intake["instances"] == FILES
    assert intake["checks"] > 0
    # The report judges it on both of its targets.
    out = report.assemble({"name": "t", "citizens": 1, "days": 1}, [row], {})["stages"][0]
    assert out["ratio"] > 0 and out["per_second"] > 0
    assert out["met"] in (True, False)
    assert out["target"]["memory_ratio_max"] == 2.0
    json.dumps(out)
    # Orthanc's storage went with its process; the drop and the lakehouse stay with the run.
    assert not (work / "orthanc").exists()
    shutil.rmtree(work)


# Inside the namespace: Orthanc started, its port printed, kept until stdin closes.
INSIDE = """
import subprocess, sys
from pathlib import Path
from gjh.bench import orthanc
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with orthanc.server(Path(sys.argv[1])) as (proc, port):
    print(port, proc.pid, flush=True)
    sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.integration
@pytest.mark.security
@NEEDS_ORTHANC
def test_orthanc_is_out_of_reach_outside_its_namespace_and_dies_with_its_starter(
    tmp_path: Path,
) -> None:
    cmd = ["unshare", "--net", "--map-root-user", "--", sys.executable, "-c", INSIDE]
    inside = subprocess.Popen(
        [*cmd, str(tmp_path / "orthanc")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=stage_env(),
        start_new_session=True,
    )
    pid = 0
    try:
        assert inside.stdout is not None and inside.stdin is not None
        port, pid = (int(v) for v in inside.stdout.readline().split())
        assert Path(f"/proc/{pid}").exists()  # Orthanc runs, listening in its namespace
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), timeout=5),
        ):
            pass
        # Its starter killed outright (no cleanup runs): Orthanc goes with it.
        os.kill(inside.pid, signal.SIGKILL)
        inside.wait(timeout=10)
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid)
    finally:
        for group in (inside.pid, pid):  # whatever is left, Orthanc's own group included
            if group:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
        inside.wait(timeout=10)
