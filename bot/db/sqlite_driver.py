"""SQLite through aiosqlite with one trip to its worker thread per statement.

SQLAlchemy's aiosqlite adapter makes four trips per statement (open a cursor, execute, fetch,
close), each a queue hand-off to aiosqlite's thread and a wake-up of the event loop. On a turn's
path that was ~0.8 ms per statement and most of the bot's own time before the model request
(bench/). Here one function does all four in the worker thread; what SQLAlchemy reads of the
cursor afterwards (description, rowcount, lastrowid) is kept from that trip.

`create_engine` uses it for every ``sqlite+aiosqlite`` URL; it is SQLAlchemy's own dialect
otherwise (same SQL, same errors, same pool).
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)

DRIVER = "aiosqlite_onetrip"


class _Ran:
    """What SQLAlchemy reads of a cursor once its statement has run (the cursor is closed)."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor | None = None) -> None:
        self.description = cursor.description if cursor else None
        self.rowcount = cursor.rowcount if cursor else -1
        self.lastrowid = cursor.lastrowid if cursor else None
        self.arraysize = 1

    def close(self) -> None:
        """Closed in the worker thread already."""


def _run(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[_Ran, list[Any] | None]:
    """In aiosqlite's thread: run the statement, fetch its rows, close the cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return _Ran(cursor), rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False  # nothing left to close after the trip

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Ran()

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._trip(operation, () if parameters is None else parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: str, parameters: Any, *, many: bool) -> None:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            trip = driver._execute(_run, driver._conn, operation, parameters, many)  # type: ignore[no-untyped-call]
            ran, rows = await trip
        self._cursor = ran
        if rows is not None:
            self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        stock = super().connect(*arg, **kw)
        return OneTripConnection(self, stock._connection)


class OneTripDialect(SQLiteDialect_aiosqlite):
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> OneTripDBAPI:
        return OneTripDBAPI(aiosqlite, sqlite3)


registry.register(f"sqlite.{DRIVER}", __name__, "OneTripDialect")
