"""Group commit: what many coroutines ask to write at the same moment goes in one transaction.

A burst of updates (one getUpdates answer holds up to 100) would otherwise be as many
transactions, each taking SQLite's single write lock in turn. Each caller still awaits its own
result; whatever arrives while a batch is being written goes in the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Result]]]) -> None:
        """`write` stores a batch in one transaction and returns one result per item."""
        self._write = write
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writing: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Write `item` with whatever else is submitted now; its result once committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
            self._writer.add_done_callback(self._release)
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            self._writing, self._waiting = self._waiting, []
            try:
                results = await self._write([item for item, _ in self._writing])
            except Exception as exc:  # every caller of the batch sees the failure
                for _, future in self._writing:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(self._writing, results, strict=True):
                if not future.done():  # a caller cancelled meanwhile: its item is written
                    future.set_result(result)
            self._writing = []

    def _release(self, writer: asyncio.Task[None]) -> None:
        """A writer cancelled (shutdown), even before it started, leaves no caller waiting."""
        if not writer.cancelled():
            return
        for _, future in self._writing:
            future.cancel()
        self._writing = []
        if writer is self._writer:  # else a newer writer has these
            for _, future in self._waiting:
                future.cancel()
            self._waiting = []

    async def flush(self) -> None:
        """Wait until everything submitted so far is written."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})
