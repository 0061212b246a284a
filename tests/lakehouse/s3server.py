"""A real S3-compatible server of the tests' own: Debian's Ceph as a single node on 127.0.0.1.

``server()`` makes a Ceph cluster in a temporary folder: one monitor (``monmaptool``,
``ceph-mon --mkfs``), one OSD on ``memstore`` (objects in memory: nothing to format, gone at
the end) and the RADOS Gateway (``radosgw``) serving S3 with its Beast frontend on a free
loopback port. It creates an S3 user (``radosgw-admin``) and yields the endpoint and keys;
tests create their buckets through S3 itself (``Server.create_bucket``).

Everything binds 127.0.0.1 (the monitor, the OSD's public and cluster messengers, Beast).
Authentication between the daemons is ``none``: one node in a temporary folder, nothing to
guard; S3 requests are still signed with the user's keys (SigV4) and checked by radosgw. With
no cephx, every messenger must speak ``crc`` mode: a daemon's default asks the monitor for
``secure`` mode, which needs cephx session keys, and its connection is refused (EACCES) until
it times out after five minutes. No manager daemon runs: the gateway and the OSD do not need
one (the cluster reports ``HEALTH_WARN``, which nothing here reads).

The daemons run in the foreground, each in a process group of its own, as the user running
the tests (root in CI: Ceph's packaged units switch to the ``ceph`` user with ``--setuser``,
which a temporary cluster owned by the tests does not need). They are stopped at the end
whatever happened: SIGTERM to each group, then SIGKILL after a grace, because the shell that
starts the tests may ignore SIGTERM and its children inherit that (an OSD was seen to outlive
its SIGTERM here).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

import pyarrow.fs as pafs

HOST: Final = "127.0.0.1"
BINARIES: Final = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")
ACCESS_KEY: Final = "GJHTESTACCESSKEY0001"
SECRET_KEY: Final = "test-only-secret-key-not-a-real-one-0001"
REGION: Final = "us-east-1"  # radosgw's default zonegroup accepts any; SigV4 needs one
START_S: Final = 120.0
STOP_S: Final = 2.0
MEMSTORE_BYTES: Final = 2 << 30  # the OSD's capacity, held in memory only as objects fill it


@dataclass(frozen=True)
class Server:
    """A running gateway: where it listens, the S3 user's keys, the cluster's folder and how
    long it took to start (measured from the first command to the first S3 answer)."""

    port: int
    root: Path
    started_s: float

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self, bucket: str, prefix: str = "lakehouse") -> dict[str, str]:
        """The settings a deployment sets for a lakehouse in ``s3://bucket/prefix``: the
        ``AWS_*`` variables ``lakehouse.config`` passes to delta-rs (and nothing else: no
        ``AWS_S3_ALLOW_UNSAFE_RENAME``, radosgw honours conditional puts)."""
        return {
            "LAKEHOUSE_URI": f"s3://{bucket}/{prefix}",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def filesystem(self) -> pafs.S3FileSystem:
        """An S3 client of the user (Arrow's), path-style on the loopback endpoint."""
        return pafs.S3FileSystem(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
            endpoint_override=f"{HOST}:{self.port}",
            scheme="http",
            allow_bucket_creation=True,
        )

    def put_if_absent(self, key: str, data: bytes) -> int:
        """PUT ``bucket/key`` with ``If-None-Match: *``, as delta-rs puts a commit file, signed
        here with AWS Signature V4 (no S3 client on the test's path exposes the header);
        returns the HTTP status: 200 written, 412 refused because the object exists."""
        now = datetime.now(UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        path = "/" + urllib.parse.quote(key)
        headers = {
            "host": f"{HOST}:{self.port}",
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
            "x-amz-date": stamp,
        }
        signed = ";".join(headers)
        canonical = "\n".join(
            ["PUT", path, "", *(f"{k}:{v}" for k, v in headers.items()), "", signed,
             "UNSIGNED-PAYLOAD"]
        )  # fmt: skip
        scope = f"{day}/{REGION}/s3/aws4_request"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        key_ = f"AWS4{SECRET_KEY}".encode()
        for part in (day, REGION, "s3", "aws4_request"):
            key_ = hmac.new(key_, part.encode(), hashlib.sha256).digest()
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"
        signature = hmac.new(key_, to_sign.encode(), hashlib.sha256).hexdigest()
        request = urllib.request.Request(f"{self.endpoint}{path}", data=data, method="PUT")
        for name, value in headers.items():
            request.add_header(name, value)
        request.add_header("If-None-Match", "*")
        request.add_header(
            "Authorization",
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={signed}, "
            f"Signature={signature}",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as refused:
            return int(refused.code)

    def create_bucket(self, name: str) -> None:
        """Create a bucket with an S3 ``CreateBucket`` call."""
        self.filesystem().create_dir(name)


def installed() -> bool:
    """Whether Debian's Ceph daemons are here (``make s3`` installs them)."""
    return all(shutil.which(b) for b in (*BINARIES, "ceph-authtool"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _config(root: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    """The cluster's ``ceph.conf``: one node, no replication, loopback only, no cephx."""
    return f"""[global]
fsid = {fsid}
mon host = v2:{HOST}:{mon_port}
public addr = {HOST}
cluster addr = {HOST}
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
osd objectstore = memstore
memstore device bytes = {MEMSTORE_BYTES}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
run dir = {root}/run
admin socket = {root}/run/$name.asok
log file = {root}/log/$name.log
keyring = {root}/keyring
mon data = {root}/mon
osd data = {root}/osd$id
rgw data = {root}/rgw
rgw frontends = beast endpoint={HOST}:{rgw_port}
rgw thread pool size = 32
"""


def _run(root: Path, *args: str) -> str:
    done = subprocess.run(
        [*args, "-c", str(root / "ceph.conf")],
        capture_output=True,
        text=True,
        timeout=START_S,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def _tails(root: Path) -> str:
    """The end of each daemon's log (the folder is removed once the server stops)."""
    return "\n".join(
        f"{log.name}: {log.read_text(errors='replace')[-1500:]}"
        for log in sorted((root / "log").glob("*"))
    )


def _stop(daemons: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every daemon's group, SIGKILL to those still there after the grace."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        for daemon in daemons:
            if daemon.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(daemon.pid, sent)
        deadline = time.monotonic() + STOP_S
        for daemon in daemons:
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.wait(timeout=max(0.1, deadline - time.monotonic()))
        if all(d.poll() is not None for d in daemons):
            return


@contextmanager
def server() -> Iterator[Server]:
    """A single-node Ceph with its S3 gateway, stopped and removed afterwards."""
    began = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="gjh-ceph-"))
    daemons: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []

    def start(*args: str) -> None:
        log = (root / "log" / f"{args[0]}.out").open("wb")
        logs.append(log)
        daemons.append(
            subprocess.Popen(
                [*args, "-f", "-c", str(root / "ceph.conf")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    try:
        for folder in ("run", "log", "mon", "osd0", "rgw"):
            (root / folder).mkdir()
        fsid, mon_port, rgw_port = str(uuid.uuid4()), _free_port(), _free_port()
        (root / "ceph.conf").write_text(_config(root, fsid, mon_port, rgw_port))
        _run(root, "ceph-authtool", str(root / "keyring"), "--create-keyring", "--gen-key")
        _run(root, "monmaptool", "--create", "--fsid", fsid, "--addv", "a",
             f"[v2:{HOST}:{mon_port}]", str(root / "monmap"))  # fmt: skip
        _run(root, "ceph-mon", "--mkfs", "-i", "a", "--monmap", str(root / "monmap"))
        start("ceph-mon", "-i", "a")
        osd = str(uuid.uuid4())
        _run(root, "ceph", "osd", "new", osd)  # waits for the monitor; the OSD is id 0
        _run(root, "ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd)
        start("ceph-osd", "-i", "0")
        start("radosgw", "-n", "client.rgw")
        deadline = time.monotonic() + START_S
        while not _serving(rgw_port):
            dead = [str(d.args) for d in daemons if d.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"Ceph did not start ({dead or 'timeout'}):\n{_tails(root)}")
            time.sleep(0.2)
        _run(root, "radosgw-admin", "user", "create", "--uid", "gjh", "--display-name", "gjh",
             "--access-key", ACCESS_KEY, "--secret", SECRET_KEY)  # fmt: skip
        yield Server(rgw_port, root, time.perf_counter() - began)
    finally:
        _stop(daemons)
        for log in logs:
            log.close()
        shutil.rmtree(root, ignore_errors=True)
