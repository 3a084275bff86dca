"""A user's data: export it (their conversations) and forget it (messages and usage)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import summaries
from bot.db.models import IN_PROMPT, Conversation, Message, Usage, User


@dataclass(frozen=True, slots=True)
class ExportedConversation:
    id: int
    chat_id: int
    started_at: str
    messages: list[tuple[str, str]]  # (role, content)


async def _export(session: AsyncSession, conversation_ids: list[int]) -> list[ExportedConversation]:
    conversations = await session.scalars(
        select(Conversation).where(Conversation.id.in_(conversation_ids)).order_by(Conversation.id)
    )
    found = []
    for conversation in conversations:
        rows = await session.execute(
            select(Message.role, Message.content)
            .where(Message.conversation_id == conversation.id, Message.status.in_(IN_PROMPT))
            .order_by(Message.id)
        )
        messages = [(role, content) for role, content in rows]
        if messages:
            found.append(
                ExportedConversation(
                    conversation.id,
                    conversation.chat_id,
                    conversation.started_at.isoformat(),
                    messages,
                )
            )
    return found


async def user_conversations(
    session: AsyncSession, chat_id: int, user_id: int
) -> list[ExportedConversation]:
    """The conversations of a chat in which the user wrote, oldest first."""
    ids = await session.scalars(
        select(Message.conversation_id)
        .where(Message.chat_id == chat_id, Message.user_id == user_id)
        .distinct()
    )
    return await _export(session, list(ids))


async def all_conversations(session: AsyncSession) -> list[ExportedConversation]:
    return await _export(session, list(await session.scalars(select(Conversation.id))))


async def forget_user(session: AsyncSession, user_id: int) -> int:
    """Delete the user's messages, the replies to them and their usage; return messages deleted.

    Their private chat's conversations go entirely; in groups only their own messages and the
    replies to them (other members' messages stay).
    """
    await summaries.forget_for_user(session, user_id)
    own = select(Message.id).where(Message.user_id == user_id)
    replies = await session.execute(delete(Message).where(Message.reply_to_id.in_(own)))
    mine = await session.execute(delete(Message).where(Message.user_id == user_id))
    private = await session.execute(delete(Message).where(Message.chat_id == user_id))
    await session.execute(delete(Conversation).where(Conversation.chat_id == user_id))
    await session.execute(delete(Usage).where(Usage.user_id == user_id))
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(username=None, first_name="", last_name=None, language_code=None)
    )
    return sum(int(getattr(r, "rowcount", 0) or 0) for r in (replies, mine, private))
