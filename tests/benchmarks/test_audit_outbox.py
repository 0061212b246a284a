"""The audit row's cost to a call, before (one Delta commit to ``ops.audit_log``) and after the
outbox (one SQLite transaction, fsynced; ``lakehouse.outbox``), in the same run.

Every audited read, the citizen's timeline among them, ends with its audit row, and the row used
to be most of the timeline call (docs/benchmarks.md: 55 of 90 ms at p50). The log is first given
a history (``HISTORY`` appends, compacted every ``COMPACT_EVERY`` as in use), then, ``RUNS``
times each, one row of the timeline's audit entry is appended:

* direct: ``lakehouse.delta.append`` of the row, the compaction rule included (the append path
  before the outbox);
* outbox: ``lakehouse.audit.append`` with the process's flusher running (``start_flusher``,
  every ``FLUSH_SECONDS``): what the call pays now; the commits the flusher made meanwhile, and
  how long after the last append the outbox was empty, are recorded too.

Then ``THREADS`` threads append ``PER_THREAD`` rows each at once, as many sessions of one app
process would (a worklist refresh is one row): rows a second, both ways. Wall time and this
process's CPU time are kept: the machine is shared.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import polars as pl
import pytest

from lakehouse import audit, delta
from lakehouse import read as lake
from lakehouse.catalog import table
from tests.benchmarks.conftest import record
from tests.benchmarks.test_officials import _p95, _timed

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(0)]
HISTORY: Final = 300
RUNS: Final = 100
THREADS: Final = 8
PER_THREAD: Final = 25
KEY: Final = "C" + "a" * 32
SCHEMA: Final = table(audit.AUDIT).polars_schema()


def _entry() -> dict[str, object]:
    """The audit row of a citizen's timeline read (``Access.timeline``)."""
    return audit.row(
        datetime.now(UTC), "bench.citizen", "citizen", "bench", "read:timeline", "self",
        subject=KEY, rows=1,
    )  # fmt: skip


def _direct(entry: dict[str, object]) -> None:
    """The append before the outbox: one commit, and the compaction every ``COMPACT_EVERY``."""
    written = delta.append(audit.AUDIT, pl.DataFrame([entry], schema=SCHEMA))
    if written.version and written.version % audit.COMPACT_EVERY == 0:
        audit.compact()


def _rate(append: Callable[[dict[str, object]], None]) -> float:
    """Rows a second with ``THREADS`` threads appending ``PER_THREAD`` rows each at once."""

    def work() -> None:
        for _ in range(PER_THREAD):
            append(_entry())

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return THREADS * PER_THREAD / (time.perf_counter() - began)


def _ms(name: str, values: list[float]) -> dict[str, float]:
    return {
        f"{name}_p50_ms": round(statistics.median(values) * 1000, 2),
        f"{name}_p95_ms": round(_p95(values) * 1000, 2),
    }


def test_audit_row_cost_before_and_after_the_outbox(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(tempfile.mkdtemp(prefix="gjh-bench-audit-"))
    monkeypatch.setenv("LAKEHOUSE_URI", str(root / "lakehouse"))
    for _ in range(HISTORY):
        _direct(_entry())
    direct, direct_cpu = _timed(lambda: _direct(_entry()), RUNS)
    direct_rate = _rate(_direct)

    before = delta.open_table(audit.AUDIT).version()
    audit.start_flusher()
    try:
        queued, queued_cpu = _timed(lambda: audit.append([_entry()]), RUNS)
        queued_rate = _rate(lambda e: audit.append([e]))
        appended_at = time.perf_counter()
        while audit.outbox().count():
            time.sleep(0.01)
        drained_s = time.perf_counter() - appended_at
    finally:
        audit.stop_flusher()
    commits = delta.open_table(audit.AUDIT).version() - before
    rows = lake.frame(audit.AUDIT).height
    assert rows == HISTORY + 2 * (1 + RUNS + THREADS * PER_THREAD)  # _timed warms up once
    result = {
        "history_commits": HISTORY,
        "runs": RUNS,
        "load_average_1min": round(os.getloadavg()[0], 1),
        **_ms("direct_commit", direct),
        **_ms("direct_commit_cpu", direct_cpu),
        **_ms("outbox_append", queued),
        **_ms("outbox_append_cpu", queued_cpu),
        "threads": THREADS,
        "direct_rows_per_s": round(direct_rate, 1),
        "outbox_rows_per_s": round(queued_rate, 1),
        "outbox_flush_commits": commits,
        "outbox_rows_flushed": 1 + RUNS + THREADS * PER_THREAD,
        "outbox_drained_after_s": round(drained_s, 2),
    }
    record("audit_outbox", result)
    assert result["outbox_append_p50_ms"] < result["direct_commit_p50_ms"], result
