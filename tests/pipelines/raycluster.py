"""A Ray cluster of two nodes on this machine, of the tests' own, on 127.0.0.1 only.

``cluster()`` starts a head node (``ray start --head``) and a second node that joins it
(``ray start --address``), each with ``--block`` in a process group of its own, its output in a
file of the cluster's temporary folder (a pipe nobody reads would stall a daemon once full),
and stops both at the end whatever happened: SIGKILL of each node's process group, every
daemon and worker of a node being in its group (``ray stop`` would stop every Ray process of
the machine, another cluster's too).

Loopback only. ``--node-ip-address=127.0.0.1`` alone is not enough: Ray 2.60 replaces a
loopback node address with the machine's own (``services.resolve_ip_for_localhost``: the
source address of a UDP socket towards 8.8.8.8), and every daemon then binds that interface,
the GCS and the raylet even every interface. It keeps a loopback address only where "clusters
are disabled", the Windows/macOS default, which ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` turns on
for the head; the second node then takes no ``--node-ip-address`` and finds its address from
the head's (``get_node_ip_address(bootstrap_address)``: the source address towards
127.0.0.1, which is 127.0.0.1). Each daemon's port is a free loopback port chosen here, not
Ray's fixed defaults (two nodes on one machine, and other tests' servers). The dashboard is
off, usage statistics are off and ``RAY_AUTH_MODE=disabled`` (no token on a loopback-only
cluster).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from unittest.mock import patch

from tests.gjh.test_serve import _descendants

HOST: Final = "127.0.0.1"
RAY: Final = Path(sys.executable).parent / "ray"
CPUS_PER_NODE: Final = 2
START_S: Final = 180.0  # a node's start on a loaded 2-core machine took 30 s
KILLED_S: Final = 10.0
# The node daemons' ports, each chosen free on loopback (Ray's defaults are fixed numbers).
PORT_FLAGS: Final = (
    "--node-manager-port",
    "--object-manager-port",
    "--runtime-env-agent-port",
)
STARTED: Final = "Ray runtime started."
NODE_ID: Final = re.compile(r"Initializing NodeManager node_id=([0-9a-f]+)")
ATTEMPTS: Final = 3  # a node start that lost the agents' race (``_node``) is tried again
WORKER_PORTS: Final = 40  # each node's workers take ports from a range of this many


@dataclass
class Cluster:
    """A running two-node cluster: the address to connect to, and each node's ``ray start``."""

    address: str
    temp: Path
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """What a driver on this machine needs to reach the cluster as the engine does."""
        return {"GJH_ENGINE": "ray", "GJH_RAY_ADDRESS": self.address, **_RAY_ENV}

    @contextmanager
    def driver(self) -> Iterator[None]:
        """This process as a driver of the cluster on loopback: ``ray.init`` too replaces
        127.0.0.1 with the machine's address unless clusters are "disabled" (the same switch
        as the head's ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read at import, so set here)."""
        from ray._private import ray_constants

        with patch.object(ray_constants, "ENABLE_RAY_CLUSTER", False):
            yield

    def pids(self) -> list[int]:
        """Every process of the cluster: each node's ``ray start`` and every process below it
        (its daemons, and theirs: the agents, the workers of tasks and actors)."""
        return [p for n in self.nodes if n.poll() is None for p in (n.pid, *_descendants(n.pid))]


# ``ray start`` for the second node, keeping the loopback addresses it is given: with
# clusters "disabled" it would refuse to join, and enabled it replaces 127.0.0.1 (the head's
# address and its own) with the machine's address, where nothing listens.
JOIN_ON_LOOPBACK: Final = """
import sys
from ray._private import services
services.resolve_ip_for_localhost = lambda host: host
from ray.scripts.scripts import main
sys.exit(main())
"""
_RAY_ENV: Final = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A loaded machine starts the node agents slowly; the raylet waits 15 s for them by default.
    "RAY_agent_register_timeout_ms": "120000",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _free_range(size: int) -> tuple[int, int]:
    """``size`` consecutive ports, free now (the workers' gRPC servers take theirs from it)."""
    while True:
        first = _free_port()
        if first + size >= 65535:
            continue
        ports = range(first, first + size)
        try:
            with ExitStack() as stack:
                for port in ports:
                    s = stack.enter_context(socket.socket())
                    s.bind((HOST, port))
        except OSError:
            continue
        return first, first + size - 1


