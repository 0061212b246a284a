"""An app served with ``streamlit run`` on a free port of 127.0.0.1 until a block exits, as
``gjh bench``'s crowd stage (``gjh.bench.crowd``) and the browser tests serve the apps: each in a
process group of its own, stopped and reaped with everything it started, its output in a log
whose tail says why a server that failed to start did.

Not ``gjh serve`` (``gjh.serve``), which keeps the apps alive on their fixed ports: these servers
live for one run, on whatever port the kernel hands out, so runs never collide.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse import accounts

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class AppStartError(RuntimeError):
    """The app's server exited or never answered its health check."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick). Another process may take it
    before the app binds it; `run_app` retries on that."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, chars: int = 4000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return text[-chars:] if len(text) > chars else text


@dataclass
class AppServer:
    """One `streamlit run` process. `url` ends without a slash (http://127.0.0.1:PORT)."""

    script: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        return tail(self.log, chars)


# Servers that are running now: a failing browser test attaches their logs to its report.
LIVE_SERVERS: list[AppServer] = []


def _command(script: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--global.developmentMode",
        "false",
    ]


def healthy(port: int, timeout: float = 2.0) -> bool:
    """Whether the server on ``port`` answers ``GET /_stcore/health`` with ok within
    ``timeout`` seconds."""
    try:
        url = f"http://127.0.0.1:{port}/_stcore/health"
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(r.status == 200 and r.read().strip() == b"ok")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the app's process group, give it STOP_TIMEOUT_S, then SIGKILL whatever is left in
    the group (the leader if it hung, anything the app forked) and reap the leader."""
    pgid = process.pid  # start_new_session=True: the leader's pid is the group's id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    process.wait(timeout=STOP_TIMEOUT_S)


def _start(script: Path, env: Mapping[str, str], log: Path, cwd: Path, timeout: float) -> AppServer:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            _command(script, port),
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AppServer(script=script, port=port, process=process, log=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AppStartError(
                f"streamlit run {script} exited with code {process.returncode} before answering "
                f"on port {port}; its log ({log}) ends with:\n{server.log_tail()}"
            )
        if healthy(port):
            return server
        time.sleep(0.1)
    _stop(process)
    raise AppStartError(
        f"streamlit run {script} did not answer GET /_stcore/health with ok within "
        f"{timeout:.0f} s; its log ({log}) ends with:\n{server.log_tail()}"
    )


@contextlib.contextmanager
def run_app(
    script: Path,
    env: Mapping[str, str] | None = None,
    *,
    log_dir: Path | None = None,
    cwd: Path = ROOT,
    timeout: float = START_TIMEOUT_S,
) -> Iterator[AppServer]:
    """Serve `script` with `streamlit run` on a free localhost port until the block exits.

    `env` goes on top of os.environ. The working directory is the repository's root (as for
    `streamlit run apps/<name>/streamlit_app.py`), so the project's `.streamlit/config.toml`
    applies; the command-line flags win over it. stdout and stderr go to `<log_dir>/<stem>.log`
    (a fresh temporary folder without `log_dir`). Returns once `/_stcore/health` answers ok;
    raises AppStartError with the log's tail if the process dies or the timeout passes. On exit
    the whole process group is terminated and reaped: nothing outlives the block.
    """
    script = script.resolve()
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gjh-app-")))
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{script.parent.name}-{script.stem}.log"
        for attempt in range(3):
            try:
                server = _start(script, env or {}, log, cwd, timeout)
                break
            except AppStartError as e:
                # The port picked by free_port() can be taken before streamlit binds it.
                if attempt == 2 or "is already in use" not in str(e):
                    raise
        LIVE_SERVERS.append(server)
        try:
            yield server
        finally:
            LIVE_SERVERS.remove(server)
            _stop(server.process)


def signing_in(
    roster: Iterable[accounts.Account], folder: Path, session_key: str
) -> dict[str, str]:
    """The environment that has an app sign in the accounts of ``roster`` (saved in ``folder``),
    with its own session key."""
    saved = accounts.save({a.name: a for a in roster}, folder / "accounts.json")
    return {"GJH_ACCOUNTS": str(saved), "GJH_SESSION_KEY": session_key}
