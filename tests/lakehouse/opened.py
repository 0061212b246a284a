"""Which files a piece of code opens under a folder, as the kernel saw it (inotify ``IN_OPEN``):
a count of the files a read touched that does not depend on which library opened them (Polars,
delta-rs and DuckDB open files from Rust and C++, where no Python hook sees them). Linux only."""

from __future__ import annotations

import ctypes
import os
import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

IN_OPEN = 0x00000020
IN_NONBLOCK = os.O_NONBLOCK
_EVENT = struct.Struct("iIII")


class Opened:
    """The files opened under the watched folders since the watch began, by path (relative to
    the root), with how many times each was opened."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.counts: Counter[str] = Counter()

    @property
    def files(self) -> set[str]:
        return set(self.counts)

    def data(self) -> set[str]:
        """The Parquet data files opened (not the Delta log's)."""
        return {f for f in self.counts if f.endswith(".parquet") and "_delta_log" not in f}

    def log(self) -> set[str]:
        """The Delta log's files opened (commits, checkpoints)."""
        return {f for f in self.counts if "_delta_log" in f}


@contextmanager
def opened(root: Path) -> Iterator[Opened]:
    """Watch every folder under ``root`` (as it is when the watch begins) for files opened."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    found = Opened(root)
    folders: dict[int, Path] = {}
    try:
        for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            wd = libc.inotify_add_watch(fd, str(folder).encode(), IN_OPEN)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")
            folders[wd] = folder
        yield found
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            at = 0
            while at < len(chunk):
                wd, _mask, _cookie, size = _EVENT.unpack_from(chunk, at)
                name = chunk[at + _EVENT.size : at + _EVENT.size + size].rstrip(b"\0").decode()
                at += _EVENT.size + size
                if name and wd in folders:
                    found.counts[str((folders[wd] / name).relative_to(root))] += 1
    finally:
        os.close(fd)
