"""Loopback only: every server the platform starts listens on 127.0.0.1 (or ::1) and nowhere
else. ``gjh serve`` runs each app and the Dagster UI (webserver, daemon, their code servers),
here on the production instance, PostgreSQL, started as the tests start it; every listening TCP
socket of their process trees is found from ``/proc`` (the sockets' inodes in each process's
file descriptors, their addresses in ``/proc/<pid>/net/tcp`` and ``tcp6``)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from gjh.serve import APPS, answers
from lakehouse.config import environment
from tests.gjh.test_serve import ROOT, _descendants, _free_port, _sensors_run, _serve, _stop, _wait
from tests.pipelines import postgres

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.security,
    pytest.mark.skipif(not postgres.installed(), reason="no PostgreSQL: `make postgres`"),
]

LISTEN = "0A"  # the kernel's TCP state code for LISTEN


def _address(hex_address: str) -> tuple[str, int]:
    """``/proc/net/tcp``'s ``ADDR:PORT`` (the address in host byte order, 32-bit words)."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(swapped)), int(port, 16)


def listening(pids: list[int]) -> dict[tuple[str, int], int]:
    """The listening TCP sockets (IPv4 and IPv6) of ``pids``: address and port, by owner."""
    owners: dict[str, int] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = str(fd.readlink())
            except OSError:  # closed meanwhile, or the process ended
                continue
            if target.startswith("socket:["):
                owners[target[8:-1]] = pid
    found = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/self/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN and fields[9] in owners:
                found[_address(fields[1])] = owners[fields[9]]
    return found


def test_the_socket_reader_sees_a_server_listening_everywhere() -> None:
    """What the test below would report: a listener on every interface, IPv4 and IPv6."""
    with (
        socket.create_server(("0.0.0.0", 0)) as four,
        socket.create_server(("::", 0), family=socket.AF_INET6) as six,
        socket.create_server(("127.0.0.1", 0)) as loopback,
    ):
        found = listening([os.getpid()])
        assert found[("0.0.0.0", four.getsockname()[1])] == os.getpid()
        assert ("::", six.getsockname()[1]) in found
        assert ("127.0.0.1", loopback.getsockname()[1]) in found


@pytest.fixture
def server() -> Iterator[postgres.Server]:
    with postgres.server() as running, environment(**running.env):
        yield running


def test_every_server_listens_on_loopback_only(server: postgres.Server, tmp_path: Path) -> None:
    ports = {name: _free_port() for name in ("dagster", *APPS)}
    homes = {name: tmp_path / name for name in ports}
    for home in homes.values():
        home.mkdir()
    (homes["dagster"] / "dagster").mkdir()
    shutil.copyfile(
        ROOT / "docs" / "dagster.production.yaml", homes["dagster"] / "dagster" / "dagster.yaml"
    )
    running: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, port in ports.items():
            running[name] = _serve(homes[name], "--app", name, "--port", str(port))
        _wait(
            running["dagster"],
            homes["dagster"] / "serve.log",
            lambda: _sensors_run(ports["dagster"]),
        )
        for name in APPS:
            health = f"http://127.0.0.1:{ports[name]}/_stcore/health"
            _wait(running[name], homes[name] / "serve.log", partial(answers, health))
        pids = [server.pid, *_descendants(server.pid)]
        for process in running.values():
            pids += [process.pid, *_descendants(process.pid)]
        sockets = listening(pids)
        print(f"loopback-measured: {len(pids)} processes, listening on {sorted(sockets)}")
    finally:
        for process in running.values():
            _stop(process)
    wanted = {("127.0.0.1", port) for port in (server.port, *ports.values())}
    assert wanted <= set(sockets), (wanted, sockets)
    elsewhere = {a: pid for a, pid in sockets.items() if not ipaddress.ip_address(a[0]).is_loopback}
    assert not elsewhere, {
        a: (Path(f"/proc/{p}/cmdline").read_bytes()[:200]) for a, p in elsewhere.items()
    }
