"""What replicas share through the database: which updates were taken, and whose turn it is.

Every update is recorded in `update_log` (its id is the primary key) before it is handled, so a
redelivered update is a no-op in any replica. With ADVISORY_LOCKS on (several replicas on
PostgreSQL), a chat's updates run under a PostgreSQL advisory lock on the chat id
(`pg_advisory_xact_lock`, held by a transaction on a separate small pool for the whole turn);
whoever holds it first handles the chat's earlier pending updates, oldest first, so replicas
keep each chat in order. One process needs no such lock (it costs a connection per running
turn): the in-process lock of `ChatOrderedUpdateProcessor` is enough, and it is the only one
on SQLite.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from telegram import Bot, Update

from bot.db import update_log
from bot.runtime.group_commit import GroupCommit
from bot.runtime.update_payload import replay_payload

logger = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 600
PRUNE_EVERY = 1_000


def chat_of(update: Update) -> int | None:
    chat = update.effective_chat
    return chat.id if chat is not None else None


def _taken(update: Update) -> update_log.Taken:
    user = update.effective_user
    return update_log.Taken(
        update.update_id, chat_of(update), user.id if user else None, replay_payload(update)
    )


class UpdateGate:
    """The update log and the per-chat advisory lock of one replica."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        *,
        advisory_locks: bool = False,
        pool_size: int = 10,
    ) -> None:
        self._sessions = sessions
        self._locks: AsyncEngine | None = None
        if advisory_locks and engine.dialect.name == "postgresql":
            self._locks = create_async_engine(
                engine.url,
                pool_size=pool_size,  # at most 2 × pool_size chats in a turn at once
                max_overflow=pool_size,
                pool_timeout=LOCK_WAIT_SECONDS,
                pool_pre_ping=True,
            )
        self._recorded = 0
        self._prefetched: set[int] = set()  # logged at fetch time, not yet taken by `record`
        # Updates of one burst are taken, and marked done, together (see group_commit.py).
        self._records = GroupCommit(self._record_batch)
        self._done = GroupCommit(self._done_batch)

    @property
    def shared(self) -> bool:
        """Whether other replicas may handle this chat's updates too (advisory locks on)."""
        return self._locks is not None

    async def record(self, update: Update) -> bool:
        """Take the update; False when some replica took it before (ignore it then).

        An update logged when it was fetched (`prefetch`) is answered from memory, once.
        """
        if update.update_id in self._prefetched:
            self._prefetched.discard(update.update_id)
            return True
        return await self._records.submit(_taken(update))

    async def prefetch(self, updates: Sequence[Update]) -> None:
        """Log a fetched batch now, before Telegram can count it delivered; the ones new to the
        log are then taken by `record` without a second write."""
        new = await asyncio.gather(*(self._records.submit(_taken(u)) for u in updates))
        self._prefetched.update(u.update_id for u, fresh in zip(updates, new, strict=True) if fresh)

    async def _record_batch(self, updates: list[update_log.Taken]) -> list[bool]:
        async with self._sessions.begin() as session:
            new = await update_log.record(session, updates)
            recorded = self._recorded + sum(new)
            if recorded // PRUNE_EVERY > self._recorded // PRUNE_EVERY:
                logger.info("forgot %d old handled updates", await update_log.prune(session))
        self._recorded = recorded
        return new

    @asynccontextmanager
    async def chat_turn(self, chat_id: int) -> AsyncIterator[None]:
        """Hold the chat's advisory lock (PostgreSQL) until the block ends."""
        if self._locks is None:
            yield
            return
        async with self._locks.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(chat_id)))
            yield
        # Commit (or the pool's rollback on return) ends the transaction and frees the lock.

    async def pending_chats(self) -> list[int]:
        async with self._sessions() as session:
            return await update_log.pending_chats(session)

    async def earlier_pending(self, chat_id: int, update_id: int, bot: Bot) -> list[Update]:
        """The chat's updates taken before this one and not handled yet (by any replica)."""
        async with self._sessions() as session:
            rows = await update_log.pending_before(session, chat_id, update_id)
        found = []
        for row in rows:
            if row.payload:
                found.append(Update.de_json(json.loads(row.payload), bot))
                continue
            logger.warning(
                "chat %s: update %s was too large to keep: not replayed", chat_id, row.update_id
            )
            await self.done(row.update_id)
        return found

    async def album_items(self, chat_id: int, media_group_id: str, bot: Bot) -> list[Update]:
        """The album's items taken (by any replica, or by a run that was killed) and not
        handled yet: the album's turn answers them all."""
        async with self._sessions() as session:
            rows = await update_log.pending_before(session, chat_id)
        found = []
        for row in rows:
            data = json.loads(row.payload) if row.payload else {}
            message = data.get("message")
            if isinstance(message, dict) and message.get("media_group_id") == media_group_id:
                found.append(Update.de_json(data, bot))
        return found

    async def is_done(self, update_id: int) -> bool:
        async with self._sessions() as session:
            return await update_log.is_done(session, update_id)

    async def done(self, update_id: int) -> None:
        await self._done.submit(update_id)

    async def _done_batch(self, update_ids: list[int]) -> list[None]:
        async with self._sessions.begin() as session:
            await update_log.mark_done(session, update_ids)
        return [None] * len(update_ids)

    async def close(self) -> None:
        await self._records.flush()
        await self._done.flush()
        if self._locks is not None:
            await self._locks.dispose()
