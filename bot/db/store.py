"""The queries of a turn. Each takes a session; callers decide transaction boundaries."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    IN_PROMPT,
    Chat,
    Conversation,
    Message,
    MessagePart,
    Status,
    Usage,
    User,
)
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


async def add_message(session: AsyncSession, **fields: Any) -> int:
    """Insert a message; return its id (a Core insert: no ORM flush on the turn's path)."""
    fields["content"] = without_nul(fields["content"])
    return int((await session.execute(NEW_MESSAGE, fields)).scalar_one())


async def finish_message(session: AsyncSession, message_id: int, **fields: Any) -> None:
    if "content" in fields:
        fields["content"] = without_nul(fields["content"])
    await session.execute(update(Message).where(Message.id == message_id).values(**fields))


async def add_usage(session: AsyncSession, **fields: Any) -> None:
    session.add(Usage(**fields))


async def add_parts(session: AsyncSession, message_id: int, telegram_ids: list[int]) -> None:
    session.add_all(
        MessagePart(message_id=message_id, position=i, telegram_message_id=tid)
        for i, tid in enumerate(telegram_ids)
    )


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
        select(Message.id, Message.role, Message.content, Message.token_count)
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
    Messages up to `after_id` (those a summary covers) are left out.
    """
    query = _history_page(page)
    while True:
        bounds = {"conversation_id": conversation_id, "before_id": before_id, "after_id": after_id}
        rows = (await session.execute(query, bounds)).all()
        for row in rows:
            yield HistoryItem(row.id, row.role, row.content, row.token_count)
        if len(rows) < page:
            return
        before_id = rows[-1].id


async def close_unfinished_replies(session: AsyncSession) -> int:
    """Settle replies left `pending` by a process that died mid-stream; return how many.

    Run at start-up, before any update is taken: partial text already saved is kept as
    `interrupted` (it enters later prompts like any cut reply); a reply with no saved text
    becomes `failed`. Assumes one bot process per database (polling allows only one).
    """
    unfinished = (
        Message.role == Role.ASSISTANT,
        Message.status == Status.PENDING,
    )
    kept = await session.execute(
        update(Message).where(*unfinished, Message.content != "").values(status=Status.INTERRUPTED)
    )
    empty = await session.execute(update(Message).where(*unfinished).values(status=Status.FAILED))
    return sum(int(getattr(result, "rowcount", 0) or 0) for result in (kept, empty))
