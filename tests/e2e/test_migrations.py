"""The Alembic revisions and the ORM models describe the same schema, on each database."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from bot.db.engine import create_engine
from bot.db.migrate import alembic_config, upgrade_to_head
from bot.db.models import Base


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_migrations_match_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_upgrade_is_idempotent_and_downgrade_reverses_it(database_url: str) -> None:
    engine = create_engine(database_url)

    def downgrade(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "base")

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    try:
        await upgrade_to_head(engine)
        await upgrade_to_head(engine)
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with engine.connect() as conn:
            assert await conn.run_sync(tables) <= {"alembic_version"}
        await upgrade_to_head(engine)
        async with engine.connect() as conn:
            assert "messages" in await conn.run_sync(tables)
    finally:
        await engine.dispose()
