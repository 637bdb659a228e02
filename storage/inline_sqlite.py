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

Statements built once (module constants, marked with `prepared`) skip even SQLAlchemy's execution
path here: SQLAlchemy compiles such a statement once for this connection, and each call then only
orders and converts its parameters as SQLAlchemy would and hands them to sqlite3. SQLAlchemy's path
costs ten times what SQLite takes for the statements of a dialog step (bench/README.md, finding 17).
"""
from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Connection, CursorResult, Executable
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection, AsyncAdapt_dbapi_cursor
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import Dialect, IteratorResult
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.exc import DBAPIError
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_, in_greenlet

NAME = "sqlite.oberih"  # registered in storage.engine: SQLite URLs become sqlite+oberih://

S = TypeVar("S", bound=Executable)
_PREPARED: dict[int, Executable] = {}  # by id; kept alive here, so an id is never reused


def prepared(statement: S) -> S:
    """Mark a statement that is built once and run often: on SQLite it runs without SQLAlchemy's
    execution path (`InlineConnection`); elsewhere nothing changes."""
    _PREPARED[id(statement)] = statement
    return statement


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
    SQLite needs no event loop, so a transaction on this connection skips that layer altogether, and
    a `prepared` statement SQLAlchemy's execution path too (`_Plan`)."""

    __slots__ = ("_driver", "_plans", "sync_connection")

    def __init__(self, sync_connection: Connection) -> None:
        self.sync_connection = sync_connection
        self._driver: sqlite3.Connection = sync_connection.connection.driver_connection
        self._plans: dict[tuple[int, tuple[str, ...]], _Plan | None] = {}

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        sync = self.sync_connection
        # With event listeners on the engine, every statement goes SQLAlchemy's way, so they see it.
        direct = id(statement) in _PREPARED and not (sync._has_events or sync.engine._has_events)
        plan = self._plan(statement, parameters) if direct else None
        if plan is None:
            return sync.execute(statement, parameters)
        return plan.run(self._driver, parameters or {})

    def _plan(self, statement: Executable, parameters: Any) -> _Plan | None:
        if parameters is not None and not isinstance(parameters, Mapping):
            return None  # several sets of parameters (executemany): SQLAlchemy's path
        # An INSERT's columns are the parameters given: one plan per set of names.
        key = (id(statement), tuple(parameters or ()))
        try:
            return self._plans[key]
        except KeyError:
            plan = self._plans[key] = _Plan.build(statement, key[1], self.sync_connection.dialect)
            return plan


class _Rows(IteratorResult[Any]):
    """A statement's rows, with the result API repositories use (`one`, `scalars`, `rowcount`…)."""

    rowcount = -1


class _Plan:
    """A prepared statement compiled for SQLite: its SQL, its parameters in order with SQLAlchemy's
    conversions (a datetime to text…), and its columns with theirs (text back to a datetime…)."""

    __slots__ = ("_columns", "_compiled", "_conversions", "_dialect", "_sql", "_to_python")

    def __init__(self, compiled: Any, dialect: Dialect) -> None:
        self._compiled = compiled
        self._dialect = dialect
        self._sql: str = compiled.string
        binds = compiled.binds
        self._conversions = tuple(
            (name, binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in compiled.positiontup
        )
        columns = compiled._result_columns  # (key, name, objects, type) per column, as SQLAlchemy reads rows
        self._columns = SimpleResultMetaData([column.keyname for column in columns])
        to_python = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self._to_python: tuple[Callable[[Any], Any] | None, ...] | None = (
            tuple(to_python) if any(to_python) else None
        )

    @classmethod
    def build(cls, statement: Executable, names: tuple[str, ...], dialect: Dialect) -> _Plan | None:
        """The plan, or None for a statement this path does not cover: SQLAlchemy runs it then."""
        compiled = statement.compile(dialect=dialect, column_keys=sorted(names))
        if (
            not compiled.positional
            or compiled.insert_prefetch or compiled.update_prefetch  # Python-side column defaults
            or compiled.post_compile_params or compiled.literal_execute_params  # IN lists of any length
            or compiled.escaped_bind_names
        ):
            return None
        return cls(compiled, dialect)

    def run(self, driver: sqlite3.Connection, parameters: Mapping[str, Any]) -> _Rows:
        try:
            values = self._compiled.construct_params(parameters)
            ordered = [values[name] if convert is None else convert(values[name])
                       for name, convert in self._conversions]
            cursor = _execute(driver, self._sql, ordered)
            rows = cursor.fetchall() if cursor.description else []
        except Exception as error:  # raised as SQLAlchemy raises it, the values left out of the message
            raise DBAPIError.instance(self._sql, parameters, error, sqlite3.Error, hide_parameters=True,
                                      dialect=self._dialect) from error
        if self._to_python is not None and rows:
            to_python = self._to_python
            rows = [tuple(value if convert is None else convert(value) for value, convert in zip(row, to_python))
                    for row in rows]
        result = _Rows(self._columns, iter(rows))
        result.rowcount = cursor.rowcount
        return result


def _execute(driver: sqlite3.Connection, sql: str, parameters: list[Any]) -> sqlite3.Cursor:
    # (A function of its own: the benchmark counts statements here.)
    return driver.execute(sql, parameters)
