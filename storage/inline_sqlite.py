"""SQLite for the async engine, run in the event loop's own thread on one connection.

SQLite is a library inside this process, not a server: a query on a local file takes microseconds,
while aiosqlite's thread per connection costs a thread hand-off, a wake-up of the event loop and a
fight for the GIL on every statement, several times what the statement itself costs (bench/README.md).
So SQLite runs here the way it is meant to: synchronously, on a single connection. The Database
runs one transaction at a time on it (an asyncio lock), and a transaction never waits on the network
while it holds that lock (network calls wait for the commit: `Transaction.after_commit`), so the
lock is held only for the microseconds the statements take. A write-ahead-log checkpoint, or another
process holding the write lock, pauses the event loop briefly; a deployment with several processes
should use PostgreSQL.
"""
from __future__ import annotations

import collections
import sqlite3
from typing import Any

from sqlalchemy import Connection, CursorResult, Executable
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection, AsyncAdapt_dbapi_cursor
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_, in_greenlet

NAME = "sqlite.oberih"  # registered in storage.engine: SQLite URLs become sqlite+oberih://


class _Done:
    """An awaitable that finishes at once, without yielding to the event loop."""

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


_DONE = _Done()


class _Cursor(AsyncAdapt_dbapi_cursor):
    """SQLAlchemy's asyncio cursor adapter, calling sqlite3 directly."""

    __slots__ = ()
    _awaitable_cursor_close = False

    def __init__(self, adapt_connection: _Connection) -> None:  # not super(): it would await a cursor
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = self._connection.cursor()
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        result = self._cursor.execute(operation, parameters or ())
        if self._cursor.description:
            self._rows = collections.deque(self._cursor.fetchall())
        _awaited()
        return result

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        result = self._cursor.executemany(operation, seq_of_parameters)
        _awaited()
        return result


def _awaited() -> None:
    # Called through the asyncio layer (AsyncConnection: migrations, tools), a statement must have
    # awaited something (that layer's guard against drivers that block): this awaits something
    # already done. Called through InlineConnection there is no such layer and nothing to do.
    if in_greenlet():
        await_(_DONE)


class _Connection(AsyncAdapt_dbapi_connection):
    """A sqlite3 connection behind SQLAlchemy's asyncio connection adapter."""

    __slots__ = ()
    _cursor_cls = _Cursor
    _ss_cursor_cls = _Cursor

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value

    def create_function(self, *args: Any, **kw: Any) -> None:
        self._connection.create_function(*args, **kw)

    def rollback(self) -> None:
        self._connection.rollback()

    def commit(self) -> None:
        self._connection.commit()

    def close(self) -> None:
        self._connection.close()


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    """The standard pysqlite dialect (same SQL, same transaction handling), usable by the async engine."""

    is_async = True
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return sqlite3

    @classmethod
    def get_async_dialect_cls(cls, url: Any) -> type[InlineSQLiteDialect]:
        return cls

    def connect(self, *cargs: Any, **cparams: Any) -> _Connection:
        return _Connection(sqlite3, sqlite3.connect(*cargs, **cparams))

    def get_driver_connection(self, connection: Any) -> Any:
        return connection._connection


class InlineConnection:
    """SQLite's one connection as repositories use it: `await connection.execute(...)`, run right here.

    The asyncio layer would run each statement in a greenlet and back (AsyncConnection.execute), which
    costs twice what SQLAlchemy's own work for a prebuilt statement costs (bench/README.md, finding 9);
    SQLite needs no event loop, so a transaction on this connection skips that layer altogether."""

    __slots__ = ("sync_connection",)

    def __init__(self, sync_connection: Connection) -> None:
        self.sync_connection = sync_connection

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters)
