"""Per-chat ordering: updates of one chat are handled one at a time, in arrival order;
different chats run concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Serialises updates per chat with FIFO locks, dropped when a chat goes idle."""

    def __init__(self, max_concurrent_updates: int = 512) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._holders: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
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
