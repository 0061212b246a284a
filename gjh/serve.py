"""``gjh serve``: start the platform's servers, keep them alive, and stop them all.

Each server runs in its own process group (the Dagster webserver and daemon each spawn a code
server), so stopping ``gjh serve`` (Ctrl-C or SIGTERM) stops every process it started and nothing
is left listening. When ``gjh serve`` cannot stop them itself (SIGKILL, a kill of its process
group), its reaper (``gjh.reaper``) kills their groups.

A watchdog keeps them alive. A server that has proved itself (its health endpoint answered; a
server without one, the Dagster daemon, by running for the watchdog's period) is restarted on
the same port, its whole group stopped first, when it exits or when its health endpoint has not
answered for the period (30 s by default): a hung Streamlit stops answering its health check but
keeps its port. Each restart is reported on stderr with the server's name and why. A server that
fails before it proved itself (it exits, or does not answer within the start timeout) ends
``gjh serve`` with status 1, as a misconfiguration (a port in use) would only fail again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

STOP_GRACE_S: Final = 10.0
RESTART_GRACE_S: Final = 2.0  # a hung server seldom handles SIGINT: little point waiting long
HEALTH_TIMEOUT_S: Final = 2.0
POLL_S: Final = 1.0


@dataclass(frozen=True)
class Service:
    """One server: what it is, how to start it, where it answers and how to tell it is up
    (``health`` None: a server without an address, up while its process runs)."""

    name: str
    command: tuple[str, ...]
    url: str
    health: str | None


# Where both Dagster processes load the project's Definitions from.
DEFINITIONS: Final = ("-m", "pipelines.definitions")


def dagster_ui(host: str, port: int) -> tuple[Service, Service]:
    """The Dagster UI (the webserver) and the daemon that runs its sensors, schedules and run
    queue, on this project's Definitions and the instance in ``DAGSTER_HOME``.

    They are started directly rather than through ``dagster dev``, which starts the same two:
    ``dagster dev`` is superseded (by ``dg dev``, which needs the ``dagster-dg-cli`` package and a
    dg project layout), and it warns that the repository's ``dagster.yaml`` is not used whenever
    it runs in the repository's root with ``DAGSTER_HOME`` elsewhere, although ``gjh`` copied that
    file into ``DAGSTER_HOME`` (``pipelines.instance.dagster_home``) and it is used.
    """
    folder = Path(sys.executable).parent
    url = f"http://{host}:{port}"
    webserver = (str(folder / "dagster-webserver"), *DEFINITIONS, "-h", host, "-p", str(port))
    daemon = (str(folder / "dagster-daemon"), "run", *DEFINITIONS)
    return (
        Service("Dagster UI", webserver, url, f"{url}/server_info"),
        Service("Dagster daemon", daemon, "sensors, schedules and the run queue", None),
    )


# The apps and their fixed default ports (the Dagster UI is on 3000).
APPS: Final = {"citizen": 8501, "clinician": 8502, "public_health": 8503, "admin": 8504}
APP_TITLES: Final = {
    "citizen": "citizen app",
    "clinician": "clinician app",
    "public_health": "public health",
    "admin": "admin app",
}


def script(name: str) -> Path:
    """What serves the app ``name`` (a key of ``APPS``): its ``apps/<name>/serve.py``, which
    serves its router (``streamlit_app.py``) with the route that sets the session cookie."""
    return Path(__file__).resolve().parents[1] / "apps" / name / "serve.py"


def app(name: str, host: str, port: int) -> Service:
    """One Streamlit app, headless, without usage stats, served by its ``script``."""
    command = (
        sys.executable, "-m", "streamlit", "run", str(script(name)),
        "--server.headless", "true", "--server.address", host, "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
    )  # fmt: skip
    url = f"http://{host}:{port}"
    return Service(APP_TITLES[name], command, url, f"{url}/_stcore/health")


def answers(url: str) -> bool:
    """Whether a health endpoint answers 200 within ``HEALTH_TIMEOUT_S``."""
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """Stop a server's whole process group: politely, then for good. Once the server itself
    has ended, whatever it started in its group and left behind (a code server) is killed.
    SIGCONT lets a stopped group take its SIGINT."""
    for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGKILL, STOP_GRACE_S)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
            os.killpg(process.pid, signal.SIGCONT)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _say(message: str) -> None:
    print(f"gjh serve: {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class _Servers:
    """The running servers, each in a process group of its own that the reaper knows of."""

    def __init__(self) -> None:
        read, write = os.pipe()  # both ends close on exec; the reaper gets ``read`` as stdin
        self.reaper = subprocess.Popen(
            (sys.executable, "-m", "gjh.reaper"), stdin=read, start_new_session=True
        )
        os.close(read)
        self.pipe = os.fdopen(write, "wb", buffering=0)
        self.running: list[_Running] = []

    def start(self, service: Service) -> _Running:
        process = subprocess.Popen(
            service.command, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self._tell(f"+{process.pid}")
        return _Running(service, process, time.monotonic())

    def stop(self, running: _Running, grace_s: float = STOP_GRACE_S) -> None:
        _stop(running.process, grace_s)
        self._tell(f"-{running.process.pid}")

    def _tell(self, line: str) -> None:
        """Tell the reaper of a group (a reaper that died cannot hear it: ``close`` stops all)."""
        with contextlib.suppress(BrokenPipeError):
            self.pipe.write(f"{line}\n".encode())

    def close(self) -> None:
        """Stop every server, then let the reaper go (it kills what is left, if anything)."""
        for r in self.running:
            self.stop(r)
        with contextlib.suppress(BrokenPipeError):
            self.pipe.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.reaper.wait(timeout=STOP_GRACE_S)


@dataclass
class _Running:
    """One server's current process: when it started, when its health last answered, and
    whether its URL (or its return, after a restart) has been reported."""

    service: Service
    process: subprocess.Popen[bytes]
    started: float
    answered: float | None = None
    reported: bool = False

    def check(self, period_s: float, timeout_s: float) -> str | None:
        """Why this process needs replacing (None: it is fine), recording a health answer."""
        if (code := self.process.poll()) is not None:
            return f"exited ({code})"
        health, now = self.service.health, time.monotonic()
        if health is None:
            return None
        if answers(health):
            self.answered = now
            return None
        if self.answered is None:
            return (
                f"did not start within {timeout_s:.0f} s"
                if now - self.started > timeout_s
                else None
            )
        silent = now - self.answered
        return f"{health} has not answered for {silent:.0f} s" if silent > period_s else None

    def proven(self, period_s: float) -> bool:
        """Whether it ever worked: its health answered, or (without one) it ran for a period."""
        if self.service.health is None:
            return time.monotonic() - self.started >= period_s
        return self.answered is not None


def serve(
    services: Sequence[Service], timeout_s: float = 120.0, unresponsive_s: float = 30.0
) -> int:
    """Start ``services``, print their URLs when they answer, keep them alive until stopped.

    Args:
        services: What to run.
        timeout_s: How long a server (a restarted one too) may take to answer at first.
        unresponsive_s: The watchdog's period: a working server whose health endpoint has not
            answered for this long is restarted.

    Returns 0 when stopped by a signal, 1 when a server failed before it ever worked.
    """

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Handled before the servers start, Ctrl-C and SIGTERM stop gjh serve even when the shell
    # that started it left them ignored (a background job ignores SIGINT, and may ignore
    # SIGTERM), and its servers start with both at their defaults: exec resets a handled signal,
    # while an ignored one would be inherited and leave them deaf to their stop.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    servers = _Servers()
    try:
        for s in services:
            servers.running.append(servers.start(s))
        serving = False
        while True:
            for i, r in enumerate(servers.running):
                why = r.check(unresponsive_s, timeout_s)
                if why is None:
                    if not r.reported and r.proven(0):
                        r.reported = True
                        if serving:
                            _say(f"{r.service.name} is back (pid {r.process.pid})")
                        else:
                            print(f"  {r.service.name:<12} {r.service.url}", flush=True)
                    continue
                if not r.proven(unresponsive_s):
                    _say(f"{r.service.name} {why}")
                    return 1
                _say(f"restarting {r.service.name} (pid {r.process.pid}): {why}")
                servers.stop(r, RESTART_GRACE_S)
                servers.running[i] = servers.start(r.service)
            if not serving and all(r.reported for r in servers.running):
                serving = True
                print("Serving. Press Ctrl-C to stop.", flush=True)
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        return 0
    finally:
        servers.close()
