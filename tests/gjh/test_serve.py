"""``gjh serve``'s Dagster UI, started as an operator starts it: from the repository's root, with
the project's ``dagster.yaml`` copied into ``DAGSTER_HOME``. Nothing it prints may mislead them."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

GJH = str(Path(sys.executable).with_name("gjh"))
ROOT = Path(__file__).resolve().parents[2]
START_S = 180.0
# What the log must not say, and what each line would tell an operator.
MISLEADING = {
    "superseded": "the command gjh serve runs is superseded (dagster dev by dg dev)",
    "will not be used to configure Dagster": "the project's dagster.yaml is not used",
}
DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _graphql(port: int, query: str) -> dict[str, object] | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            data: dict[str, object] = json.loads(response.read())["data"]
            return data
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _sensors_run(port: int) -> bool:
    """The UI answers and its daemon (which runs the drop-folder sensors) is heartbeating."""
    data = _graphql(port, DAEMONS)
    if data is None:
        return False
    statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]  # type: ignore[index]
    return any(s["daemonType"] == "SENSOR" and s["healthy"] for s in statuses)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the servers run in process groups of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pids: list[int]) -> list[int]:
    """The processes among ``pids`` that still run (a zombie has ended: only its exit status
    waits to be collected)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _stop(process: subprocess.Popen[bytes]) -> tuple[bool, list[int]]:
    """Stop ``gjh serve`` as Ctrl-C does. Returns whether it stopped by itself within a minute
    and what it had started that is still alive after that. If it did not stop, every process
    group it started is killed, and its own, so that no server outlives the test."""
    below = _descendants(process.pid)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
        stopped = True
    except subprocess.TimeoutExpired:
        stopped = False
    deadline = time.monotonic() + 30  # a killed process is gone once the kernel reaps it
    while _alive(below) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _alive(below)
    for pid in [*left, process.pid]:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            continue
    process.wait(timeout=30)
    return stopped, left


def test_the_dagster_ui_starts_without_misleading_warnings(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    env = os.environ | {  # the sensors look at an empty drop folder, not the developer's
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "GJH_SOURCES": str(tmp_path / "sources"),
        "LAKEHOUSE_URI": str(tmp_path / "lakehouse"),
    }
    assert (ROOT / "dagster.yaml").exists()  # the condition of the old warning
    with log.open("wb") as out:
        process = subprocess.Popen(
            # As a shell's background job runs it: SIGINT and SIGTERM ignored, and inherited.
            [
                "sh",
                "-c",
                f'trap "" INT TERM; exec {shlex.quote(GJH)} serve --app dagster --port {port}',
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_S
        while not _sensors_run(port):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(1)
    finally:
        stopped, left = _stop(process)
    assert stopped, "gjh serve did not stop on Ctrl-C"
    assert not left, f"servers outlived gjh serve: {left}"
    text = log.read_text(errors="replace")
    assert f"http://127.0.0.1:{port}" in text, text
    assert (tmp_path / "dagster" / "dagster.yaml").exists()
    for words, meaning in MISLEADING.items():
        assert words not in text, f"{meaning}:\n{text}"
    with socket.socket() as s:  # nothing is left listening
        assert s.connect_ex(("127.0.0.1", port)) != 0
