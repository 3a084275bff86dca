"""The one-trip aiosqlite driver: the same results and errors as SQLAlchemy's own, in one trip
to aiosqlite's thread per statement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.engine import create_engine
from bot.db.sqlite_driver import OneTripDialect


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/one.db")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions sent to aiosqlite's worker thread, by name."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


async def test_sqlite_aiosqlite_urls_get_the_one_trip_dialect(engine: AsyncEngine) -> None:
    assert isinstance(engine.dialect, OneTripDialect)
    assert engine.dialect.name == "sqlite"


async def test_rows_columns_rowcount_and_lastrowid_are_those_of_the_statement(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert inserted.lastrowid == 1
        await connection.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
        returned = await connection.execute(text("INSERT INTO t (v) VALUES ('d') RETURNING id, v"))
        assert returned.all() == [(4, "d")]
        changed = await connection.execute(text("UPDATE t SET v = v || '!' WHERE id > 2"))
        assert changed.rowcount == 2
        result = await connection.execute(text("SELECT id, v AS value FROM t ORDER BY id"))
        assert list(result.keys()) == ["id", "value"]
        assert result.all() == [(1, "a"), (2, "b"), (3, "c!"), (4, "d!")]
        streamed = await connection.stream(text("SELECT v FROM t ORDER BY id DESC"))
        assert [row.v async for row in streamed] == ["d!", "c!", "b", "a"]


async def test_a_statement_takes_one_trip_to_the_worker_thread(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))  # the transaction's start is not measured
        trips.clear()
        rows = await connection.execute(text("SELECT id FROM t"))
        await connection.execute(text("INSERT INTO t (v) VALUES ('x')"))
        assert rows.all() == []
        assert trips == ["_run", "_run"]


async def test_errors_are_sqlalchemys_and_the_connection_stays_usable(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO t (v) VALUES ('same')"))
        with pytest.raises(IntegrityError, match="UNIQUE"):
            await connection.execute(text("INSERT INTO t (v) VALUES ('same')"))
        await connection.rollback()
        with pytest.raises(OperationalError, match="no such table"):
            await connection.execute(text("SELECT * FROM missing"))
        await connection.rollback()
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
