"""The engine's connection settings, as the database itself reports them."""

from __future__ import annotations

from sqlalchemy import select, text

from bot.db import store
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head


async def test_connections_are_set_up_for_the_bot(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                pragmas = {
                    name: (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                    for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
                }
                assert pragmas == {
                    "journal_mode": "wal",
                    "busy_timeout": 30_000,
                    "foreign_keys": 1,
                    "synchronous": 1,  # NORMAL: durable in WAL mode, no fsync per commit
                }
            else:
                mode = await connection.execute(text("SHOW plan_cache_mode"))
                assert mode.scalar() == "force_custom_plan"
    finally:
        await engine.dispose()


async def test_postgresql_never_keeps_a_generic_plan_for_a_conversations_history(
    database_url: str,
) -> None:
    # A generic plan for "newest messages of conversation $1" walks the primary key backwards:
    # right for the longest conversation, a whole-table read for a short one.
    engine = create_engine(database_url, pool_size=1)
    if engine.dialect.name != "postgresql":
        await engine.dispose()
        return  # SQLite plans every statement anew anyway
    try:
        await upgrade_to_head(engine)
        async with create_sessionmaker(engine)() as session:
            for conversation_id in range(1, 11):  # more runs than PostgreSQL's five custom plans
                history = store.history_newest_first(session, conversation_id, 2**62)
                assert [item async for item in history] == []
            rows = (
                await session.execute(
                    select(text("statement, generic_plans, custom_plans")).select_from(
                        text("pg_prepared_statements")
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    [history_plans] = [r for r in rows if "FROM messages" in r.statement]
    assert history_plans.generic_plans == 0
    assert history_plans.custom_plans >= 10
