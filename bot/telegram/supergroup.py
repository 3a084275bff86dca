"""A group upgraded to a supergroup: its memory and settings follow it to the new chat id.

Both service messages (`migrate_to_chat_id` in the old group, `migrate_from_chat_id` in the
supergroup) move the chat, in whichever order they come; the second finds nothing to move.
The handler runs before the access gate (see routes.py): the move is bookkeeping, not a user's
request.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.db import admin_store
from bot.db.chat_migration import move_chat
from bot.telegram.handlers import Context

logger = logging.getLogger(__name__)


class SupergroupHandlers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def migrated(self, update: Update, context: Context) -> None:
        """Move the old group's memory and settings to the supergroup; nothing else runs."""
        message = update.effective_message
        assert message is not None
        if message.migrate_to_chat_id is not None:
            old, new = message.chat_id, message.migrate_to_chat_id
        else:
            assert message.migrate_from_chat_id is not None  # the filter
            old, new = message.migrate_from_chat_id, message.chat_id
        await self.move(
            old, new, message.chat.title, message.from_user.id if message.from_user else 0
        )
        raise ApplicationHandlerStop

    async def move(self, old: int, new: int, title: str | None, actor: int) -> None:
        async with self._sessions.begin() as session:
            moved = await move_chat(session, old, new, title)
            if moved.anything:
                await admin_store.audit(session, actor, "migrate_chat", str(new), old, new)
        if moved.anything:
            logger.info(
                "chat %s became supergroup %s: moved %d settings, %d conversations, %d messages",
                old,
                new,
                moved.settings,
                moved.conversations,
                moved.messages,
            )
