"""bot.media.workers: parsing in worker processes that can be stopped, and that stop when idle.

The jobs below are real functions run in real worker processes (nothing is mocked): a worker
that sleeps past the timeout, one that dies, one that raises.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from bot.media import documents
from bot.media.types import BROKEN, ENCRYPTED, TOO_SLOW, DocumentError
from bot.media.workers import WORKER_NICENESS, ParsePool
from emulators import media_samples as samples


def pid_and_niceness() -> tuple[int, int]:
    return os.getpid(), os.nice(0)


def sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def die() -> None:
    os._exit(1)


def refuse() -> None:
    raise DocumentError(ENCRYPTED, pages=3)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie is gone
    except FileNotFoundError:
        return False


async def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def running_worker(pool: ParsePool) -> int:
    """The pid of the pool's one worker, once it has started (read off the executor)."""
    while pool._executor is None or not pool._executor._processes:  # type: ignore[attr-defined]  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    [pid] = list(pool._executor._processes)  # type: ignore[attr-defined]
    return int(pid)


async def test_a_job_runs_in_another_process_at_a_lower_priority() -> None:
    pool = ParsePool(1, timeout=30)
    try:
        pid, niceness = await pool.run(pid_and_niceness)
    finally:
        await pool.aclose()
    assert pid != os.getpid()
    assert niceness >= min(19, os.nice(0) + WORKER_NICENESS)
    assert await gone(pid)  # closing stops the workers


async def test_a_media_error_keeps_its_code_and_values_across_processes() -> None:
    pool = ParsePool(1, timeout=30)
    try:
        with pytest.raises(DocumentError) as caught:
            await pool.run(refuse)
        with pytest.raises(DocumentError) as pdf:
            await pool.run(documents.load, samples.encrypted_pdf(), "pdf", max_chars=100)
    finally:
        await pool.aclose()
    assert caught.value.code == ENCRYPTED and caught.value.values == {"pages": 3}
    assert pdf.value.code == ENCRYPTED and pdf.value.values == {}


async def test_a_job_past_the_timeout_is_stopped_and_the_next_one_runs() -> None:
    # The timeout also covers starting a fresh worker, which a loaded CI machine has taken
    # over a second to do: 5 s leaves the next job room, and 60 s is far past it.
    pool = ParsePool(1, timeout=5.0)
    try:
        busy = asyncio.create_task(pool.run(sleep_then_pid, 60))
        worker = await running_worker(pool)
        with pytest.raises(DocumentError) as caught:
            await busy
        assert caught.value.code == TOO_SLOW and caught.value.values == {"seconds": 5}
        assert await gone(worker)  # killed, not left to sleep for a minute
        assert await pool.run(sleep_then_pid, 0) != worker
    finally:
        await pool.aclose()


async def test_a_dying_worker_gives_broken_and_others_jobs_run_again() -> None:
    pool = ParsePool(2, timeout=30)
    try:
        other = asyncio.create_task(pool.run(sleep_then_pid, 1.0))
        await asyncio.sleep(0.3)  # the other job is running when the worker dies
        with pytest.raises(DocumentError) as caught:
            await pool.run(die)
        assert caught.value.code == BROKEN
        assert isinstance(await other, int)  # cut short by the crash, then run again
        assert await pool.run(sleep_then_pid, 0) > 0  # and the pool works on
    finally:
        await pool.aclose()


async def test_an_idle_pool_stops_its_workers_and_starts_again_on_demand() -> None:
    pool = ParsePool(1, timeout=30, idle=0.2)
    try:
        first = await pool.run(sleep_then_pid, 0)
        assert await gone(first)
        assert pool._executor is None
        second = await pool.run(sleep_then_pid, 0)
        assert second != first
    finally:
        await pool.aclose()


async def test_closing_stops_a_running_parse_at_once() -> None:
    pool = ParsePool(1, timeout=60)
    busy = asyncio.create_task(pool.run(sleep_then_pid, 60))
    worker = await running_worker(pool)
    started = time.monotonic()
    await pool.aclose()
    assert time.monotonic() - started < 30
    assert await gone(worker)
    with pytest.raises(RuntimeError, match="closed"):  # the bot is stopping: not the file's fault
        await busy
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(sleep_then_pid, 0)


async def test_a_pdf_is_read_in_a_worker_the_same_as_in_process() -> None:
    raw = samples.pdf_bytes([f"Page {n}: " + "words " * 50 for n in range(1, 21)])
    pool = ParsePool(1, timeout=30)
    try:
        remote = await pool.run(documents.load, raw, "pdf", max_chars=1000)
    finally:
        await pool.aclose()
    local = documents.load(raw, "pdf", max_chars=1000)
    assert remote == local
    assert isinstance(local, documents.PdfPages)
    assert local.pages == 20 and len(local.texts) == 4  # ~300 characters a page: 1000 read
