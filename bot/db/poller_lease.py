"""Queries of the poller lease: claim it, take it over from a dead or silent holder, renew it,
let it go. Every change is conditional on the holder, so two processes never both win."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import PollerLease


class Lease(NamedTuple):
    holder: str
    heartbeat_at: datetime


async def claim(session: AsyncSession, bot_id: int, holder: str, now: datetime) -> bool:
    """Take the lease if nobody holds it (one atomic INSERT … ON CONFLICT DO NOTHING)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(PollerLease)
        .values(bot_id=bot_id, holder=holder, acquired_at=now, heartbeat_at=now)
        .on_conflict_do_nothing()
        .returning(PollerLease.bot_id)
    )
    return (await session.scalar(statement)) is not None


async def current(session: AsyncSession, bot_id: int) -> Lease | None:
    row = (
        await session.execute(
            select(PollerLease.holder, PollerLease.heartbeat_at).where(PollerLease.bot_id == bot_id)
        )
    ).first()
    if row is None:
        return None
    beat = row.heartbeat_at
    return Lease(row.holder, beat if beat.tzinfo else beat.replace(tzinfo=UTC))  # SQLite: naive


async def take_over(
    session: AsyncSession, bot_id: int, holder: str, previous: str, now: datetime
) -> bool:
    """Take the lease from `previous`; False if someone else changed it first."""
    statement = (
        update(PollerLease)
        .where(PollerLease.bot_id == bot_id, PollerLease.holder == previous)
        .values(holder=holder, acquired_at=now, heartbeat_at=now)
        .returning(PollerLease.bot_id)
    )
    return (await session.scalar(statement)) is not None


async def renew(session: AsyncSession, bot_id: int, holder: str, now: datetime) -> bool:
    """Move the heartbeat on; False when the lease is no longer `holder`'s."""
    statement = (
        update(PollerLease)
        .where(PollerLease.bot_id == bot_id, PollerLease.holder == holder)
        .values(heartbeat_at=now)
        .returning(PollerLease.bot_id)
    )
    return (await session.scalar(statement)) is not None


async def release(session: AsyncSession, bot_id: int, holder: str) -> None:
    await session.execute(
        delete(PollerLease).where(PollerLease.bot_id == bot_id, PollerLease.holder == holder)
    )
