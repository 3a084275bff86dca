"""Queries of the rolling summary: the one in force, a new fold, and what /memory shows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Message, Summary


@dataclass(frozen=True, slots=True)
class SummaryItem:
    """The summary in force: its text, its size as a prompt message and what it covers."""

    id: int
    content: str
    tokens: int
    first_message_id: int
    last_message_id: int


LATEST = (
    select(
        Summary.id,
        Summary.content,
        Summary.token_count,
        Summary.first_message_id,
        Summary.last_message_id,
    )
    .where(Summary.conversation_id == bindparam("conversation_id"))
    .order_by(Summary.id.desc())
    .limit(1)
)


async def latest(session: AsyncSession, conversation_id: int) -> SummaryItem | None:
    row = (await session.execute(LATEST, {"conversation_id": conversation_id})).first()
    return None if row is None else SummaryItem(*row)


async def add(
    session: AsyncSession,
    *,
    conversation_id: int,
    based_on: SummaryItem | None,
    first_message_id: int,
    last_message_id: int,
    content: str,
    tokens: int,
    model: str,
) -> bool:
    """Store a fold, unless it is stale: another fold was stored since `based_on` was read, or
    the messages it covers were deleted meanwhile (/forget)."""
    current = await latest(session, conversation_id)
    if (current.id if current else None) != (based_on.id if based_on else None):
        return False
    if await session.get(Message, last_message_id) is None:
        return False
    session.add(
        Summary(
            conversation_id=conversation_id,
            first_message_id=first_message_id,
            last_message_id=last_message_id,
            content=content,
            token_count=tokens,
            model=model,
        )
    )
    return True
