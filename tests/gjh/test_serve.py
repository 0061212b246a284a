"""``gjh serve`` as an operator runs it: from the repository's root, as a background job of a
shell that ignores SIGINT and SIGTERM. Its Dagster UI prints nothing misleading; a hung or dead
app is restarted on its port and the restart logged; nothing it started outlives it, however it
is killed; served after a build (as ``make demo`` does), its daemon queues no run until a new
delivery arrives."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from gjh.serve import answers
from tests.pipelines.conftest import Lake, resend

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
TICKS = """{ sensorOrError(sensorSelector: {repositoryLocationName: "pipelines.definitions",
  repositoryName: "__repository__", sensorName: "%s"}) {
  __typename ... on Sensor { sensorState { ticks(limit: 10) { status skipReason runIds } } } } }"""
LAUNCHED = """{ runsOrError(filter: {tags: [{key: "dagster/sensor_name", value: "%s"}]}) {
  ... on Runs { count } } }"""


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
    _kill_all([*left, process.pid])
    process.wait(timeout=30)
    return stopped, left


def _serve(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """``gjh serve`` with ``args``, logging to ``serve.log`` in ``tmp_path``, in a process group
    of its own (gjh serve leads it), as a shell's background job runs it: SIGINT and SIGTERM
    ignored, and inherited."""
    env = os.environ | {  # the sensors look at an empty drop folder, not the developer's
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "GJH_SOURCES": str(tmp_path / "sources"),
        "LAKEHOUSE_URI": str(tmp_path / "lakehouse"),
    }
    command = shlex.join([GJH, "serve", *args])
    with (tmp_path / "serve.log").open("wb") as out:
        return subprocess.Popen(
            ["sh", "-c", f'trap "" INT TERM; exec {command}'],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(process: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool]) -> None:
    """Wait until ``ready()``, as long as ``gjh serve`` runs (its log tells why not)."""
    deadline = time.monotonic() + START_S
    while not ready():
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.5)


def _kill_all(pids: list[int]) -> None:
    """Kill the process groups of ``pids`` (whatever a failed test left)."""
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            continue


def test_the_dagster_ui_starts_without_misleading_warnings(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    assert (ROOT / "dagster.yaml").exists()  # the condition of the old warning
    process = _serve(tmp_path, "--app", "dagster", "--port", str(port))
    try:
        _wait(process, log, lambda: _sensors_run(port))
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


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:  # it has ended
        return b""


def _apps(process: subprocess.Popen[bytes]) -> list[int]:
    """The Streamlit servers running below ``gjh serve``."""
    return [p for p in _alive(_descendants(process.pid)) if b"streamlit" in _command(p)]


def _replaced(process: subprocess.Popen[bytes], old: int, health: str) -> Callable[[], bool]:
    """Whether one Streamlit server other than ``old`` runs below ``gjh serve`` and answers."""
    return lambda: len(apps := _apps(process)) == 1 and apps[0] != old and answers(health)


def _said(log: Path, words: str, times: int) -> Callable[[], bool]:
    """Whether ``gjh serve`` has logged ``words`` ``times`` times."""
    return lambda: log.read_text(errors="replace").count(words) == times


def test_an_app_that_hangs_or_dies_is_restarted_on_its_port(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    health = f"http://127.0.0.1:{port}/_stcore/health"
    process = _serve(tmp_path, "--app", "citizen", "--port", str(port), "--unresponsive", "3")
    try:
        _wait(process, log, _said(log, "Serving.", 1))  # gjh serve saw it answer
        [hung] = _apps(process)
        os.kill(hung, signal.SIGSTOP)  # keeps its port, answers nothing: as a deadlock does
        _wait(process, log, _replaced(process, hung, health))
        assert not _alive([hung]), "the hung app was not stopped"
        _wait(process, log, _said(log, "citizen app is back", 1))  # gjh serve saw it work
        [restarted] = _apps(process)
        os.kill(restarted, signal.SIGKILL)
        _wait(process, log, _replaced(process, restarted, health))
        _wait(process, log, _said(log, "citizen app is back", 2))
    finally:
        stopped, left = _stop(process)
    assert stopped and not left, left
    text = log.read_text(errors="replace")
    assert f"restarting citizen app (pid {hung}): {health} has not answered" in text, text
    assert f"restarting citizen app (pid {restarted}): exited (-9)" in text, text


@pytest.mark.parametrize("kill", ["process", "process group"])
def test_nothing_outlives_a_killed_gjh_serve(tmp_path: Path, kill: str) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    process = _serve(tmp_path, "--app", "dagster", "--port", str(port))
    tree: list[int] = []
    try:
        # The daemon's sensors run in its code server: the whole tree is up.
        _wait(process, log, lambda: _sensors_run(port))
        tree = _descendants(process.pid)
        if kill == "process":
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [_command(pid)[:200] for pid in _alive(tree)]
    finally:
        _kill_all([*_alive(tree), process.pid])
    assert not left, f"outlived gjh serve: {left}"
    assert len(tree) >= 4, tree  # the webserver, the daemon, their code servers, the reaper
    assert not _listening(port), _listening(port)


def _listening(port: int) -> list[bytes]:
    """The command lines of the processes listening on ``port`` (on a shared machine another
    test may have taken the port since, so the message says who holds it)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    holders = []
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if str(fd.readlink()) in inodes:
                holders.append(_command(int(fd.parent.parent.name))[:200])
        except OSError:
            continue
    return holders


