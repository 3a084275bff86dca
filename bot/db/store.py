"""The queries of a turn. Each takes a session; callers decide transaction boundaries."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final

from sqlalchemy import bindparam, delete, func, insert, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.db.models import (
    IN_PROMPT,
    Chat,
    Conversation,
    Message,
    MessageContent,
    MessageDelivery,
    Status,
    Usage,
    User,
)
from bot.parts import Part, decode, encode, is_plain, text_form
from bot.values import ChatInfo, HistoryItem, Role, UserInfo

HISTORY_PAGE = 64


def without_nul(text: str) -> str:
    """Drop NUL characters, which PostgreSQL text cannot hold (SQLite can): same on both."""
    return text.replace("\x00", "")


def _optional(text: str | None) -> str | None:
    return None if text is None else without_nul(text)


@cache
def _upsert(
    dialect: str,
    table: Any,
    columns: tuple[str, ...],
    touched: tuple[str, ...] = (),
    returning: bool = False,
) -> Any:
    """INSERT ... ON CONFLICT (id) DO UPDATE of `columns` (bound by name) and `touched` := now().

    Built once per dialect and table: constructing an upsert costs ~0.3 ms, twice per turn.
    """
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = dialect_insert(table).values({name: bindparam(name) for name in ("id", *columns)})
    changes: dict[str, Any] = {name: stmt.excluded[name] for name in columns}
    changes |= {name: func.now() for name in touched}
    upsert = stmt.on_conflict_do_update(index_elements=["id"], set_=changes)
    return upsert.returning(table) if returning else upsert


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def upsert_user(session: AsyncSession, user: UserInfo) -> None:
    values = {
        "id": user.id,
        "first_name": without_nul(user.first_name),
        "last_name": _optional(user.last_name),
        "username": _optional(user.username),
        "language_code": user.language_code,
    }
    stmt = _upsert(_dialect(session), User, tuple(values)[1:], ("last_seen",))
    await session.execute(stmt, values)


async def upsert_chat(session: AsyncSession, chat: ChatInfo) -> Chat:
    values = {"id": chat.id, "type": chat.type, "title": _optional(chat.title)}
    stmt = _upsert(_dialect(session), Chat, ("type", "title"), returning=True)
    result = await session.scalars(stmt, values, execution_options={"populate_existing": True})
    row: Chat = result.one()
    return row


def _scope(chat_id: Any, user_id: Any, thread_id: Any) -> list[Any]:
    """The conditions picking one memory scope: the chat, or one user, in one forum topic."""
    return [
        Conversation.chat_id == chat_id,
        Conversation.user_id.is_(None) if user_id is None else Conversation.user_id == user_id,
        Conversation.thread_id.is_(None)
        if thread_id is None
        else Conversation.thread_id == thread_id,
    ]


@cache
def _open_conversation_query(per_user: bool, in_topic: bool) -> Any:
    """The newest open conversation of a scope, by bound parameters (built once per shape:
    building a statement costs as much as running it)."""
    scope = _scope(
        bindparam("chat_id"),
        bindparam("user_id") if per_user else None,
        bindparam("thread_id") if in_topic else None,
    )
    return (
        select(Conversation.id)
        .where(*scope, Conversation.closed_at.is_(None))
        .order_by(Conversation.id.desc())
        .limit(1)
    )


NEW_CONVERSATION = insert(Conversation).returning(Conversation.id)
NEW_MESSAGE = insert(Message).returning(Message.id)
NEW_CONTENT = insert(MessageContent)


async def open_conversation(
    session: AsyncSession, chat_id: int, user_id: int | None, thread_id: int | None = None
) -> int:
    """The id of the open conversation of a scope (per user, per forum topic), opened if none."""
    scope = {"chat_id": chat_id, "user_id": user_id, "thread_id": thread_id}
    query = _open_conversation_query(user_id is not None, thread_id is not None)
    found = await session.scalar(query, scope)
    if found is not None:
        return int(found)
    return int((await session.execute(NEW_CONVERSATION, scope)).scalar_one())


async def close_conversation(
    session: AsyncSession, chat_id: int, user_id: int | None, thread_id: int | None = None
) -> int:
    """Close the open conversation(s) of that scope; return how many were open."""
    result = await session.execute(
        update(Conversation)
        .where(*_scope(chat_id, user_id, thread_id), Conversation.closed_at.is_(None))
        .values(closed_at=func.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def add_message(
    session: AsyncSession,
    *,
    conversation_id: int,
    chat_id: int,
    role: str,
    token_count: int,
    status: str,
    content: str | None = None,
    parts: tuple[Part, ...] = (),
    user_id: int | None = None,
    model: str | None = None,
    telegram_message_id: int | None = None,
    reply_to_id: int | None = None,
) -> int:
    """Insert a message; return its id (a Core insert: no ORM flush on the turn's path).

    A message of `parts` that are more than text gets them as `message_content` rows (one
    more statement), and their text form as `content` unless given; text is one row alone.
    """
    if content is None:
        if not parts:
            raise ValueError("a message needs its content or its parts")
        content = text_form(parts)
    row = {
        "conversation_id": conversation_id,
        "chat_id": chat_id,
        "user_id": user_id,
        "role": role,
        "content": without_nul(content),
        "token_count": token_count,
        "status": status,
        "model": model,
        "telegram_message_id": telegram_message_id,
        "reply_to_id": reply_to_id,
    }
    if not parts or is_plain(parts):
        return int((await session.execute(NEW_MESSAGE, row)).scalar_one())
    message_id = int((await session.execute(NEW_MESSAGE, row | {"has_parts": True})).scalar_one())
    await _add_content(session, message_id, parts)
    return message_id


async def _add_content(session: AsyncSession, message_id: int, parts: tuple[Part, ...]) -> None:
    rows = []
    for position, part in enumerate(parts):
        kind, text, data, blob = encode(part)
        rows.append(
            {
                "message_id": message_id,
                "position": position,
                "kind": kind,
                "text": without_nul(text),
                "data": data,
                "blob": blob,
                "token_count": part.tokens,
            }
        )
    await session.execute(NEW_CONTENT, rows)


async def set_parts(session: AsyncSession, message_id: int, parts: tuple[Part, ...]) -> None:
    """Make `parts` the message's content (a reply's tool calls and results with its text)."""
    await session.execute(delete(MessageContent).where(MessageContent.message_id == message_id))
    plain = is_plain(parts)
    await session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(has_parts=not plain, content=without_nul(text_form(parts)))
    )
    if not plain:
        await _add_content(session, message_id, parts)


class Keep(enum.Enum):
    """The value of a column `finish_message` leaves as it is."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


