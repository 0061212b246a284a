"""Spawned worker processes that map a function over work in order, and always go away.

DICOM indexing (``pipelines.ingest.dicom.Readers``), AI scoring (``pipelines.score.scoring.
Scorers``) and the generator (``synth.imaging.writer``, ``synth.city``) all run their work
through ``WorkerPool``. It lives here, in the lakehouse package that every layer already
imports; it is generic and imports nothing of the project, so the generator (which otherwise
uses no lakehouse module) may import it without taking on any lakehouse code.

Why not ``multiprocessing.Pool``: a shell that starts a command as a background job can leave
SIGTERM ignored, and spawned children inherit an ignored signal. ``Pool.terminate()`` and
multiprocessing's exit handler then send a SIGTERM nobody receives and join forever (a test
run once hung for hours that way, issue 17). Here:

* each worker restores the default SIGTERM and SIGINT handling before anything else (before
  the caller's initializer), so it ends like any program when it is signalled;
* shutdown is by a sentinel that each idle worker reads and exits on; whatever is still alive
  after ``grace`` seconds (or is busy with a chunk nobody will read) is killed with SIGKILL,
  which cannot be ignored, and no join waits more than a few seconds after that;
* a worker that is done (its sentinel, or the parent's end of the pipe closed) flushes its
  output and leaves with ``os._exit``, as a forked multiprocessing child does: the interpreter's
  teardown of onnxruntime, pydicom and the rest took 0.4-0.55 s per worker, which every
  ``close`` waited for. Whatever a mapped function writes must be closed before it returns
  (the workers' atexit handlers do not run);
* a worker that dies (its process sentinel fires, or its pipe closes) raises ``WorkerDiedError``
  naming it, its exit code and the chunk it held; a worker that holds a chunk (or sits in its
  initializer) longer than ``timeout`` is killed and raises ``WorkerTimeoutError``;
* no pool outlives the ``with`` block that made it, and a pool never closed (a generator
  dropped half-way, an interpreter exiting) is killed by a ``multiprocessing.util.Finalize``
  whose exit priority runs it before multiprocessing's own exit handler joins children.

Why not ``concurrent.futures.ProcessPoolExecutor``: it does report a dead worker
(``BrokenProcessPool``), but on Python 3.11 it has no way to kill its workers
(``terminate_workers`` arrived in 3.14) other than its private ``_processes``, and both its
``shutdown`` and its interpreter-exit hook join the workers without a limit, so one hung
worker hangs the caller. Its ``map`` submits every item at once and its timeout counts from
the call, not per chunk, and names no worker.

The design: one duplex pipe per worker; the parent gives a worker one chunk at a time, only
once the worker has said it is ready or returned its previous chunk, so a send never waits on
a worker that is itself waiting to send (no deadlock, whatever the sizes), and the parent
always knows which worker holds which chunk. At most ``2 * workers`` chunks are in flight or
held for ordering, so memory stays bounded however far one slow chunk falls behind.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from itertools import islice
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.util import Finalize
from typing import Any, Final, NoReturn, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

# spawn, not fork: Dagster, test runners and Polars hold threads, and a forked child of a
# threaded process can deadlock.
_CONTEXT: Final = multiprocessing.get_context("spawn")
TIMEOUT_S: Final = 600.0  # the longest one chunk (or a worker's start-up) may take
GRACE_S: Final = 10.0  # how long idle workers get to exit on their sentinel
KILLED_S: Final = 5.0  # how long to wait for a killed process to be reaped, at most
# Ahead of this finalizer's priority, multiprocessing's exit handler joins children forever;
# ``Pool`` uses 15 for the same reason.
_EXIT_PRIORITY: Final = 20

_READY, _DONE, _FAILED = "ready", "done", "failed"


class WorkerError(RuntimeError):
    """A worker process was lost: it died, or it hung and was killed.

    Attributes:
        worker: The worker's name (``<pool name>-<n>``).
        pid: Its process id.
    """

    def __init__(self, message: str, worker: str, pid: int | None) -> None:
        super().__init__(message)
        self.worker = worker
        self.pid = pid


class WorkerDiedError(WorkerError):
    """A worker process ended while the pool was in use."""


class WorkerTimeoutError(WorkerError):
    """A worker held one chunk (or its start-up) longer than the pool's timeout; it was killed."""


class RemoteError(Exception):
    """The traceback of an exception raised in a worker, attached as its ``__cause__``."""

    def __str__(self) -> str:
        return f"\n{self.args[0]}"


def _portable(error: BaseException) -> tuple[BaseException, str]:
    """The exception itself if it survives pickling both ways, else a RuntimeError naming it,
    with the worker's formatted traceback."""
    text = "".join(traceback.format_exception(error))
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}"), text
    return error, text


