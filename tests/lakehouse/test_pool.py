"""The worker pool: results in order, errors raised where they belong, lost workers reported,
and no process left behind, even when SIGTERM is ignored by the parent and by the workers."""

from __future__ import annotations

import atexit
import multiprocessing
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lakehouse.pool import (
    RemoteError,
    WorkerDiedError,
    WorkerPool,
    WorkerTimeoutError,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
_STATE: dict[str, int] = {}


def square(x: int) -> int:
    time.sleep(random.random() / 200)  # finish out of order
    return x * x


def slow_zero(x: int) -> int:
    if x == 0:
        time.sleep(2)
    return x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is not allowed")
    return x


def die(x: int) -> int:
    if x == 2:
        os._exit(3)
    return x


def hang(x: int) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # SIGTERM cannot end it: only SIGKILL can
    time.sleep(600)
    return x


def hang_after_zero(x: int) -> int:
    return hang(x) if x else x


def remember(offset: int) -> None:
    _STATE["offset"] = offset


def add_offset(x: int) -> int:
    return x + _STATE["offset"]


def loaded(module: str) -> bool:
    """Whether this process has imported ``module`` (for a pool's initializer's effect)."""
    return module in sys.modules


def tear_down_into(marker: str) -> None:
    """An initializer whose process, torn down by the interpreter, would leave ``marker``."""
    atexit.register(Path(marker).write_text, "torn down")


def say(x: int) -> int:
    print(f"worker says {x}")  # no flush: a pipe or a file is block-buffered
    sys.stderr.write(f"worker warns {x}\n")
    return x


def pid_and_ignored(_: int) -> tuple[int, int]:
    """This worker's pid and its ignored-signal mask (``SigIgn`` in /proc)."""
    status = Path("/proc/self/status").read_text().splitlines()
    mask = next(line.split()[1] for line in status if line.startswith("SigIgn:"))
    return os.getpid(), int(mask, 16)


def children() -> set[int]:
    """This process's child processes, from /proc, less multiprocessing's resource tracker
    (started once by the first spawn, it lives as long as this process by design)."""
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    me = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found - {tracker}


@contextmanager
def sigterm_ignored() -> Iterator[None]:
    """SIGTERM ignored in this process, as in a job a shell started in the background; the
    workers spawned meanwhile inherit it."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """The test leaves no child process and no live multiprocessing child behind."""
    before, started = children(), set(multiprocessing.active_children())
    yield
    assert [p.name for p in set(multiprocessing.active_children()) - started] == []
    assert children() - before == set()


def test_results_come_in_order_in_chunks(no_leftovers: None) -> None:
    with WorkerPool(3, name="test-order") as pool:
        assert list(pool.map(square, range(200), chunksize=7)) == [x * x for x in range(200)]
        assert list(pool.map(square, [])) == []
        assert list(pool.map(square, iter(range(5)))) == [0, 1, 4, 9, 16]


@pytest.mark.timeout(120)
def test_a_slow_first_chunk_holds_the_others_and_the_rest_still_comes(no_leftovers: None) -> None:
    """While chunk 0 runs, the other worker fills the window; all of it is then returned and
    the pool must hand out the rest rather than wait for a reply nobody owes it."""
    with WorkerPool(2, name="test-window") as pool:
        assert list(pool.map(slow_zero, range(12))) == list(range(12))


def test_one_worker_maps_in_this_process(no_leftovers: None) -> None:
    _STATE.clear()
    with WorkerPool(1, initializer=remember, initargs=(100,)) as pool:
        assert multiprocessing.active_children() == []
        assert list(pool.map(add_offset, range(3))) == [100, 101, 102]


def test_one_worker_is_spawned_when_the_caller_works_beside_it(no_leftovers: None) -> None:
    _STATE.clear()
    with WorkerPool(1, initializer=remember, initargs=(7,), spawn_one=True, name="one") as pool:
        assert [p.name for p in multiprocessing.active_children()] == ["one-1"]
        assert list(pool.map(add_offset, range(3))) == [7, 8, 9]
    assert _STATE == {}  # the initializer ran in the worker only


def test_the_initializer_runs_in_every_worker(no_leftovers: None) -> None:
    with WorkerPool(2, initializer=remember, initargs=(10,), name="test-init") as pool:
        assert list(pool.map(add_offset, range(50), chunksize=3)) == list(range(10, 60))


def test_an_initializer_that_fails_is_reported(no_leftovers: None) -> None:
    with (
        pytest.raises(WorkerDiedError, match=r"test-badinit-\d failed in its init") as caught,
        WorkerPool(2, initializer=fail_on_three, initargs=(3,), name="test-badinit") as pool,
    ):
        list(pool.map(square, range(10)))
    assert isinstance(caught.value.__cause__, ValueError)


def test_an_exception_is_raised_in_its_place_with_the_workers_traceback(
    no_leftovers: None,
) -> None:
    seen = []
    with WorkerPool(2, name="test-raise") as pool:
        with pytest.raises(ValueError, match="three is not allowed") as caught:
            for x in pool.map(fail_on_three, range(10)):
                seen.append(x)
        with pytest.raises(RuntimeError, match="pool is closed"):  # it stopped early
            list(pool.map(square, range(3)))
    assert seen == [0, 1, 2]
    assert isinstance(caught.value.__cause__, RemoteError)
    assert "in fail_on_three" in str(caught.value.__cause__)


def test_a_worker_that_dies_is_reported_by_name(no_leftovers: None) -> None:
    started = time.monotonic()
    with (
        pytest.raises(WorkerDiedError, match=r"test-die-\d \(pid \d+\) exited with code 3") as e,
        WorkerPool(2, name="test-die") as pool,
    ):
        list(pool.map(die, range(10)))
    assert "while running chunk 2" in str(e.value)
    assert not Path(f"/proc/{e.value.pid}").exists()
    assert time.monotonic() - started < 60


def test_a_worker_that_hangs_is_killed_after_the_timeout(no_leftovers: None) -> None:
    started = time.monotonic()
    with (
        pytest.raises(WorkerTimeoutError, match=r"test-hang-\d .* over 2 s and was killed") as e,
        WorkerPool(2, timeout=2, name="test-hang") as pool,
    ):
        list(pool.map(hang, [1]))
    assert time.monotonic() - started < 60
    assert not Path(f"/proc/{e.value.pid}").exists()


def test_stopping_early_kills_the_busy_workers(no_leftovers: None) -> None:
    started = time.monotonic()
    with WorkerPool(2, timeout=None, name="test-early") as pool:
        results = pool.map(hang_after_zero, range(4))
        assert next(results) == 0
        workers = list(multiprocessing.active_children())
        results.close()
        codes = [p.exitcode for p in workers]  # a worker not yet started took its sentinel
        assert -signal.SIGKILL in codes and set(codes) <= {0, -signal.SIGKILL}, codes
    assert time.monotonic() - started < 30


def test_workers_restore_the_default_sigterm_and_sigint(no_leftovers: None) -> None:
    ignored = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
    with sigterm_ignored(), WorkerPool(2, name="test-signals") as pool:
        _, mine = pid_and_ignored(0)
        assert mine & (1 << (signal.SIGTERM - 1))  # the parent ignores it...
        seen = list(pool.map(pid_and_ignored, range(2)))
        assert [theirs & ignored for _, theirs in seen] == [0, 0]  # ...its workers do not
        os.kill(seen[0][0], signal.SIGTERM)  # and a worker ends on SIGTERM like any program
        with pytest.raises(WorkerDiedError, match="was killed by SIGTERM"):
            list(pool.map(square, range(10)))


def test_idle_workers_exit_on_their_sentinel_and_stuck_ones_are_killed(
    no_leftovers: None,
) -> None:
    with sigterm_ignored(), WorkerPool(2, name="test-close") as pool:
        assert list(pool.map(square, range(4))) == [0, 1, 4, 9]
        workers = list(multiprocessing.active_children())
    assert sorted(p.name for p in workers) == ["test-close-1", "test-close-2"]
    assert [p.exitcode for p in workers] == [0, 0]

    started = time.monotonic()
    with sigterm_ignored(), WorkerPool(2, initializer=time.sleep, initargs=(600,), grace=1):
        workers = list(multiprocessing.active_children())
    assert time.monotonic() - started < 30
    assert [p.exitcode for p in workers] == [-signal.SIGKILL] * 2


def test_workers_leave_without_the_interpreters_teardown_but_flush_their_output(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], no_leftovers: None
) -> None:
    """A done worker ends with ``os._exit`` (the teardown of onnxruntime, pydicom and the rest
    took 0.4-0.55 s per worker, and every close waited for it): its atexit handlers do not
    run, and what it printed still arrives."""
    marker = tmp_path / "torn-down"
    with WorkerPool(2, initializer=tear_down_into, initargs=(str(marker),), name="test-leave") as p:
        assert list(p.map(say, range(4))) == [0, 1, 2, 3]
        workers = list(multiprocessing.active_children())
    assert [w.exitcode for w in workers] == [0, 0]
    assert not marker.exists()
    out, err = capfd.readouterr()
    assert sorted(line for line in out.splitlines() if "says" in line) == [
        f"worker says {x}" for x in range(4)
    ]
    assert sorted(line for line in err.splitlines() if "warns" in line) == [
        f"worker warns {x}" for x in range(4)
    ]
