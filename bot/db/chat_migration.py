"""Moving a chat to a new id: a group upgraded to a supergroup keeps its memory and settings.

Telegram gives the supergroup a new chat id and sends two service messages: one in the old
group (`migrate_to_chat_id`) and one in the new supergroup (`migrate_from_chat_id`), in no
fixed order. Both call `move_chat(old, new)`; whichever runs first moves everything and the
other finds nothing left to move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Chat, Conversation, Message, Summary, UpdateLog, Usage

# Chat columns that are "not set" at these values; the old chat's value fills them.
UNSET: dict[str, Any] = {
    "title": None,
    "system_prompt": None,
    "preset": None,
    "model": None,
    "profile": None,
    "temperature": None,
    "top_p": None,
    "max_reply_tokens": None,
    "presence_penalty": None,
    "frequency_penalty": None,
    "seed": None,
    "stop": None,
    "memory_mode": "chat",
    "summary_enabled": None,
    "is_allowed": False,
    "disabled_tools": None,
}


@dataclass(frozen=True, slots=True)
class Moved:
    """What one call moved; all zero when the other service message came first."""

    settings: int
    conversations: int
    messages: int

    @property
    def anything(self) -> bool:
        return bool(self.settings or self.conversations or self.messages)


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def _new_chat_row(session: AsyncSession, new: int, title: str | None) -> None:
    """Make sure the supergroup's row exists. A write comes first so that on SQLite the
    transaction holds the write lock before it reads (two moves at once then queue instead of
    one failing on a stale snapshot); on PostgreSQL a concurrent insert waits here."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    values = {"id": new, "type": "supergroup", "title": title}
    await session.execute(insert(Chat).values(values).on_conflict_do_nothing())


async def _merge_settings(session: AsyncSession, old: Chat, new_id: int) -> int:
    new = await session.get(Chat, new_id, with_for_update=True, populate_existing=True)
    assert new is not None
    merged = 0
    for column, unset in UNSET.items():
        value = getattr(old, column)
        if value != unset and getattr(new, column) == unset:
            setattr(new, column, value)
            merged += 1
    return merged


async def _merge_open_conversations(session: AsyncSession, old: int, new: int) -> None:
    """Where both chats have an open conversation of one scope (someone wrote in the supergroup
    before this ran), the supergroup's messages join the old conversation: its ids are newer,
    so the order holds, and the old conversation keeps its long history and summary."""
    rows = await session.execute(
        select(Conversation.id, Conversation.chat_id, Conversation.user_id, Conversation.thread_id)
        .where(Conversation.chat_id.in_((old, new)), Conversation.closed_at.is_(None))
        .order_by(Conversation.id)
    )
    kept: dict[tuple[int | None, int | None], int] = {}
    newer: list[tuple[int, tuple[int | None, int | None]]] = []
    for conversation_id, chat_id, user_id, thread_id in rows:
        scope = (user_id, thread_id)
        if chat_id == old:
            kept.setdefault(scope, conversation_id)
        else:
            newer.append((conversation_id, scope))
    for conversation_id, scope in newer:
        if scope not in kept:
            continue
        await session.execute(
            update(Message)
            .where(Message.conversation_id == conversation_id)
            .values(conversation_id=kept[scope])
        )
        await session.execute(delete(Summary).where(Summary.conversation_id == conversation_id))
        await session.execute(delete(Conversation).where(Conversation.id == conversation_id))


async def move_chat(session: AsyncSession, old: int, new: int, title: str | None = None) -> Moved:
    """Move everything stored under chat `old` to chat `new`, in the caller's transaction.

    Settings merge onto the new chat where it has none of its own; conversations (with their
    messages and summaries), usage and logged updates move; the old chat row goes. Telegram
    message ids of moved messages are cleared: they name messages of the old chat (the
    supergroup numbers its messages afresh), and would collide with the supergroup's own.
    """
    if old == new:
        return Moved(0, 0, 0)
    await _new_chat_row(session, new, title)
    old_row = await session.get(Chat, old, with_for_update=True, populate_existing=True)
    settings = 0 if old_row is None else await _merge_settings(session, old_row, new)
    await _merge_open_conversations(session, old, new)
    conversations = await session.execute(
        update(Conversation).where(Conversation.chat_id == old).values(chat_id=new)
    )
    messages = await session.execute(
        update(Message).where(Message.chat_id == old).values(chat_id=new, telegram_message_id=None)
    )
    await session.execute(update(Usage).where(Usage.chat_id == old).values(chat_id=new))
    await session.execute(update(UpdateLog).where(UpdateLog.chat_id == old).values(chat_id=new))
    if old_row is not None:
        await session.delete(old_row)
    await session.flush()
    return Moved(settings, _count(conversations), _count(messages))