def _node_flags() -> list[str]:
    """Fresh ports for one node's daemons and workers."""
    low, high = _free_range(WORKER_PORTS)
    flags = [f"--min-worker-port={low}", f"--max-worker-port={high}"]
    return flags + [f"{flag}={_free_port()}" for flag in PORT_FLAGS]


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``ray start --block`` in a process group of its own, its output to ``log``."""
    command = [str(RAY)] if "--head" in args else [sys.executable, "-c", JOIN_ON_LOOPBACK]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*command, "start", "--block", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | _RAY_ENV | env,
            start_new_session=True,
        )


def _wait_started(node: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``ray start`` says the node runs (it has registered with the head's GCS by then)."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if STARTED in log.read_text(errors="replace"):
            return
        if node.poll() is not None:
            raise RuntimeError(f"a Ray node exited ({node.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"a Ray node had not started in {START_S:.0f} s: {log}")


def _stand_in_for_agents(temp: Path, done: threading.Event) -> None:
    """Write each new node's agent ports as its minimal agent will: none (-1).

    A raylet waits 15 s (hard-coded in Ray 2.60) for its dashboard agent to write the ports it
    serves, and aborts past that ("Timed out waiting for file .../metrics_agent_port_<node>").
    On this shared 2-core machine (load average 30-80 while the helpers' tests ran) the agent's
    Python start-up alone took 16-23 s, so nodes failed to start again and again. Without the
    dashboard's dependencies (the ``ray`` wheel alone, as here) the agent is minimal and
    serves no port: it writes -1 for all three once it is up. Writing the same -1 as soon as
    the raylet has its node id changes nothing but the wait.
    """
    from ray._private.utils import get_dashboard_dependency_error
    from ray._raylet import (  # type: ignore[attr-defined]  # a compiled module, no stubs
        DASHBOARD_AGENT_LISTEN_PORT_NAME,
        METRICS_AGENT_PORT_NAME,
        METRICS_EXPORT_PORT_NAME,
        persist_port,
    )

    if get_dashboard_dependency_error() is None:
        return  # a full agent serves real ports: only it may write them
    seen: set[str] = set()
    while not done.wait(0.2):
        for out in temp.glob("session_*/logs/raylet*.out"):
            for node in NODE_ID.findall(out.read_text(errors="replace")):
                if node in seen:
                    continue
                seen.add(node)
                for name in (
                    METRICS_AGENT_PORT_NAME,
                    METRICS_EXPORT_PORT_NAME,
                    DASHBOARD_AGENT_LISTEN_PORT_NAME,
                ):
                    if not (out.parent.parent / f"{name}_{node}").exists():
                        persist_port(str(out.parent.parent), node, name, -1)


def _kill(nodes: list[subprocess.Popen[bytes]]) -> None:
    """SIGKILL every node's process group (what the shell's ignored SIGTERM cannot stop)."""
    for node in nodes:
        with suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
    for node in nodes:
        with suppress(subprocess.TimeoutExpired):
            node.wait(timeout=KILLED_S)


def _node(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """One node started, tried again if it fails to (a loaded machine's timeouts)."""
    for attempt in range(1, ATTEMPTS + 1):
        node = _start([*args, *_node_flags()], log, env)
        try:
            _wait_started(node, log)
            return node
        except (RuntimeError, TimeoutError):
            _kill([node])
            if attempt == ATTEMPTS:
                raise
            log.rename(log.with_suffix(f".{attempt}.log"))
        except BaseException:  # interrupted: this node is nobody else's to stop
            _kill([node])
            raise
    raise AssertionError("unreachable")


@contextmanager
def cluster() -> Iterator[Cluster]:
    """Two Ray nodes on this machine, ``CPUS_PER_NODE`` logical CPUs each, stopped at the end."""
    # A short folder: Ray's Unix sockets live under it, and a socket path has 107 bytes at most.
    temp = Path(tempfile.mkdtemp(prefix="gjhray", dir="/tmp"))
    port = _free_port()
    address = f"{HOST}:{port}"
    running = Cluster(address, temp)
    common = [f"--num-cpus={CPUS_PER_NODE}", "--disable-usage-stats", f"--temp-dir={temp}"]
    head = [
        "--head",
        f"--node-ip-address={HOST}",
        f"--port={port}",
        "--include-dashboard=false",
        f"--ray-client-server-port={_free_port()}",
    ]
    done = threading.Event()
    stand_in = threading.Thread(target=_stand_in_for_agents, args=(temp, done), daemon=True)
    stand_in.start()
    try:
        running.nodes.append(
            _node([*head, *common], temp / "head.log", {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
        )
        joining = [f"--address={address}", f"--node-ip-address={HOST}", *common]
        running.nodes.append(_node(joining, temp / "node.log", {}))
        done.set()  # both raylets are past their wait
        yield running
    finally:
        done.set()
        stand_in.join()
        _kill(running.nodes)
        shutil.rmtree(temp, ignore_errors=True)
