"""Orthanc, the DICOM intake peer of ``gjh bench``: what a hospital would run to receive the
same files, set against the project's command-line intake of a drop (``gjh intake``).

The peer is Debian's Orthanc (``/usr/sbin/Orthanc``) with a configuration of its own: its
storage and SQLite index in a temporary folder, a free HTTP port, the DICOM port and every
plugin disabled, no remote access and no authentication. Orthanc 1.10 has no option for the
address it listens on (it binds every interface and only refuses remote clients), so the peer
runs in a network namespace of its own (``unshare --net --map-root-user``) that holds nothing
but its loopback: Orthanc and its uploaders there reach 127.0.0.1 and nothing else can reach
Orthanc. Four uploader threads ``POST /instances`` every file, as a modality's or a gateway's
REST client would; its files per second are the files over the time from the first upload to
the last answer, and its peak memory is Orthanc's own process (``measure.Usage``), sampled
while it takes the files in.

The project's side is the whole command run from outside (``measure.run_measured``), start-up
included: ``gjh intake <drop>`` with its checks, into a fresh lakehouse.

The files are the city's own uploads, three copies of every valid one with new Study, Series and
SOP Instance UIDs of the same length written into the bytes (``drop``), so every copy is a
distinct instance of a distinct study and both sides store every file.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final

from gjh.bench.measure import Usage, run_measured, tree_rss_kib
from gjh.bench.report import Floor, Measured
from gjh.bench.stages import Context

ORTHANC: Final = Path("/usr/sbin/Orthanc")
UPLOADERS: Final = 4
# The drop: three copies of the city's uploads (as issue 23 measured), at least MIN_FILES files
# so that a quick city's drop is not all start-up on either side.
COPIES: Final = 3
MIN_FILES: Final = 5000
STAGE: Final = "DICOM intake"
STARTUP_S: Final = 30.0
PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>


def _renamed(uid: str, copy: int) -> str:
    """A distinct UID of the same length: the last six digits of the last component replaced
    (the same length keeps every element's declared length true)."""
    head, last = uid.rsplit(".", 1)
    if len(last) < 8:
        raise ValueError(f"{uid}: last component too short to vary")
    return f"{head}.{last[:-6]}{copy:06d}"


def originals(sources: Path) -> list[tuple[bytes, tuple[str, str, str], str]]:
    """Every valid upload of the city: (its bytes, its study, series and instance UIDs, the
    clinic's folder)."""
    import pydicom

    found = []
    for path in sorted((sources / "imaging").rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            uids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        except Exception:  # the city's faults and media directories are not intake material
            continue
        found.append((path.read_bytes(), uids, path.relative_to(sources).parts[1]))
    return found


def drop(sources: Path, out: Path, count: int | None = None) -> list[Path]:
    """``count`` instances (by default ``COPIES`` of each of the city's valid uploads, at least
    ``MIN_FILES``) under ``out/imaging/<YKIHO>/bench/<copy>/``, each copy with its own UIDs,
    settled (modified an hour ago)."""
    found = originals(sources)
    if not found:
        raise ValueError(f"no valid DICOM upload under {sources / 'imaging'}")
    if count is None:
        count = max(COPIES * len(found), MIN_FILES)
    files: list[Path] = []
    copy = 0
    while len(files) < count:
        copy += 1
        for original, uids, ykiho in found[: count - len(files)]:
            data = original
            for uid in uids:
                data = data.replace(uid.encode(), _renamed(uid, copy).encode())
            target = out / "imaging" / ykiho / "bench" / f"{copy:04d}" / f"{len(files)}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            files.append(target)
    past = time.time() - 3600
    for f in files:
        os.utime(f, (past, past))
    return files


def config(home: Path, port: int) -> dict[str, Any]:
    """Orthanc's configuration: its own storage and index under ``home``, HTTP on ``port``,
    no DICOM server, no plugins, no remote access, nothing kept between runs."""
    return {
        "Name": "gjh-bench",
        "StorageDirectory": str(home / "storage"),
        "IndexDirectory": str(home / "index"),
        "TemporaryDirectory": str(home / "tmp"),
        "HttpPort": port,
        "HttpServerEnabled": True,
        "HttpCompressionEnabled": False,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "OrthancExplorerEnabled": False,
        "WebDavEnabled": False,
        "Plugins": [],
        "StorageCompression": False,
        "SaveJobs": False,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"Orthanc GET {path}: HTTP {response.status}")
        return json.loads(body)
    finally:
        conn.close()


def _die_with_parent() -> None:
    """In Orthanc's process before it starts: SIGKILL it when the process that started it ends,
    however that ends (Linux's parent-death signal), so no Orthanc outlives a killed benchmark."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@contextmanager
def server(home: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Orthanc running from ``home`` (its configuration, storage, index and log there), until
    the block ends; (its process, its HTTP port). Stopped by its process group with SIGKILL,
    which the shell here cannot leave ignored."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "orthanc.json"
    settings.write_text(json.dumps(config(home, port), indent=1), encoding="utf-8")
    with (home / "orthanc.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(ORTHANC), str(settings)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads run yet where it is used)
        )
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"Orthanc exited ({proc.returncode}); see {home / 'orthanc.log'}"
                )
            try:
                _get(port, "/system")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Orthanc did not answer in {STARTUP_S:.0f} s") from None
                time.sleep(0.1)
        yield proc, port
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def upload(port: int, files: list[Path], uploaders: int = UPLOADERS) -> dict[str, int]:
    """``POST /instances`` every file from ``uploaders`` threads, each on its own kept-alive
    connection; Orthanc's answers counted by status (``Success``, ``AlreadyStored``...)."""
    counts: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()
    queue = iter(files)

    def work() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while True:
                with lock:
                    path = next(queue, None)
                if path is None:
                    return
                body = path.read_bytes()
                conn.request("POST", "/instances", body, {"Content-Type": "application/dicom"})
                response = conn.getresponse()
                answer = response.read()
                with lock:
                    if response.status != 200:
                        failures.append(f"{path}: HTTP {response.status}")
                        continue
                    status = json.loads(answer).get("Status", "?")
                    counts[status] = counts.get(status, 0) + 1
        finally:
            conn.close()

    threads = [threading.Thread(target=work) for _ in range(uploaders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"Orthanc refused {len(failures)} files, e.g. {failures[0]}")
    return counts


def peer(files: list[Path], home: Path, uploaders: int = UPLOADERS) -> dict[str, Any]:
    """Orthanc taking in ``files`` over REST: seconds from the first upload to the last
    answer, Orthanc's peak memory meanwhile, what it answered and what it then holds."""
    with server(home) as (proc, port):
        version = _get(port, "/system")["Version"]
        with Usage(proc.pid) as usage:
            began = time.perf_counter()
            statuses = upload(port, files, uploaders)
            seconds = time.perf_counter() - began
        # One more sample after the last answer: a short upload can end before the sampling
        # thread's first turn on a busy machine.
        peak = max(usage.peak_rss_mib, tree_rss_kib(proc.pid) / 1024)
        held = _get(port, "/statistics")
    return {
        "seconds": seconds,
        "items": len(files),
        "peak_rss_mib": peak,
        "cpu_s": usage.cpu_s,
        "version": version,
        "uploaders": uploaders,
        "statuses": statuses,
        "instances": int(held["CountInstances"]),
    }


def isolated(files_list: Path, home: Path, uploaders: int = UPLOADERS) -> list[str]:
    """The command that runs ``peer`` in a network namespace holding only a loopback."""
    return [
        "unshare", "--net", "--map-root-user", "--",
        sys.executable, "-m", "gjh.bench.orthanc", str(files_list), str(home), str(uploaders),
    ]  # fmt: skip


def against_orthanc(ctx: Context, count: int | None = None) -> Measured:
    """The stage: a drop of the city's uploads (``count`` files, by default as ``drop``
    chooses) taken in by Orthanc (the floor) and by ``gjh intake`` into a fresh lakehouse and
    Dagster instance, each measured from outside in this run."""
    work, env = ctx.work, ctx.env
    files = drop(ctx.sources, work / "intake-drop", count)
    listing = work / "intake-files.txt"
    listing.write_text("\n".join(str(f) for f in files), encoding="utf-8")
    orthanc = run_measured(isolated(listing, work / "orthanc"), env=dict(env))
    theirs = json.loads(orthanc["stdout"].strip().splitlines()[-1])
    lake_env = dict(env) | {
        "LAKEHOUSE_URI": str(work / "intake-lake"),
        "DAGSTER_HOME": str(work / "intake-dagster"),
    }
    cmd = [sys.executable, "-m", "gjh.cli", "intake", str(work / "intake-drop"), "--json"]
    ours = run_measured(cmd, env=lake_env)
    summary = json.loads(ours["stdout"].strip().splitlines()[-1])
    floor = Floor(
        f"Orthanc {theirs['version']}, {theirs['uploaders']} REST uploaders",
        theirs["seconds"],
        theirs["peak_rss_mib"],
    )
    return Measured(
        stage=STAGE,
        seconds=ours["seconds"],
        wall_seconds=ours["seconds"],
        items=len(files),
        unit="files",
        peak_rss_mib=ours["peak_rss_mib"],
        floor=floor,
        detail={
            "floor_items": theirs["items"],
            "orthanc_instances": theirs["instances"],
            "orthanc_statuses": theirs["statuses"],
            "orthanc_cpu_s": round(theirs["cpu_s"], 2),
            "intake": summary,
        },
    )


def main(argv: list[str]) -> int:
    """``python -m gjh.bench.orthanc <file list> <home> [uploaders]``, inside the namespace:
    bring its loopback up, run ``peer``, print its JSON line."""
    files_list, home = Path(argv[0]), Path(argv[1])
    uploaders = int(argv[2]) if len(argv) > 2 else UPLOADERS
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    files = [Path(p) for p in files_list.read_text(encoding="utf-8").split("\n") if p]
    try:
        result = peer(files, home, uploaders)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