async def finish_message(
    session: AsyncSession,
    message_id: int,
    *,
    status: str,
    content: str | Keep = KEEP,
    reasoning: str | Keep | None = KEEP,
    token_count: int | Keep = KEEP,
    telegram_message_id: int | Keep | None = KEEP,
) -> None:
    """Set the final state of a message: its status, and the other columns given."""
    given = {
        "status": status,
        "content": content if content is KEEP else without_nul(content),
        "reasoning": reasoning,
        "token_count": token_count,
        "telegram_message_id": telegram_message_id,
    }
    changes = {name: value for name, value in given.items() if value is not KEEP}
    await session.execute(update(Message).where(Message.id == message_id).values(**changes))


async def add_usage(
    session: AsyncSession,
    *,
    chat_id: int,
    user_id: int | None,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    reported: bool,
    latency_ms: int,
    kind: str = "reply",
    message_id: int | None = None,
    first_token_ms: int | None = None,
) -> None:
    session.add(
        Usage(
            message_id=message_id,
            chat_id=chat_id,
            user_id=user_id,
            model=model,
            kind=kind,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            reported=reported,
            latency_ms=latency_ms,
            first_token_ms=first_token_ms,
        )
    )


async def set_deliveries(session: AsyncSession, message_id: int, telegram_ids: list[int]) -> None:
    """Record the Telegram messages showing a message, replacing those recorded before."""
    await session.execute(delete(MessageDelivery).where(MessageDelivery.message_id == message_id))
    if telegram_ids:
        await session.execute(
            insert(MessageDelivery),
            [
                {"message_id": message_id, "position": i, "telegram_message_id": tid}
                for i, tid in enumerate(telegram_ids)
            ],
        )


async def save_pending(
    session: AsyncSession,
    message_id: int,
    content: str,
    token_count: int,
    telegram_ids: list[int] | None,
) -> bool:
    """Store a reply's text so far (and the Telegram messages showing it, when given) while it
    is still pending; False when it was settled meanwhile (nothing is written then)."""
    values: dict[str, Any] = {"content": without_nul(content), "token_count": token_count}
    if telegram_ids:
        values["telegram_message_id"] = telegram_ids[0]
    result = await session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == Status.PENDING)
        .values(**values)
    )
    if not getattr(result, "rowcount", 0):
        return False
    if telegram_ids is not None:
        await set_deliveries(session, message_id, telegram_ids)
    return True


