"""A user's data: export it (their conversations) and forget it (every trace of them)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.db.models import (
    IN_PROMPT,
    Audit,
    Chat,
    Conversation,
    Message,
    MessageContent,
    MessageDelivery,
    Summary,
    UpdateLog,
    Usage,
    User,
)
from bot.db.store import content_parts
from bot.parts import Content


@dataclass(frozen=True, slots=True)
class ExportedConversation:
    id: int
    chat_id: int
    started_at: str
    messages: list[tuple[str, Content]]  # (role, content: the text, or the parts)


async def _export(session: AsyncSession, conversation_ids: list[int]) -> list[ExportedConversation]:
    conversations = await session.scalars(
        select(Conversation).where(Conversation.id.in_(conversation_ids)).order_by(Conversation.id)
    )
    found = []
    for conversation in conversations:
        rows = (
            await session.execute(
                select(Message.id, Message.role, Message.content, Message.has_parts)
                .where(Message.conversation_id == conversation.id, Message.status.in_(IN_PROMPT))
                .order_by(Message.id)
            )
        ).all()
        parts = await content_parts(session, [row.id for row in rows if row.has_parts])
        messages: list[tuple[str, Content]] = [
            (row.role, parts.get(row.id) or row.content) for row in rows
        ]
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


# What /forget does to each column of each table, for the rows about the user (which rows,
# per table, is in `forget_user`). tests/unit/test_forget_rules.py fails when a table or
# column has no rule, so a new one cannot slip past /forget.
DELETE = "delete-row"  # the rows about the user are deleted, this value with them
REDACT = "redact"  # the rows stay; this value is cleared (see FORGOTTEN)
KEEP = "keep"  # an id, count, flag, time or fixed label: holds none of the user's words
SHARED = "shared"  # admin configuration in force for everyone: kept (see below)
WHEN_DONE = "emptied-when-done"  # every update's payload is emptied once it is handled

_DELETED = dict.fromkeys
FORGET_RULES: dict[str, dict[str, str]] = {
    # Redacted, not deleted: an admin's block or allow must outlive the user's /forget.
    "users": {
        "id": KEEP,
        "username": REDACT,
        "first_name": REDACT,
        "last_name": REDACT,
        "language_code": REDACT,
        "is_blocked": KEEP,
        "is_allowed": KEEP,
        "first_seen": KEEP,
        "last_seen": KEEP,
    },
    # The user's private chat (its id is the user's): its title and settings go; an admin's
    # allowing of the chat stays. Group chats are not the user's and are left as they are.
    "chats": {
        "id": KEEP,
        "type": KEEP,
        "title": REDACT,
        "system_prompt": REDACT,
        "preset": REDACT,
        "model": REDACT,
        "profile": REDACT,
        "temperature": REDACT,
        "top_p": REDACT,
        "max_reply_tokens": REDACT,
        "presence_penalty": REDACT,
        "frequency_penalty": REDACT,
        "seed": REDACT,
        "stop": REDACT,
        "memory_mode": REDACT,
        "summary_enabled": REDACT,
        "disabled_tools": REDACT,
        "is_allowed": KEEP,
        "created_at": KEEP,
    },
    "conversations": _DELETED(
        ("id", "chat_id", "user_id", "thread_id", "started_at", "closed_at"), DELETE
    ),
    "messages": _DELETED(
        (
            "id",
            "conversation_id",
            "chat_id",
            "user_id",
            "role",
            "content",
            "reasoning",
            "token_count",
            "status",
            "model",
            "telegram_message_id",
            "reply_to_id",
            "has_parts",
            "created_at",
        ),
        DELETE,
    ),
    "message_deliveries": _DELETED(("message_id", "position", "telegram_message_id"), DELETE),
    "message_content": _DELETED(
        ("message_id", "position", "kind", "text", "data", "blob", "token_count"), DELETE
    ),
    "summaries": _DELETED(
        (
            "id",
            "conversation_id",
            "first_message_id",
            "last_message_id",
            "content",
            "token_count",
            "model",
            "created_at",
        ),
        DELETE,
    ),
    "usage": _DELETED(
        (
            "id",
            "message_id",
            "chat_id",
            "user_id",
            "model",
            "kind",
            "prompt_tokens",
            "completion_tokens",
            "reported",
            "latency_ms",
            "first_token_ms",
            "created_at",
        ),
        DELETE,
    ),
    # Presets and global settings are what an admin published for every chat, not their
    # conversation: deleting them on the author's /forget would silently change the bot for
    # everyone. Only the author's id is kept with them; an admin removes a preset with
    # /preset delete.
    "prompts": {
        "id": KEEP,
        "name": SHARED,
        "version": KEEP,
        "text": SHARED,
        "author_id": KEEP,
        "deleted": KEEP,
        "created_at": KEEP,
    },
    "global_settings": {"key": SHARED, "value": SHARED, "updated_by": KEEP, "updated_at": KEEP},
    # Audit rows the user made or that name them keep who, what, on what and when (ids and
    # action names); the old and new values, which may hold their words, go.
    "audit": {
        "id": KEEP,
        "actor_id": KEEP,
        "action": KEEP,
        "target": KEEP,
        "old_value": REDACT,
        "new_value": REDACT,
        "created_at": KEEP,
    },
    # A handled update keeps only its ids (update_log.py); /forget unlinks the user from them.
    # One not handled yet keeps its payload until it is (moments later, in the chat's order):
    # emptying it now would lose what the user sent after /forget, since a replica that finds
    # a pending update without payload skips it.
    "update_log": {
        "update_id": KEEP,
        "chat_id": KEEP,
        "user_id": REDACT,
        "payload": WHEN_DONE,
        "done": KEEP,
        "received_at": KEEP,
    },
    # Which process polls for the bot (host, pid, nonce): nothing of any user.
    "poller_lease": {"bot_id": KEEP, "holder": KEEP, "acquired_at": KEEP, "heartbeat_at": KEEP},
}
# A redacted column becomes NULL unless it cannot be: then this value.
FORGOTTEN: dict[tuple[str, str], object] = {
    ("users", "first_name"): "",
    ("chats", "memory_mode"): "chat",
}


def redacted(table: str) -> dict[str, object]:
    """The values that overwrite a table's redacted columns."""
    return {
        column: FORGOTTEN.get((table, column))
        for column, rule in FORGET_RULES[table].items()
        if rule == REDACT
    }


