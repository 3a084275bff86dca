"""Queries behind admin commands: presets, global overrides, access flags, audit, stats.

Every change an admin makes is written together with its audit row, in the caller's
transaction, so the log never disagrees with the state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, cast, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Audit, Chat, GlobalSetting, Message, Prompt, Usage, User
from bot.values import Role


def _show(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


async def audit(
    session: AsyncSession, actor: int, action: str, target: str, old: Any, new: Any
) -> None:
    session.add(
        Audit(
            actor_id=actor, action=action, target=target, old_value=_show(old), new_value=_show(new)
        )
    )


OVERRIDES = select(GlobalSetting.key, GlobalSetting.value)


async def overrides(session: AsyncSession) -> dict[str, Any]:
    """Global run-time overrides, decoded."""
    rows = await session.execute(OVERRIDES)
    return {key: json.loads(value) for key, value in rows}


async def set_override(session: AsyncSession, actor: int, key: str, value: Any) -> Any:
    """Set (or with None, remove) a global override; return the previous value."""
    row = await session.get(GlobalSetting, key)
    old = json.loads(row.value) if row is not None else None
    if value is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(GlobalSetting(key=key, value=json.dumps(value), updated_by=actor))
    else:
        row.value, row.updated_by = json.dumps(value), actor
    await audit(session, actor, "set_global", key, old, value)
    return old


async def set_chat_field(
    session: AsyncSession, actor: int, chat_id: int, column: str, value: Any
) -> Any:
    """Change one column of a chat row; return the previous value."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        raise LookupError(f"chat {chat_id} has not talked to the bot yet")
    old = getattr(chat, column)
    setattr(chat, column, value)
    await audit(session, actor, f"set_chat_{column}", str(chat_id), old, value)
    return old


async def preset(session: AsyncSession, name: str) -> Prompt | None:
    """The current version of a preset, None if it does not exist or was deleted."""
    row = await session.scalar(
        select(Prompt).where(Prompt.name == name).order_by(Prompt.version.desc()).limit(1)
    )
    return None if row is None or row.deleted else row


async def presets(session: AsyncSession) -> list[Prompt]:
    newest = (
        select(Prompt.name, func.max(Prompt.version).label("version"))
        .group_by(Prompt.name)
        .subquery()
    )
    rows = await session.scalars(
        select(Prompt)
        .join(newest, (Prompt.name == newest.c.name) & (Prompt.version == newest.c.version))
        .where(Prompt.deleted.is_(False))
        .order_by(Prompt.name)
    )
    return list(rows)


async def preset_history(session: AsyncSession, name: str) -> list[Prompt]:
    rows = await session.scalars(select(Prompt).where(Prompt.name == name).order_by(Prompt.version))
    return list(rows)


async def save_preset(
    session: AsyncSession, actor: int, name: str, text: str, *, deleted: bool = False
) -> int:
    """Write a new version of a preset (a tombstone when deleted); return its version."""
    current = await session.scalar(
        select(Prompt).where(Prompt.name == name).order_by(Prompt.version.desc()).limit(1)
    )
    version = (current.version if current else 0) + 1
    session.add(Prompt(name=name, version=version, text=text, author_id=actor, deleted=deleted))
    old = None if current is None or current.deleted else current.text
    await audit(session, actor, "delete_preset" if deleted else "save_preset", name, old, text)
    return version


async def set_user_flag(
    session: AsyncSession, actor: int, user_id: int, flag: str, value: bool
) -> None:
    """Allow or block a user, creating the row if they never wrote to the bot."""
    user = await session.get(User, user_id)
    if user is None:
        user = User(id=user_id, first_name="", is_allowed=False, is_blocked=False)
        session.add(user)
    old = getattr(user, flag)
    setattr(user, flag, value)
    await audit(session, actor, f"set_user_{flag}", str(user_id), old, value)


@dataclass(frozen=True, slots=True)
class AccessFlags:
    """What decides whether a user may chat, read in one query (it runs on every message)."""

    user_blocked: bool
    user_allowed: bool
    chat_allowed: bool
    allowlist_in_use: bool  # an admin allowed some user or chat: closed to everyone else


def _access_flags_query() -> Any:
    def flag(column: Any, table_id: Any, key: str) -> Any:
        return select(column).where(table_id == bindparam(key)).scalar_subquery()

    in_use = exists().where(User.is_allowed.is_(True)) | exists().where(Chat.is_allowed.is_(True))
    return select(
        flag(User.is_blocked, User.id, "user_id"),
        flag(User.is_allowed, User.id, "user_id"),
        flag(Chat.is_allowed, Chat.id, "chat_id"),
        in_use,
    )


ACCESS_FLAGS = _access_flags_query()


async def access_flags(session: AsyncSession, user_id: int, chat_id: int | None) -> AccessFlags:
    values = {"user_id": user_id, "chat_id": chat_id}
    row = (await session.execute(ACCESS_FLAGS, values)).one()
    return AccessFlags(*(bool(value) for value in row))


@dataclass(frozen=True, slots=True)
class Stats:
    users: int
    chats: int
    messages: int
    tokens_by_day: list[tuple[str, int]]
    tokens_by_user: list[tuple[int, str, int]]


async def stats(session: AsyncSession, days: int) -> Stats:
    since = datetime.now(UTC) - timedelta(days=days)
    tokens = func.sum(Usage.prompt_tokens + Usage.completion_tokens)
    day = func.substr(cast(Usage.created_at, String), 1, 10)  # YYYY-MM-DD on both databases
    by_day = await session.execute(
        select(day, tokens).where(Usage.created_at >= since).group_by(day).order_by(day)
    )
    by_user = await session.execute(
        select(Usage.user_id, func.coalesce(User.username, User.first_name, ""), tokens)
        .outerjoin(User, User.id == Usage.user_id)
        .where(Usage.created_at >= since)
        .group_by(Usage.user_id, User.username, User.first_name)
        .order_by(tokens.desc())
        .limit(10)
    )
    return Stats(
        users=await session.scalar(select(func.count()).select_from(User)) or 0,
        chats=await session.scalar(select(func.count()).select_from(Chat)) or 0,
        messages=await session.scalar(
            select(func.count()).select_from(Message).where(Message.role != Role.SYSTEM)
        )
        or 0,
        tokens_by_day=[(str(d), int(t or 0)) for d, t in by_day],
        tokens_by_user=[(int(u or 0), str(n or ""), int(t or 0)) for u, n, t in by_user],
    )


async def tokens_since(session: AsyncSession, user_id: int, since: datetime) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Usage.prompt_tokens + Usage.completion_tokens), 0)).where(
            Usage.user_id == user_id, Usage.created_at >= since
        )
    )
    return int(total or 0)


async def messages_since(session: AsyncSession, user_id: int, since: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.user_id == user_id, Message.role == Role.USER, Message.created_at >= since)
    )
    return int(count or 0)