CONTENT_OF = (
    select(
        MessageContent.message_id,
        MessageContent.kind,
        MessageContent.text,
        MessageContent.data,
        MessageContent.blob,
        MessageContent.token_count,
    )
    .where(MessageContent.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(MessageContent.message_id, MessageContent.position)
)


async def content_parts(
    session: AsyncSession, message_ids: list[int]
) -> dict[int, tuple[Part, ...]]:
    """The parts of messages flagged `has_parts`, by message id, each in order."""
    found: dict[int, list[Part]] = {}
    for row in await session.execute(CONTENT_OF, {"ids": message_ids}):
        part = decode(row.kind, row.text, row.data, row.blob, row.token_count)
        found.setdefault(row.message_id, []).append(part)
    return {message_id: tuple(parts) for message_id, parts in found.items()}


async def last_user_message(session: AsyncSession, conversation_id: int) -> Message | None:
    """The newest user message of a conversation that was taken (not rejected)."""
    return await session.scalar(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.role == Role.USER,
            Message.status == Status.COMPLETE,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


async def replace_replies(session: AsyncSession, user_message_id: int) -> None:
    """Take the replies to a user message out of memory (they are being regenerated)."""
    await session.execute(
        update(Message)
        .where(Message.reply_to_id == user_message_id, Message.role == Role.ASSISTANT)
        .values(status=Status.REPLACED)
    )


@cache
def _history_page(page: int) -> Any:
    return (
        select(Message.id, Message.role, Message.content, Message.token_count, Message.has_parts)
        .where(
            Message.conversation_id == bindparam("conversation_id"),
            Message.id < bindparam("before_id"),
            Message.id > bindparam("after_id"),
            Message.status.in_(IN_PROMPT),
        )
        .order_by(Message.id.desc())
        .limit(page)
    )


async def history_newest_first(
    session: AsyncSession,
    conversation_id: int,
    before_id: int,
    page: int = HISTORY_PAGE,
    *,
    after_id: int = 0,
) -> AsyncGenerator[HistoryItem, None]:
    """Messages that belong in prompts, newest first, read page by page (keyset pagination).

    A caller that stops early reads only the pages it needed, so a turn costs O(budget).
    Messages up to `after_id` (those a summary covers) are left out. Parts are read (one
    query per page) only for the messages that have them.
    """
    query = _history_page(page)
    while True:
        bounds = {"conversation_id": conversation_id, "before_id": before_id, "after_id": after_id}
        rows = (await session.execute(query, bounds)).all()
        rich = [row[0] for row in rows if row[4]]  # by index: this loop is the hot path
        if not rich:
            for id_, role, content, tokens, _ in rows:
                yield HistoryItem(id_, role, content, tokens)
        else:
            parts = await content_parts(session, rich)
            for id_, role, content, tokens, _ in rows:
                yield HistoryItem(id_, role, content, tokens, parts.get(id_, ()))
        if len(rows) < page:
            return
        before_id = rows[-1].id


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A reply left `pending` by a process that died mid-stream, and what it answered."""

    id: int
    chat_id: int
    chat_type: str
    content: str
    telegram_ids: list[int]
    question_id: int | None
    question_telegram_id: int | None
    user_id: int | None
    thread_id: int | None
    retried: bool  # the question's earlier replies were replaced: a /retry was running


async def unfinished_replies(
    session: AsyncSession, started_before: datetime | None = None
) -> list[Unfinished]:
    """Replies left pending (begun before `started_before`, when given), oldest first, with the
    ids of the Telegram messages showing them."""
    question = aliased(Message)
    earlier = aliased(Message)
    retried = (
        select(earlier.id)
        .where(earlier.reply_to_id == Message.reply_to_id, earlier.status == Status.REPLACED)
        .exists()
    )
    rows = (
        await session.execute(
            select(
                Message.id,
                Message.chat_id,
                Chat.type,
                Message.content,
                question.id,
                question.telegram_message_id,
                question.user_id,
                Conversation.thread_id,
                retried,
            )
            .join(Chat, Chat.id == Message.chat_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .outerjoin(question, question.id == Message.reply_to_id)
            .where(
                Message.role == Role.ASSISTANT,
                Message.status == Status.PENDING,
                true() if started_before is None else Message.created_at < started_before,
            )
            .order_by(Message.id)
        )
    ).all()
    parts: dict[int, list[int]] = {}
    if rows:
        found = await session.execute(
            select(MessageDelivery.message_id, MessageDelivery.telegram_message_id)
            .where(MessageDelivery.message_id.in_([row[0] for row in rows]))
            .order_by(MessageDelivery.message_id, MessageDelivery.position)
        )
        for message_id, telegram_id in found:
            parts.setdefault(message_id, []).append(telegram_id)
    return [
        Unfinished(row[0], row[1], row[2], row[3], parts.get(row[0], []), *row[4:8], bool(row[8]))
        for row in rows
    ]


async def settle_replies(session: AsyncSession, ids: list[int], status: Status) -> None:
    if ids:
        await session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == Status.PENDING)
            .values(status=status)
        )