def _reply(conn: Connection, kind: str, value: Any) -> bool:
    """Send one reply; False when the parent is gone (the worker then ends)."""
    try:
        data = pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # a result that cannot be pickled fails its chunk, not the pool
        data = pickle.dumps((_FAILED, _portable(error)), protocol=pickle.HIGHEST_PROTOCOL)
    try:
        conn.send_bytes(data)
    except OSError:
        return False
    return True


def _serve(
    conn: Connection, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
) -> None:
    """A worker's life: default signal handling, the caller's initializer, then chunks until
    the sentinel (``None``) or until the parent's end of the pipe closes; then it leaves at
    once."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _work(conn, initializer, initargs)
    _leave()  # an exception above ends the worker as usual instead: its traceback, code 1


def _leave() -> NoReturn:
    """End the worker without the interpreter's teardown: its output and logs flushed, then
    ``os._exit(0)`` (what multiprocessing itself does in a forked child)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # closed, or not a stream
            stream.flush()
    os._exit(0)


def _work(
    conn: Connection, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
) -> None:
    try:
        if initializer is not None:
            initializer(*initargs)
    except Exception as error:
        _reply(conn, _FAILED, _portable(error))
        return
    if not _reply(conn, _READY, None):
        return
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        fn, chunk = task
        try:
            reply: tuple[str, Any] = (_DONE, [fn(item) for item in chunk])
        except Exception as error:
            reply = (_FAILED, _portable(error))
        if not _reply(conn, *reply):
            return


def _kill(processes: list[BaseProcess], conns: list[Connection]) -> None:
    """SIGKILL whatever is still alive, reap it (never waiting long), close the pipes."""
    for process in processes:
        if process.exitcode is None:
            process.kill()
    for process in processes:
        process.join(KILLED_S)
        if process.exitcode is None:  # in uninterruptible sleep: leave it, never hang here
            log.warning("worker %s (pid %s) did not end after SIGKILL", process.name, process.pid)
    for conn in conns:
        conn.close()


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    since: float  # when it started, or was given its chunk
    ready: bool = False
    chunk: int | None = None  # the chunk it holds

    def doing(self) -> str:
        if not self.ready:
            return "starting"
        return "idle" if self.chunk is None else f"running chunk {self.chunk}"


