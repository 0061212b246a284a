"""The access log's outbox (``lakehouse.outbox``, ``lakehouse.audit``): a row is on disk before
``append`` returns, reaches ``ops.audit_log`` in order, a batch a commit, exactly once however
the writer or the flusher dies, and every reader sees it meanwhile."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable

from gjh.bench.app_server import run_app
from lakehouse import audit, delta, ledger
from lakehouse import read as lake
from lakehouse.access import Access, AccessDeniedError, Principal

ROOT = Path(__file__).resolve().parents[2]
ME = "C" + "a" * 32  # a citizen key's shape
OTHER = "C" + "b" * 32


@pytest.fixture(autouse=True)
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "lakehouse"
    monkeypatch.setenv("LAKEHOUSE_URI", str(root))
    yield root
    audit.stop_flusher()


@pytest.fixture
def held() -> None:
    """A flusher that never flushes by itself: rows wait in the outbox until a test flushes."""
    audit.start_flusher(every=3600)


def entry(n: int, account: str = "dr.kim", subject: str | None = ME) -> dict[str, object]:
    """An allowed read of ``subject``'s timeline, numbered ``n`` (its ``rows``)."""
    at = datetime.now(UTC)
    return audit.row(
        at, account, "clinician", "test", "read:timeline", "consent", subject=subject, rows=n
    )


def commits() -> list[pl.DataFrame]:
    """The rows each append of the access log added, in commit order (one file a commit in these
    tests, every row in one month); a compaction's files hold rows appended before, and a
    change of the table's properties adds none."""
    table = delta.open_table(audit.AUDIT)
    appends = {c["version"] for c in table.history() if c["operation"] == "WRITE"}
    seen: set[str] = set()
    added = []
    for version in range(table.version() + 1):
        files = DeltaTable(table.table_uri, version=version).file_uris()
        new = [f for f in files if f not in seen]
        seen.update(files)
        if version in appends:
            added.append(pl.concat([pl.read_parquet(f) for f in new]) if new else pl.DataFrame())
    return added


def in_order() -> list[str]:
    """The access log's event ids in the order the flushes committed them."""
    return [i for rows in commits() if rows.height for i in rows["event_id"].to_list()]


def test_append_returns_once_the_row_is_on_disk_and_every_reader_sees_it(held: None) -> None:
    """With a flusher running, ``append`` commits only to the outbox: the table is not written,
    yet the log as read (``lake.frame``, the admin's review) holds the row."""
    written = entry(1)
    audit.append([written])
    assert audit.outbox().count() == 1
    assert not delta.exists(audit.AUDIT)
    assert lake.frame(audit.AUDIT)["event_id"].to_list() == [written["event_id"]]
    review = Access(Principal("root", "admin")).audit_log(datetime(2000, 1, 1, tzinfo=UTC))
    assert written["event_id"] in review["event_id"].to_list()
    assert audit.flush() == 2  # the row, and the admin's read of the log
    assert audit.outbox().count() == 0
    assert lake.frame(audit.AUDIT).height == 2


def test_who_viewed_me_counts_the_rows_still_waiting_once(held: None) -> None:
    """The citizen's "who viewed my record" is exact while rows wait: those in the table and
    those in the outbox, each once."""
    audit.append([entry(1)])
    audit.flush()
    audit.append([entry(2), entry(3, account="dr.lee"), entry(4, subject=OTHER)])
    citizen = Access(Principal("minji", "citizen", citizen_key=ME))
    viewed = citizen.who_viewed_me()
    assert sorted(viewed["rows"].to_list()) == [1, 2, 3]
    assert sorted(viewed["account"].to_list()) == ["dr.kim", "dr.kim", "dr.lee"]


def test_a_flush_moves_rows_in_order_one_commit_a_batch(
    held: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "BATCH_ROWS", 5)
    written = [entry(n) for n in range(12)]
    for row in written:
        audit.append([row])
    assert audit.flush() == 12
    sizes = [rows.height for rows in commits()]
    assert sizes == [5, 5, 2], "one Delta version per batch of at most BATCH_ROWS rows"
    assert in_order() == [r["event_id"] for r in written]


def test_a_refusal_is_on_disk_before_it_is_raised(held: None) -> None:
    citizen = Access(Principal("minji", "citizen", citizen_key=ME))
    with pytest.raises(AccessDeniedError):
        citizen.audit_log(datetime(2000, 1, 1, tzinfo=UTC))
    (refused,) = lake.frame(audit.AUDIT).iter_rows(named=True)
    assert (refused["action"], refused["outcome"]) == ("read:audit_log", "denied")
    assert audit.outbox().count() == 1


def test_a_view_is_one_outbox_transaction(held: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page view's rows go to the outbox in one transaction when it ends; a refusal inside it
    goes at once, with the rows gathered before it."""
    box = audit.outbox()
    transactions: list[int] = []
    real = box.append

    def counted(rows: Sequence[Mapping[str, object]]) -> None:
        transactions.append(len(rows))
        real(rows)

    monkeypatch.setattr(box, "append", counted)
    admin = Access(Principal("root", "admin"))
    since = datetime(2000, 1, 1, tzinfo=UTC)
    with admin.view("review"):
        admin.audit_log(since)
        admin.audit_log(since)
        assert transactions == []
    assert transactions == [2]
    with pytest.raises(AccessDeniedError), admin.view("refused"):
        admin.audit_log(since)
        admin.who_viewed_me()
    assert transactions == [2, 2]


WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime
    from lakehouse import audit

    mode, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "flushing":
        audit.start_flusher(every=0.02)
    elif mode == "held":
        audit.start_flusher(every=3600)
    for n in range(count):
        row = audit.row(datetime.now(UTC), writer, "admin", "kill-test", "read:x", "oversight",
                        rows=n)
        audit.append([row])
        print(row["event_id"], flush=True)  # acknowledged once append returned
    if mode == "held":
        audit.flush(committed=lambda: os.kill(os.getpid(), signal.SIGKILL))
    """
)


