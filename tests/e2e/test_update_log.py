"""The update log on the real database: a burst of updates is taken in one statement, each one
once, and marked done together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update

from bot.db import update_log
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.db.models import UpdateLog
from bot.runtime.update_gate import UpdateGate


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


def inserts_into_update_log(engine: AsyncEngine) -> list[str]:
    """The INSERT statements into update_log the engine runs from now on."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO update_log"):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    return seen


def row(update_id: int, chat_id: int) -> update_log.Taken:
    return update_log.Taken(update_id, chat_id, None, "{}")


async def test_a_batch_takes_each_update_once(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    async with sessions.begin() as session:
        first = await update_log.record(session, [row(1, 10), row(2, 10), row(1, 10)])
    async with sessions.begin() as session:
        again = await update_log.record(session, [row(2, 10), row(3, 11)])
        await update_log.mark_done(session, [1, 3])
    assert first == [True, True, False], "the same id twice in a batch is taken once"
    assert again == [False, True], "a redelivery is not taken again"
    async with sessions() as session:
        done = dict((await session.execute(select(UpdateLog.update_id, UpdateLog.done))).all())
    assert done == {1: True, 2: False, 3: True}


async def test_a_burst_through_the_gate_is_one_insert(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    gate = UpdateGate(engine, sessions)
    inserts = inserts_into_update_log(engine)
    burst = [Update(update_id=n) for n in (5, 6, 7, 5)]
    taken = await asyncio.gather(*(gate.record(u) for u in burst))
    await asyncio.gather(*(gate.done(n) for n in (5, 7)))
    await gate.close()
    assert taken == [True, True, True, False]
    assert len(inserts) == 1
    async with sessions() as session:
        done = dict((await session.execute(select(UpdateLog.update_id, UpdateLog.done))).all())
    assert done == {5: True, 6: False, 7: True}
