"""Queries of the update log: take an update once, find a chat's earlier pending ones, mark
them done, forget old ones.

A pending row holds the update's payload (what a replay after a crash needs); marking it done
empties the payload, so what stays for de-duplication is ids only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import UpdateLog

KEEP_DONE = timedelta(days=2)  # Telegram keeps an unconfirmed update for 24 hours
ROWS_PER_STATEMENT = 400  # 1,600 bound values: well within SQLite's and PostgreSQL's limits


class Taken(NamedTuple):
    """One update to record: its ids, and its payload ("" when too large to keep)."""

    update_id: int
    chat_id: int | None
    user_id: int | None
    payload: str


async def record(session: AsyncSession, updates: Sequence[Taken]) -> list[bool]:
    """Insert the rows in one statement; per row, False when it was taken before (a
    redelivery, or the same id earlier in the list)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    new: set[int] = set()
    for start in range(0, len(updates), ROWS_PER_STATEMENT):
        rows = [taken._asdict() for taken in updates[start : start + ROWS_PER_STATEMENT]]
        statement = insert(UpdateLog).values(rows).on_conflict_do_nothing()
        new.update((await session.scalars(statement.returning(UpdateLog.update_id))).all())
    taken: list[bool] = []
    for update_id, *_ in updates:
        taken.append(update_id in new)
        new.discard(update_id)
    return taken


async def pending_before(
    session: AsyncSession, chat_id: int, update_id: int | None = None
) -> list[UpdateLog]:
    """Updates of the chat taken before `update_id` (None: all) and not done yet, oldest first."""
    query = select(UpdateLog).where(UpdateLog.chat_id == chat_id, UpdateLog.done.is_(False))
    if update_id is not None:
        query = query.where(UpdateLog.update_id < update_id)
    return list(await session.scalars(query.order_by(UpdateLog.update_id)))


async def pending_chats(session: AsyncSession) -> list[int]:
    """Chats with updates taken but never handled (a previous run was killed), oldest first."""
    rows = await session.execute(
        select(UpdateLog.chat_id, func.min(UpdateLog.update_id).label("first"))
        .where(UpdateLog.done.is_(False), UpdateLog.chat_id.is_not(None))
        .group_by(UpdateLog.chat_id)
        .order_by("first")
    )
    return [chat_id for chat_id, _ in rows if chat_id is not None]


async def is_done(session: AsyncSession, update_id: int) -> bool:
    done = await session.scalar(select(UpdateLog.done).where(UpdateLog.update_id == update_id))
    return bool(done)


async def mark_done(session: AsyncSession, update_ids: list[int]) -> None:
    """Mark updates done and drop their payloads (one statement for the whole batch)."""
    await session.execute(
        update(UpdateLog).where(UpdateLog.update_id.in_(update_ids)).values(done=True, payload="")
    )


async def prune(session: AsyncSession, now: datetime | None = None) -> int:
    """Forget done updates older than `KEEP_DONE`; return how many."""
    cutoff = (now or datetime.now(UTC)) - KEEP_DONE
    result = await session.execute(
        delete(UpdateLog).where(UpdateLog.done.is_(True), UpdateLog.received_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)
