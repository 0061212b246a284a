"""A PostgreSQL server of the tests' own, from Debian's binaries, on 127.0.0.1 only.

``server()`` makes a cluster in a temporary folder (``initdb``), starts ``postgres`` on a free
loopback port with its Unix socket in that folder, creates the database Dagster records into,
and stops it afterwards, whatever happened: SIGINT (PostgreSQL's fast shutdown), then SIGKILL
of its process group, because the shell that starts the tests may ignore SIGTERM and its
children inherit that. PostgreSQL refuses to run as root, so under root (a CI container) the
cluster belongs to Debian's ``postgres`` user and the server runs as it.

The settings are a test's: no fsync, no full-page writes, no synchronous commit (a crash of
the test loses nothing that matters); authentication is a password over TCP, as in production.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg2  # type: ignore[import-untyped]  # no stubs in the lock

BIN: Final = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
HOST: Final = "127.0.0.1"
USER: Final = "gjh"
PASSWORD: Final = "test-only-password"
DATABASE: Final = "dagster"
START_S: Final = 60.0
STOP_S: Final = 30.0


@dataclass(frozen=True)
class Server:
    """A running test server: where it listens, how to reach it, its postmaster's pid."""

    port: int
    pid: int
    data: Path

    @property
    def env(self) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` settings ``docs/dagster.production.yaml`` reads."""
        return {
            "DAGSTER_PG_HOST": HOST,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": DATABASE,
            "DAGSTER_PG_USER": USER,
            "DAGSTER_PG_PASSWORD": PASSWORD,
        }

    def connect(self, database: str = DATABASE) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host=HOST, port=self.port, dbname=database, user=USER, password=PASSWORD
        )


def installed() -> bool:
    """Whether Debian's PostgreSQL server binaries are here (``make postgres`` installs them)."""
    return bool(BIN)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _owner() -> str | None:
    """The user the cluster runs as: ``postgres`` under root, else the tests' own user."""
    return "postgres" if os.geteuid() == 0 else None


def _run(command: list[str], owner: str | None) -> None:
    subprocess.run(command, check=True, capture_output=True, user=owner)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown, then SIGKILL of the whole group (the postmaster and its backends)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=STOP_S)


@contextmanager
def server() -> Iterator[Server]:
    """A fresh cluster with the ``dagster`` database, listening on 127.0.0.1 only."""
    binaries = BIN[-1].parent
    owner = _owner()
    # Not pytest's tmp_path: its parents are private to the tests' user, and under root the
    # server runs as ``postgres``.
    top = Path(tempfile.mkdtemp(prefix="gjh-pg-"))
    data, sockets, pwfile = top / "data", top / "sockets", top / "password"
    sockets.mkdir()
    pwfile.write_text(PASSWORD, encoding="utf-8")
    if owner is not None:
        ids = pwd.getpwnam(owner)
        for path in (top, sockets, pwfile):
            os.chown(path, ids.pw_uid, ids.pw_gid)
    process = None
    try:
        _run(
            [
                str(binaries / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--locale=C.UTF-8", "--no-sync",
            ],
            owner,
        )  # fmt: skip
        port = _free_port()
        log = (top / "postgres.log").open("wb")
        process = subprocess.Popen(
            [
                str(binaries / "postgres"), "-D", str(data), "-k", str(sockets), "-h", HOST,
                "-p", str(port), "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "synchronous_commit=off", "-c", "max_connections=100",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=owner,
        )  # fmt: skip
        log.close()
        found = Server(port, process.pid, data)
        deadline = time.monotonic() + START_S
        while True:
            assert process.poll() is None, (top / "postgres.log").read_text(errors="replace")
            try:
                admin = found.connect("postgres")
                break
            except psycopg2.OperationalError:
                assert time.monotonic() < deadline, (top / "postgres.log").read_text()
                time.sleep(0.2)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
        admin.close()
        yield found
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(top, ignore_errors=True)
