"""Worker processes for parsing that holds the interpreter lock (pypdf, python-docx).

pypdf is pure Python: in a thread of the bot's process it takes turns with the event loop for
the GIL, and every other chat's edits wait behind it. In a process of its own it does not, and
its workers run at a lower CPU priority, so the machine's cores go to streaming replies first.

A process can also be stopped, which a thread cannot: a job that runs past `timeout` has its
pool killed and answers `too_slow`. Jobs of other chats that the kill (or a crashed worker) cut
short run once more, each in a worker of its own; a job that kills its worker twice answers
`broken`.

The pool starts on the first job and stops after `idle` seconds without one: its workers hold
pypdf's memory, and a bot that reads a PDF a day should not keep them. Workers are started with
the forkserver method (never fork: the bot's process has threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

from bot.media.types import BROKEN, TOO_SLOW, DocumentError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
WORKER_NICENESS = 10  # below the bot's own process, which streams replies
JOBS_PER_WORKER = 200  # then a fresh worker: a parser's heap does not grow for ever
RELEASE_AFTER = 0.1  # seconds after a job: its result is sent by then (a few ms)
PRELOAD = ["bot.media.documents", "pypdf", "docx"]  # imported once, in the fork server


def _lower_priority() -> None:
    with contextlib.suppress(OSError):  # not permitted here: the same priority, then
        os.nice(WORKER_NICENESS)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, where there is one (a plain call: no ctypes callback)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def _release_memory() -> None:
    gc.collect()
    if (trim := _malloc_trim()) is not None:
        trim(0)


def _call_and_trim(work: Callable[..., T], args: tuple[object, ...], kwargs: dict[str, Any]) -> T:
    """The job, in the worker; then its garbage goes back to the system, from a thread of the
    worker once the result has left (so neither the result nor its sending waits for it). A
    parsed 19 MB PDF otherwise leaves ~85 MiB in the worker's heap until the worker exits."""
    try:
        return work(*args, **kwargs)
    finally:
        release = threading.Timer(RELEASE_AFTER, _release_memory)
        release.daemon = True
        release.start()


class ParsePool:
    """At most `workers` parsing jobs at once in worker processes; one per bot process."""

    def __init__(self, workers: int, *, timeout: float, idle: float = 300.0) -> None:
        self.workers = workers
        self.timeout = timeout
        self.idle = idle
        self._slots = asyncio.Semaphore(workers)  # a job starts at once: its timeout is its own
        self._executor: ProcessPoolExecutor | None = None
        self._alone: set[ProcessPoolExecutor] = set()  # second runs, a worker each
        self._busy = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`work(*args, **kwargs)` in a worker process; its exceptions are raised here.

        DocumentError(TOO_SLOW) past the timeout, DocumentError(BROKEN) when the worker dies.
        """
        async with self._slots:
            self._busy += 1
            self._cancel_idle_timer()
            try:
                return await self._run(work, *args, **kwargs)
            finally:
                self._busy -= 1
                if not self._busy and not self._closed:
                    loop = asyncio.get_running_loop()
                    self._idle_timer = loop.call_later(self.idle, self._stop_idle)

    async def _run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await self._attempt(self._started(), work, *args, **kwargs)
        except BrokenProcessPool:
            pass  # a worker died, or another job's timeout killed them: this job may be fine
        # Once more, in a worker of its own: if this job is what kills workers, it kills only
        # its own, and the other jobs cut short with it get through on their second run.
        alone = self._executor_of(1)
        self._alone.add(alone)
        try:
            return await self._attempt(alone, work, *args, **kwargs)
        except BrokenProcessPool:
            logger.warning("a parsing worker died twice on one file")
            raise DocumentError(BROKEN) from None
        finally:
            self._alone.discard(alone)
            self._discard(alone, kill=True)

    async def _attempt(
        self, executor: ProcessPoolExecutor, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            future = executor.submit(_call_and_trim, work, args, kwargs)
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            logger.warning("parsing took over %.0f s: its worker is stopped", self.timeout)
            self._discard(executor, kill=True)
            raise DocumentError(TOO_SLOW, seconds=self.timeout) from None
        except BrokenProcessPool:
            self._discard(executor, kill=True)
            raise

    def _started(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = self._executor_of(self.workers)
        return self._executor

    def _executor_of(self, workers: int) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("the parse pool is closed")
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_lower_priority,
            max_tasks_per_child=JOBS_PER_WORKER,
        )

    def _discard(self, executor: ProcessPoolExecutor, *, kill: bool) -> None:
        """Stop `executor` without waiting; killed, its running jobs end at once."""
        if self._executor is executor:
            self._executor = None
        if kill:
            _kill_workers(executor)
        executor.shutdown(wait=False, cancel_futures=True)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _stop_idle(self) -> None:
        self._idle_timer = None
        if not self._busy and self._executor is not None:
            self._discard(self._executor, kill=False)

    async def aclose(self) -> None:
        """Stop the workers (a running parse is killed: the turn is being stopped anyway)."""
        self._closed = True
        self._cancel_idle_timer()
        executors = [*self._alone, *([self._executor] if self._executor else [])]
        self._executor = None
        for executor in executors:
            _kill_workers(executor)
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    """SIGKILL the executor's worker processes (public API from Python 3.14 on)."""
    kill = getattr(executor, "kill_workers", None)
    if callable(kill):
        kill()
        return
    processes = getattr(executor, "_processes", None) or {}
    for process in list(processes.values()):
        if process.is_alive():
            process.kill()
