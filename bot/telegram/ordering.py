"""Per-chat ordering: updates of one chat are handled one at a time, in arrival order;
different chats run concurrently. Control commands (/stop) skip the line, and a chat whose
queue is full gets a "busy" answer instead of waiting without bound."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

logger = logging.getLogger(__name__)

UpdateCheck = Callable[[Update], bool]
BusyReply = Callable[[Update], Awaitable[None]]


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Serialises updates per chat with FIFO locks, dropped when a chat goes idle."""

    def __init__(
        self,
        *,
        max_concurrent_updates: int = 512,
        max_queued_per_chat: int = 5,
        skips_queue: UpdateCheck = lambda update: False,
        on_busy: BusyReply | None = None,
    ) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._holders: dict[int, int] = {}
        self._max_queued = max_queued_per_chat
        self._skips_queue = skips_queue
        self._on_busy = on_busy

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None or (isinstance(update, Update) and self._skips_queue(update)):
            await coroutine
            return
        # One update runs and up to max_queued wait; past that the user is told to wait.
        if self._holders.get(chat.id, 0) > self._max_queued:
            assert isinstance(update, Update)
            _discard(coroutine)
            logger.info("chat %s: queue full, update %s answered busy", chat.id, update.update_id)
            if self._on_busy is not None:
                await self._on_busy(update)
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._holders[chat.id] = self._holders.get(chat.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._holders[chat.id] -= 1
            if not self._holders[chat.id]:
                del self._holders[chat.id], self._locks[chat.id]

    def queued(self) -> int:
        """Updates waiting for, or holding, a chat's turn."""
        return sum(self._holders.values())

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _discard(coroutine: Awaitable[Any]) -> None:
    close = getattr(coroutine, "close", None)
    if close is not None:  # an un-awaited coroutine must be closed, or Python warns
        close()
