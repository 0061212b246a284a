"""``gjh serve``: start the platform's servers and keep them in the foreground.

Each server runs in its own process group (the Dagster webserver and daemon each spawn a code
server), so stopping ``gjh serve`` (Ctrl-C or SIGTERM) stops every process it started and nothing
is left listening.
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


def app(name: str, host: str, port: int) -> Service:
    """One Streamlit app, headless, without usage stats. ``apps/<name>/serve.py`` serves its
    router (``streamlit_app.py``) with the route that sets the session cookie."""
    script = Path(__file__).resolve().parents[1] / "apps" / name / "serve.py"
    command = (
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.headless", "true", "--server.address", host, "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
    )  # fmt: skip
    url = f"http://{host}:{port}"
    return Service(APP_TITLES[name], command, url, f"{url}/_stcore/health")


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server's whole process group: politely, then for good. Once the server itself
    has ended, whatever it started in its group and left behind (a code server) is killed."""
    for sig, wait in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def serve(services: Sequence[Service], timeout_s: float = 120.0) -> int:
    """Start ``services``, print their URLs when they answer, and wait until stopped.

    Returns 0 when stopped by a signal, 1 when a server failed to start or exited.
    """

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Handled before the servers start, Ctrl-C and SIGTERM stop gjh serve even when the shell
    # that started it left them ignored (a background job ignores SIGINT, and may ignore
    # SIGTERM), and its servers start with both at their defaults: exec resets a handled signal,
    # while an ignored one would be inherited and leave them deaf to their stop.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes = [
        subprocess.Popen(s.command, stdin=subprocess.DEVNULL, start_new_session=True)
        for s in services
    ]
    try:
        deadline = time.monotonic() + timeout_s
        pending = list(services)
        while pending:
            if time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                print(f"gjh serve: {names} did not start within {timeout_s:.0f} s", file=sys.stderr)
                return 1
            for s, p in zip(services, processes, strict=True):
                if p.poll() is not None:
                    print(f"gjh serve: {s.name} exited ({p.returncode})", file=sys.stderr)
                    return 1
            for s in [s for s in pending if s.health is None or _up(s.health)]:
                pending.remove(s)
                print(f"  {s.name:<12} {s.url}", flush=True)
            time.sleep(0.5)
        print("Serving. Press Ctrl-C to stop.", flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in processes:
            _stop(p)
