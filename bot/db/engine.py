"""Engine and session factory: SQLite tuned for a bot (WAL, busy timeout) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.db import sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Under a burst (hundreds of chats at once on a busy CPU) a turn waits for a connection rather
# than failing; a wait this long means the machine is overloaded, not that a query is stuck.
POOL_TIMEOUT_SECONDS = 120
# asyncpg prepares every statement, and after five runs PostgreSQL may keep a generic plan. For
# "a conversation's newest messages" that plan walks the primary key backwards, which is right
# for the longest conversation and reads the whole table for a short one (bench/: 52 ms
# instead of 0.02 ms at 110k messages, growing with the table). Plan with the real values.
POSTGRES_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """Create the async engine; for SQLite make the data dir and turn on WAL and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if parsed.get_driver_name() == "aiosqlite":
            parsed = parsed.set(drivername=f"sqlite+{sqlite_driver.DRIVER}")
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_timeout=POOL_TIMEOUT_SECONDS,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # At most 2 × pool_size connections: size PostgreSQL's max_connections for every process.
    return create_async_engine(
        url,
        connect_args={"server_settings": POSTGRES_SETTINGS},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_pre_ping=True,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
