"""Saves of a reply while it streams, so a killed process keeps what the user has seen.

The reply's pending row gets the text so far and the ids of the Telegram messages showing it:
when a new message of the reply appears (the first one is the first visible text), every
`PARTIAL_SAVE_SECONDS` while the text changes, and once more with the complete text while
the final Telegram call goes out. One writer per reply: saves never overlap, and none runs after the
reply's final record. The model stream never waits for a save.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import store

logger = logging.getLogger(__name__)

PARTIAL_SAVE_SECONDS = 2.0  # how much streamed text a killed process can lose at most


class ReplySaver:
    """The one writer of a pending reply's row until it is recorded."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        message_id: int,
        text: Callable[[], str],
        tokens: Callable[[str], int],
    ) -> None:
        self._sessions = sessions
        self._message_id = message_id
        self._text = text  # the reply's text now
        self._tokens = tokens
        self.lock = asyncio.Lock()  # held by every write of the row, the final record too
        self.telegram_ids: list[int] = []
        self._saved_text = ""
        self._saved_ids: list[int] = []
        self.writes = 0
        self._closed = False
        self._timer: asyncio.Task[None] | None = None

    @property
    def stored_ids(self) -> list[int]:
        """The message ids the row holds now."""
        return self._saved_ids

    def start(self) -> None:
        self._timer = asyncio.create_task(self._every_interval())

    async def shown(self, telegram_ids: Sequence[int]) -> None:
        """A new Telegram message of the reply exists: store it (and the text) now."""
        self.telegram_ids = list(telegram_ids)
        await self.save()

    async def save(self) -> None:
        """Store the text so far and the known message ids, unless nothing changed."""
        async with self.lock:
            text, ids = self._text(), list(self.telegram_ids)
            if self._closed or (text == self._saved_text and ids == self._saved_ids):
                return
            try:
                async with self._sessions.begin() as session:
                    changed = ids != self._saved_ids
                    pending = await store.save_pending(
                        session,
                        self._message_id,
                        text,
                        self._tokens(text),
                        ids if changed else None,
                    )
            except (SQLAlchemyError, OSError) as exc:  # the next save (or the record) tries again
                logger.warning("reply %s: saving the text so far failed: %s", self._message_id, exc)
                return
            self.writes += 1
            self._saved_text, self._saved_ids = text, ids
            self._closed = not pending

    async def close(self) -> None:
        """No more saves (the final record follows, or the reply is over)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer

    async def _every_interval(self) -> None:
        while not self._closed:
            await asyncio.sleep(PARTIAL_SAVE_SECONDS)
            await self.save()
