"""``gjh serve``'s Dagster UI, started as an operator starts it: from the repository's root, with
the project's ``dagster.yaml`` copied into ``DAGSTER_HOME``. Nothing it prints may mislead them."""

from __future__ import annotations

import json
import os
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


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop ``gjh serve`` as Ctrl-C does; if it has not stopped within a minute (a signal
    ignored), kill every process group it started, then its own."""
    below = _descendants(process.pid)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
        return
    except subprocess.TimeoutExpired:
        pass
    for pid in [*below, process.pid]:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            continue
    process.wait(timeout=30)


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
            [GJH, "serve", "--app", "dagster", "--port", str(port)],
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
        _stop(process)
    text = log.read_text(errors="replace")
    assert f"http://127.0.0.1:{port}" in text, text
    assert (tmp_path / "dagster" / "dagster.yaml").exists()
    for words, meaning in MISLEADING.items():
        assert words not in text, f"{meaning}:\n{text}"
    with socket.socket() as s:  # nothing is left listening
        assert s.connect_ex(("127.0.0.1", port)) != 0
