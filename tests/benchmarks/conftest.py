"""Benchmark helpers: peak memory of a process tree, and where results go."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench-results"


def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, in KiB (Linux /proc)."""
    total = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        proc = Path(f"/proc/{pid}")
        try:
            for line in (proc / "status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in (proc / "task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_measured(cmd: list[str], **kwargs: Any) -> dict[str, Any]:
    """Run a command; return wall seconds, the peak resident memory of its whole process tree
    (sampled every 0.2 s, so worker processes count too) and what it printed."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **kwargs)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stdout)
    return {"seconds": time.perf_counter() - began, "peak_rss_mib": peak / 1024, "stdout": stdout}


def record(name: str, result: dict[str, Any]) -> None:
    """Write one benchmark's figures to bench-results/<name>.json and print them."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"\n{name}: {json.dumps(result, indent=1)}")
