"""Partial saves of many replies due at once share transactions (PendingSaves), on both
databases: a burst of finishing replies must not queue one write each for the write lock."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, select

from bot.db import store
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.db.models import Message, Status
from bot.reply_saves import PendingSaves, ReplySaver
from bot.values import ChatInfo, Role

REPLIES = 40


async def test_saves_due_together_share_a_transaction_and_each_keeps_its_text(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        sessions = create_sessionmaker(engine)
        async with sessions.begin() as session:
            await store.upsert_chat(session, ChatInfo(7, "private"))
            conversation = await store.open_conversation(session, 7, None)
            ids = [
                await store.add_message(
                    session,
                    conversation_id=conversation,
                    chat_id=7,
                    role=Role.ASSISTANT,
                    content="",
                    token_count=0,
                    status=Status.PENDING,
                )
                for _ in range(REPLIES)
            ]
            await store.settle_replies(session, ids[:1], Status.FAILED)  # settled meanwhile
        commits: list[int] = []

        def count(*_: Any) -> None:
            commits.append(1)

        event.listen(engine.sync_engine, "commit", count)
        saves = PendingSaves(sessions)
        savers = [
            ReplySaver(saves, message_id, lambda m=message_id: f"reply {m}", len)
            for message_id in ids
        ]
        await asyncio.gather(*(saver.shown([1000 + n]) for n, saver in enumerate(savers)))
        assert len(commits) <= 3, f"{REPLIES} saves took {len(commits)} transactions"
        async with sessions() as session:
            rows = {m.id: m for m in await session.scalars(select(Message))}
        assert rows[ids[0]].content == "", "a settled reply is never written over"
        assert all(rows[m].content == f"reply {m}" for m in ids[1:])
        assert [rows[m].telegram_message_id for m in ids[1:]] == list(range(1001, 1000 + REPLIES))
        await asyncio.gather(*(saver.save() for saver in savers))  # nothing changed: no write
        assert len(commits) <= 3
    finally:
        await engine.dispose()