def _ticks(port: int, sensor: str) -> list[dict[str, object]]:
    """The sensor's finished ticks in the served instance, newest first."""
    data = _graphql(port, TICKS % sensor)
    if data is None or data["sensorOrError"]["__typename"] != "Sensor":  # type: ignore[index]
        return []
    ticks: list[dict[str, object]] = data["sensorOrError"]["sensorState"]["ticks"]  # type: ignore[index]
    return [t for t in ticks if t["status"] != "STARTED"]


def _launched(port: int, sensor: str) -> int:
    """How many runs the sensor has launched (also while its tick is still launching them)."""
    data = _graphql(port, LAUNCHED % sensor)
    return 0 if data is None else int(data["runsOrError"]["count"])  # type: ignore[index]


def _ticked(port: int, sensor: str) -> Callable[[], bool]:
    """Whether the sensor's first tick has finished or launched a run."""
    return lambda: bool(_ticks(port, sensor) or _launched(port, sensor))


def test_a_served_build_queues_nothing_until_a_delivery_arrives(
    small_build: Lake, tmp_path: Path
) -> None:
    # make demo: gjh build into the lakehouse and the instance (the session's build of the small
    # city, copied with its Dagster home), then gjh serve on both. The drop folder is copied with
    # its files' times (the ledgers know a file by its path and modification time); the city's
    # studies landed in 2025, so every study was quiet at build time and the build routed them
    # all.
    small_build.copy(tmp_path)
    shutil.copytree(small_build.sources, tmp_path / "sources")
    port = _free_port()
    log = tmp_path / "serve.log"
    process = _serve(tmp_path, "--app", "dagster", "--port", str(port))
    try:
        for sensor in ("drop_folder", "imaging_drop"):  # the daemon's first tick of each
            _wait(process, log, _ticked(port, sensor))
            assert not _launched(port, sensor), f"{sensor} launched runs"
            [tick] = _ticks(port, sensor)
            assert tick["status"] == "SKIPPED", (sensor, tick)
        # A resent month arrives: the next tick (a minute later) launches exactly its run.
        resend(tmp_path / "sources" / "claims" / "202504", "202504-resend-9")
        _wait(process, log, lambda: len(_ticks(port, "drop_folder")) == 2)
        second = _ticks(port, "drop_folder")[0]
    finally:
        stopped, left = _stop(process)
    assert stopped and not left, left
    assert second["status"] == "SUCCESS" and len(second["runIds"]) == 1, second  # type: ignore[arg-type]
