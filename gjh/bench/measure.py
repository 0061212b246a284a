"""How much a process tree uses: peak resident memory (the sum of VmRSS over a process and all its
descendants, read from /proc by a sampling thread every 0.2 s, so worker processes count too)
and CPU seconds. Shared by ``gjh bench`` and the benchmark tests (tests/benchmarks); Linux only.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _tree(root: int) -> list[Path]:
    """The /proc folders of a process and all its descendants (Linux)."""
    found, stack = [], [root]
    while stack:
        proc = Path(f"/proc/{stack.pop()}")
        try:
            for task in (proc / "task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        found.append(proc)
    return found


def tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    total = 0
    for proc in _tree(root):
        try:
            for line in (proc / "status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user and system) a process and its living descendants have used."""
    ticks = 0
    for proc in _tree(root):
        try:
            fields = (proc / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


class Usage:
    """What a process tree uses while a ``with`` block runs: its peak resident memory (sampled
    every 0.2 s, so worker processes count too) and the CPU seconds it spent; with ``phase``
    called as the work moves on, each phase's own peak too (``phase_peak_mib``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_mib = 0.0
        self.cpu_s = 0.0
        self.phase_peak_mib: dict[str, float] = {}
        self._phase: str | None = None
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def phase(self, name: str) -> None:
        """The samples from now on belong to phase ``name``."""
        self._phase = name
        self.phase_peak_mib.setdefault(name, 0.0)

    def _sample(self) -> None:
        while not self._stop.is_set():
            now = tree_rss_kib(self.pid) / 1024
            self.peak_rss_mib = max(self.peak_rss_mib, now)
            if (phase := self._phase) is not None:
                self.phase_peak_mib[phase] = max(self.phase_peak_mib[phase], now)
            self._stop.wait(0.2)

    def __enter__(self) -> Usage:
        self.cpu_s = -tree_cpu_s(self.pid)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_s += tree_cpu_s(self.pid)
        self._stop.set()
        self._sampler.join()


def run_measured(
    cmd: list[str], phase: Callable[[str], str | None] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Run a command; return wall seconds, the peak resident memory of its whole process tree
    (``Usage``) and what it printed. With ``phase`` (a printed line -> the phase it starts, or
    None), also each phase's peak (``phase_peak_mib``): which stage of a long run held the
    memory."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **kwargs)
    with Usage(proc.pid) as usage:
        if phase is None:
            stdout, _ = proc.communicate()
        else:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if (name := phase(line)) is not None:
                    usage.phase(name)
            proc.wait()
            stdout = "".join(lines)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stdout)
    return {
        "seconds": time.perf_counter() - began,
        "peak_rss_mib": usage.peak_rss_mib,
        "phase_peak_mib": usage.phase_peak_mib,
        "stdout": stdout,
    }