def _writer(mode: str, name: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, mode, name, str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _exactly_once_in_order(acknowledged: list[str], writer: str) -> None:
    logged = lake.frame(audit.AUDIT, pl.col("account") == writer)
    assert logged["event_id"].n_unique() == logged.height, "a row is in the log twice"
    assert set(acknowledged) <= set(logged["event_id"].to_list()), "an acknowledged row is lost"
    ordered = [i for i in in_order() if i in set(logged["event_id"].to_list())]
    assert ordered == logged.sort("rows")["event_id"].to_list(), "rows arrived out of order"
    assert ordered[: len(acknowledged)] == acknowledged


@pytest.mark.integration
@pytest.mark.slow
def test_a_killed_writer_loses_no_acknowledged_row() -> None:
    """A writer whose flusher runs every 20 ms is SIGKILLed at a random moment (at times in a
    flush): the log as read holds every acknowledged row once even then, and a new process's
    flush leaves every one in the table exactly once, in the order written."""
    for round_ in range(3):
        name = f"writer.{round_}"
        child = _writer("flushing", name, 100_000)
        assert child.stdout is not None
        acknowledged = [child.stdout.readline().strip()]  # once it writes (imports take long)
        deadline = time.monotonic() + random.uniform(0.5, 2.5)
        while time.monotonic() < deadline:
            acknowledged.append(child.stdout.readline().strip())
        child.send_signal(signal.SIGKILL)
        acknowledged.extend(line.strip() for line in child.stdout)  # what it printed before
        child.wait()
        acknowledged = [a for a in acknowledged if a]
        assert len(acknowledged) > 10
        read = lake.frame(audit.AUDIT, pl.col("account") == name)["event_id"]
        assert read.n_unique() == read.len() and set(acknowledged) <= set(read.to_list())
        subprocess.run(
            [sys.executable, "-c", "from lakehouse import audit; audit.flush()"],
            cwd=ROOT,
            check=True,
            timeout=120,
        )
        assert audit.outbox().count() == 0
        _exactly_once_in_order(acknowledged, name)


@pytest.mark.integration
@pytest.mark.slow
def test_a_flusher_killed_between_its_commit_and_its_delete_doubles_nothing() -> None:
    """Killed after its batch is in the table but before the outbox forgot it: the rows are in
    both, readers still count each once, and the next flush sends none of them again."""
    child = _writer("held", "writer.held", 40)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    acknowledged = out.split()
    assert len(acknowledged) == 40
    assert audit.outbox().count() == 40, "killed before its delete"
    assert delta.open_table(audit.AUDIT).version() == 0, "after its one commit"
    assert lake.frame(audit.AUDIT).height == 40, "a reader counts each row once"
    assert audit.flush() == 0
    assert audit.outbox().count() == 0
    assert delta.open_table(audit.AUDIT).version() == 0, "nothing committed again"
    _exactly_once_in_order(acknowledged, "writer.held")


@pytest.mark.integration
def test_writers_in_several_processes_each_land_once_in_their_order() -> None:
    """Four processes append and flush at once (one flusher at a time, by the lock): every row
    lands once, and each writer's rows in the order it wrote them."""
    children = {f"writer.{n}": _writer("at_once", f"writer.{n}", 30) for n in range(4)}
    for child in children.values():
        child.communicate(timeout=300)
        assert child.returncode == 0
    assert audit.outbox().count() == 0
    logged = lake.frame(audit.AUDIT)
    assert logged.height == 120 == logged["event_id"].n_unique()
    order = in_order()
    for name in children:
        mine = logged.filter(pl.col("account") == name).sort("rows")["event_id"].to_list()
        assert [i for i in order if i in set(mine)] == mine


@pytest.mark.integration
def test_a_served_app_flushes_the_outbox(lakehouse: Path) -> None:
    """An app's server runs a flusher (``apps/common/flusher.py``): a row left in the outbox
    reaches the table without anyone else flushing."""
    written = entry(7)
    audit.outbox().append([written])  # in the outbox only
    env = {"LAKEHOUSE_URI": str(lakehouse), "GJH_SECRETS_DIR": str(lakehouse.parent / "secrets")}
    with run_app(ROOT / "apps" / "admin" / "serve.py", env):
        deadline = time.monotonic() + 30
        while not delta.exists(audit.AUDIT) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert delta.exists(audit.AUDIT), "the app's flusher moved nothing"
    assert pl.read_delta(delta.uri(audit.AUDIT))["event_id"].to_list() == [written["event_id"]]
    assert audit.outbox().count() == 0


def test_a_thread_keeps_one_connection_to_its_outbox(
    held: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a connection per call was half of an audited read's cost: each thread opens one
    and keeps it, and another thread opens its own (SQLite connections stay in their thread)."""
    box = audit.outbox()
    opened: list[int] = []
    connect = sqlite3.connect

    def counted(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(threading.get_ident())
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counted)
    for n in range(20):
        audit.append([entry(n)])
    assert box.count() == 20
    assert len(opened) <= 1  # this thread's, unless the fixture's first use already opened it
    worker = threading.Thread(target=lambda: box.append([entry(20)]))
    worker.start()
    worker.join()
    assert box.count() == 21 and opened[-1] != threading.get_ident()
    assert audit.flush() == 21 and box.count() == 0
