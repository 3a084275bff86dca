"""Group commit: one write per moment's worth of callers, each with its own result or error."""

from __future__ import annotations

import asyncio

import pytest

from bot.runtime.group_commit import GroupCommit


class Store:
    """A write that records its batches; `hold` keeps a batch open, `fail` makes it raise."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.hold: asyncio.Event | None = None
        self.fail: set[int] = set()

    async def write(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        if self.hold is not None:
            await self.hold.wait()
        if self.fail & set(items):
            raise RuntimeError("database is locked")
        return [item * 10 for item in items]


async def test_callers_of_the_same_moment_share_one_write_and_get_their_own_results() -> None:
    store = Store()
    commit = GroupCommit(store.write)
    results = await asyncio.gather(*(commit.submit(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert store.batches == [[0, 1, 2, 3, 4]]


async def test_what_arrives_during_a_write_goes_in_the_next_one() -> None:
    store = Store()
    store.hold = asyncio.Event()
    commit = GroupCommit(store.write)
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)  # the first write has started
    later = [asyncio.create_task(commit.submit(i)) for i in (2, 3)]
    await asyncio.sleep(0)
    assert store.batches == [[1]]
    store.hold.set()
    assert await first == 10
    assert [await task for task in later] == [20, 30]
    assert store.batches == [[1], [2, 3]]


async def test_a_failed_write_fails_its_callers_and_the_next_write_still_runs() -> None:
    store = Store()
    store.fail = {2}
    commit = GroupCommit(store.write)
    failed = await asyncio.gather(commit.submit(1), commit.submit(2), return_exceptions=True)
    assert [type(r) for r in failed] == [RuntimeError, RuntimeError]
    assert await commit.submit(3) == 30


async def test_a_cancelled_caller_still_has_its_item_written() -> None:
    store = Store()
    store.hold = asyncio.Event()
    commit = GroupCommit(store.write)
    gone = asyncio.create_task(commit.submit(1))
    stays = asyncio.create_task(commit.submit(2))
    await asyncio.sleep(0)
    gone.cancel()
    store.hold.set()
    assert await stays == 20
    assert gone.cancelled()
    assert store.batches == [[1, 2]]


async def test_callers_are_not_left_waiting_when_the_writer_is_cancelled() -> None:
    store = Store()
    store.hold = asyncio.Event()  # never set: the write hangs
    commit = GroupCommit(store.write)
    waiting = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    assert commit._writer is not None
    commit._writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, timeout=5)
    await commit.flush()  # returns at once: nothing is being written


async def test_flush_waits_for_everything_submitted() -> None:
    store = Store()
    store.hold = asyncio.Event()
    commit = GroupCommit(store.write)
    task = asyncio.create_task(commit.submit(7))
    await asyncio.sleep(0)
    flushed = asyncio.create_task(commit.flush())
    await asyncio.sleep(0.01)
    assert not flushed.done()
    store.hold.set()
    await flushed
    assert task.done() and task.result() == 70