async def forget_user(session: AsyncSession, user_id: int) -> int:
    """Delete or redact everything stored about the user (see FORGET_RULES); return how many
    messages were deleted.

    Deleted: their private chat's conversations entirely; in groups their own messages, the
    replies to them, their per-user conversations, and the summaries of every conversation they
    wrote in (a summary may quote them); their usage. Redacted: their user row, their private
    chat's settings, the values of audit rows they made or that name them, the user id of their
    logged updates. Other members' messages stay.
    """
    own = aliased(Message)
    theirs = select(Conversation.id).where(
        or_(Conversation.chat_id == user_id, Conversation.user_id == user_id)
    )
    doomed = or_(
        Message.user_id == user_id,
        Message.chat_id == user_id,
        Message.conversation_id.in_(theirs),
        Message.reply_to_id.in_(select(own.id).where(own.user_id == user_id)),
    )
    wrote_in = select(Message.conversation_id).where(Message.user_id == user_id)
    await session.execute(
        delete(Summary).where(
            or_(Summary.conversation_id.in_(wrote_in), Summary.conversation_id.in_(theirs))
        )
    )
    doomed_ids = select(Message.id).where(doomed)
    await session.execute(
        delete(Usage).where(
            or_(
                Usage.user_id == user_id, Usage.chat_id == user_id, Usage.message_id.in_(doomed_ids)
            )
        )
    )
    await session.execute(delete(MessageDelivery).where(MessageDelivery.message_id.in_(doomed_ids)))
    await session.execute(delete(MessageContent).where(MessageContent.message_id.in_(doomed_ids)))
    deleted = await session.execute(delete(Message).where(doomed))
    await session.execute(delete(Conversation).where(Conversation.id.in_(theirs)))
    await session.execute(update(User).where(User.id == user_id).values(redacted("users")))
    await session.execute(update(Chat).where(Chat.id == user_id).values(redacted("chats")))
    await session.execute(
        update(Audit)
        .where(or_(Audit.actor_id == user_id, Audit.target == str(user_id)))
        .values(redacted("audit"))
    )
    await session.execute(
        update(UpdateLog)
        .where(or_(UpdateLog.user_id == user_id, UpdateLog.chat_id == user_id))
        .values(redacted("update_log"))
    )
    return int(getattr(deleted, "rowcount", 0) or 0)