class WorkerPool:
    """Spawned worker processes for ``map``, as a context manager.

    The workers start on entry (so their imports overlap whatever the caller does before it
    maps) and are gone when the block ends. With ``workers`` <= 1 nothing is spawned: the
    initializer and every chunk run in this process (unless ``spawn_one``).

    Args:
        workers: Worker processes to spawn.
        initializer: Called once in each worker (after the default signal handling is
            restored) with ``initargs``; module state it sets is what the mapped function reads.
        initargs: Pickled once per worker, when it starts.
        timeout: Seconds one chunk, or a worker's start-up, may take before the worker is
            deemed hung, killed and reported; None waits as long as the worker lives.
        grace: Seconds idle workers get to exit on their sentinel before they are killed.
        name: Names the workers (``<name>-1``...) in process listings and errors.
        spawn_one: Spawn one worker when ``workers`` is 1, for a caller that works beside it
            (``pipelines.score.scoring.Scorers``); otherwise one worker is this process.
    """

    def __init__(
        self,
        workers: int,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        timeout: float | None = TIMEOUT_S,
        grace: float = GRACE_S,
        name: str = "worker",
        spawn_one: bool = False,
    ) -> None:
        self.workers = workers
        self.spawn_one = spawn_one
        self.initializer = initializer
        self.initargs = initargs
        self.timeout = timeout
        self.grace = grace
        self.name = name
        self._workers: list[_Worker] = []
        self._finalizer: Finalize | None = None
        self._closed = False

    def __enter__(self) -> WorkerPool:
        if self.workers < 1 or (self.workers == 1 and not self.spawn_one):
            if self.initializer is not None:
                self.initializer(*self.initargs)
            return self
        processes: list[BaseProcess] = []
        conns: list[Connection] = []
        self._finalizer = Finalize(
            self, _kill, args=(processes, conns), exitpriority=_EXIT_PRIORITY
        )
        try:
            for n in range(1, self.workers + 1):
                mine, theirs = _CONTEXT.Pipe()
                conns.append(mine)
                process = _CONTEXT.Process(
                    target=_serve,
                    args=(theirs, self.initializer, self.initargs),
                    name=f"{self.name}-{n}",
                    daemon=True,
                )
                try:
                    process.start()
                finally:
                    theirs.close()  # the worker's end lives only in the worker: its death is EOF
                processes.append(process)
                self._workers.append(_Worker(process, mine, time.monotonic()))
        except BaseException:
            self._closed = True
            self._finalizer()  # the workers started so far
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chunksize(self, count: int, most: int) -> int:
        """About eight chunks per worker for ``count`` items, at most ``most`` items each: few
        round trips, while a slow chunk still leaves the other workers work to do."""
        return max(1, min(most, count // (max(self.workers, 1) * 8)))

    def map(
        self, fn: Callable[[T], R], items: Iterable[T], chunksize: int = 1
    ) -> Generator[R, None, None]:
        """``fn`` over ``items`` in the workers, results in the items' order.

        An exception ``fn`` raises is raised here, in its item's place (its worker traceback
        as ``__cause__``). ``WorkerDiedError`` and ``WorkerTimeoutError`` are raised as soon as they
        happen. If the iteration stops before the end (an exception, or the caller stopped
        iterating), the pool is closed: the workers still busy are killed.
        """
        if self._closed:
            raise RuntimeError(f"the {self.name} pool is closed")
        if not self._workers:
            yield from (fn(item) for item in items)
            return
        source = iter(items)
        window = 2 * len(self._workers)
        held: dict[int, tuple[str, Any]] = {}
        given = taken = 0  # chunks handed out, chunks returned to the caller
        exhausted = finished = False
        try:
            while True:
                for w in self._workers:
                    if exhausted or given - taken >= window:
                        break
                    if w.ready and w.chunk is None:
                        chunk = list(islice(source, chunksize))
                        if not chunk:
                            exhausted = True
                            break
                        self._give(w, given, fn, chunk)
                        given += 1
                if taken in held:  # one chunk, then hand out what its room allows
                    kind, value = held.pop(taken)
                    taken += 1
                    if kind == _FAILED:
                        raise _raised(value)
                    yield from value
                    continue
                if exhausted and taken == given:
                    finished = True
                    return
                self._receive(held)
        finally:
            if not finished:
                self.close()

    def close(self) -> None:
        """Sentinels to the idle workers, SIGKILL to the busy ones at once and to any still
        alive after ``grace`` seconds. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            if w.process.exitcode is not None:
                continue
            if w.chunk is not None:
                w.process.kill()  # its result would never be read
                continue
            try:
                w.conn.send(None)
            except OSError:  # it is gone already
                continue
        deadline = time.monotonic() + self.grace
        for w in self._workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
        if self._finalizer is not None:
            self._finalizer()

    def _give(self, w: _Worker, index: int, fn: Callable[[T], R], chunk: list[T]) -> None:
        try:
            w.conn.send((fn, chunk))
        except OSError:
            self._lost(w)
        w.chunk, w.since = index, time.monotonic()

    def _receive(self, held: dict[int, tuple[str, Any]]) -> None:
        """Wait for one worker's reply, death or timeout, and act on it."""
        waiting = [w for w in self._workers if not w.ready or w.chunk is not None]
        limit = None
        if self.timeout is not None and waiting:
            first = min(w.since for w in waiting) + self.timeout
            limit = max(0.0, first - time.monotonic())
        events = wait(
            [w.conn for w in waiting] + [w.process.sentinel for w in self._workers], limit
        )
        for w in self._workers:
            if w.conn in events or (w.process.sentinel in events and w.conn.poll()):
                self._reply(w, held)
            elif w.process.sentinel in events:
                self._lost(w)
        if not events:
            late = min(waiting, key=lambda w: w.since)
            late.process.kill()
            late.process.join(KILLED_S)
            raise WorkerTimeoutError(
                f"{late.process.name} (pid {late.process.pid}) was {late.doing()} for over "
                f"{self.timeout:g} s and was killed",
                late.process.name,
                late.process.pid,
            )

    def _reply(self, w: _Worker, held: dict[int, tuple[str, Any]]) -> None:
        try:
            kind, value = pickle.loads(w.conn.recv_bytes())
        except (EOFError, OSError):
            self._lost(w)
        if not w.ready:
            if kind == _FAILED:
                error = _raised(value)
                raise WorkerDiedError(
                    f"{w.process.name} failed in its initializer: {error!r}",
                    w.process.name,
                    w.process.pid,
                ) from error
            w.ready = True
            return
        assert w.chunk is not None
        held[w.chunk] = (kind, value)
        w.chunk = None

    def _lost(self, w: _Worker) -> NoReturn:
        """Raise ``WorkerDiedError`` for a worker whose process ended or whose pipe closed."""
        w.process.join(KILLED_S)
        if w.process.exitcode is None:  # its pipe closed under it, yet it lives: end it
            w.process.kill()
            w.process.join(KILLED_S)
        code = w.process.exitcode
        how = f"was killed by {signal.Signals(-code).name}" if code and code < 0 else None
        raise WorkerDiedError(
            f"{w.process.name} (pid {w.process.pid}) {how or f'exited with code {code}'} "
            f"while {w.doing()}",
            w.process.name,
            w.process.pid,
        )


def _raised(value: tuple[BaseException, str]) -> BaseException:
    error, text = value
    error.__cause__ = RemoteError(text)
    return error
