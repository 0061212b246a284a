"""The reaper of ``gjh serve``: kills the servers' process groups once ``gjh serve`` is gone.

``gjh serve`` starts it first, in a session of its own, and keeps the write end of its standard
input. It writes ``+<pgid>`` for each server it starts and ``-<pgid>`` for each it stopped
itself. However ``gjh serve`` ends (Ctrl-C, SIGKILL, a kill of its process group, a crash), the
kernel closes that pipe; the reaper reads the end of it and kills every group still listed. A
group holds a server and whatever it started (the Dagster webserver's and daemon's code
servers), which ``PR_SET_PDEATHSIG`` would not reach: it is cleared for a server's own children.
Its own session keeps it out of reach of a kill of ``gjh serve``'s process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def reap() -> None:
    """Follow the groups listed on standard input; at its end, kill those still listed."""
    groups: set[int] = set()
    for line in sys.stdin:
        sign, pgid = line[:1], int(line[1:])
        if sign == "+":
            groups.add(pgid)
        else:
            groups.discard(pgid)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    reap()
