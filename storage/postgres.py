"""PostgreSQL through asyncpg: a transaction's BEGIN, COMMIT and prepared statements said by asyncpg itself.

SQLAlchemy's asyncio layer runs every statement in a greenlet and through its execution path; on
this 2-core machine that cost about 150 µs of CPU per statement against asyncpg's 50, and its
transaction handling a checkout ping of three round trips plus a BEGIN sent before the first
statement (bench/README.md, "PostgreSQL speed"). Here a transaction is asyncpg's own (`transaction()`,
public API) on a pooled connection that SQLAlchemy is told is in AUTOCOMMIT mode, so that SQLAlchemy
never begins or commits anything itself: statements it runs (those not marked `prepared`, DDL,
tools) run inside asyncpg's transaction like the others. Statements marked `prepared` run on the
fast path (storage/fast_path.py) with asyncpg's `fetch` and `execute`, which keep each statement
prepared on the connection. Errors of asyncpg are raised as SQLAlchemy's classes (by SQLSTATE class,
as PEP 249 drivers name them), so callers see one kind of error on either path.

A connection asyncpg knows is closed (the server restarted, the network dropped) is thrown away at
checkout instead of pinged, and one that fails with a connection error is invalidated, so the next
transaction gets a fresh one.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asyncpg.transaction import Transaction
from sqlalchemy import Connection, Executable, Result, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.fast_path import FastPath

OnStatement = Callable[[Executable], None]

# PEP 249's error classes by SQLSTATE class (the first two characters), as psycopg names them.
_ERROR_CLASSES: dict[str, type[exc.DBAPIError]] = {
    "23": exc.IntegrityError, "22": exc.DataError, "42": exc.ProgrammingError, "0A": exc.NotSupportedError,
    "08": exc.OperationalError, "40": exc.OperationalError, "53": exc.OperationalError,
    "54": exc.OperationalError, "55": exc.OperationalError, "57": exc.OperationalError,
    "58": exc.OperationalError, "XX": exc.InternalError,
}  # fmt: skip
_CONNECTION_ERRORS = (asyncpg.InterfaceError, OSError)  # the connection is unusable: throw it away


class PostgresError(Exception):
    """An asyncpg error as callers see it: its SQLSTATE and its message without the DETAIL, which
    quotes values (a key that already exists), as SQLAlchemy's own path words it."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(getattr(error, "message", None) or type(error).__name__)
        self.sqlstate: str | None = getattr(error, "sqlstate", None)


def error_class(error: BaseException) -> type[exc.DBAPIError]:
    """SQLAlchemy's class for an asyncpg error."""
    if isinstance(error, asyncpg.PostgresError):
        return _ERROR_CLASSES.get(str(getattr(error, "sqlstate", "") or "")[:2], exc.DatabaseError)
    return exc.InterfaceError if isinstance(error, asyncpg.InterfaceError) else exc.OperationalError


class PostgresConnection:
    """One transaction's connection as repositories use it: `await connection.execute(...)`."""

    __slots__ = ("_driver", "_fast", "_on_statement", "connection", "sync_connection", "xact")

    def __init__(self, connection: AsyncConnection, driver: asyncpg.Connection, fast: FastPath | None,
                 on_statement: OnStatement | None = None) -> None:
        self.connection = connection
        self.sync_connection: Connection = connection.sync_connection
        self._driver = driver
        self._fast = fast
        self._on_statement = on_statement
        self.xact: Transaction | None = None  # asyncpg's, begun by the first statement

    async def _begin(self) -> None:
        """BEGIN before the first statement, not at checkout: a transaction that runs no statement
        (a poll that finds its work in memory) then costs no BEGIN and COMMIT round trips."""
        xact = self._driver.transaction()
        await _said(self.connection, "BEGIN", xact.start())
        self.xact = xact

    async def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        if self.xact is None:
            await self._begin()
        if self._on_statement is not None:
            self._on_statement(statement)
        plan = None if self._fast is None else self._fast.plan(statement, parameters, self.sync_connection)
        if plan is None:
            return await self.connection.execute(statement, parameters)
        values: Mapping[str, Any] = parameters or {}
        try:
            arguments = plan.arguments(values)
            if plan.returns_rows:
                rows = await self._driver.fetch(plan.sql, *arguments)
                return plan.result(rows, len(rows))
            status = await self._driver.execute(plan.sql, *arguments)
        except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as error:
            if isinstance(error, _CONNECTION_ERRORS):
                await self.connection.invalidate()
            raise plan.error(values, PostgresError(error), Exception, error_class(error)) from error
        except Exception as error:  # a value the driver cannot take: as SQLAlchemy says it
            raise plan.error(values, error, asyncpg.PostgresError) from error
        return plan.result((), _count(status))

    async def run_sync(self, call: Callable[[Connection], Any]) -> Any:
        if self.xact is None:
            await self._begin()
        return await self.connection.run_sync(call)


def _count(status: str) -> int:
    """The rows a command touched, from its status ("UPDATE 3", "INSERT 0 1"); -1 if it does not say."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else -1


@asynccontextmanager
async def transaction(engine: AsyncEngine, fast: FastPath | None,
                      on_statement: OnStatement | None = None,
                      on_commit: Callable[[], None] | None = None) -> AsyncIterator[PostgresConnection]:
    """A transaction on a connection of `engine`'s pool: committed when the block ends, rolled back if
    it raises; asyncpg's errors raised as SQLAlchemy's."""
    async with engine.connect() as connection:
        # Set on the connection, not the engine: an engine's option is an event listener, which
        # would make SQLAlchemy dispatch events on every statement. The pool resets it on return.
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        driver = await _driver(connection)
        if driver.is_closed() or driver.is_in_transaction():  # broken under the pool: a fresh one
            await connection.invalidate()
            driver = await _driver(connection)
        pg = PostgresConnection(connection, driver, fast, on_statement)
        try:
            yield pg
        except BaseException:
            if pg.xact is not None:
                try:
                    await pg.xact.rollback()
                except BaseException:  # noqa: BLE001 - the first error is the one to raise
                    await connection.invalidate()
            raise
        if pg.xact is None:
            return  # no statement ran: nothing to commit
        try:
            await _said(connection, "COMMIT", pg.xact.commit())
        except BaseException:
            if not driver.is_closed() and driver.is_in_transaction():  # cancelled mid-commit
                await connection.invalidate()
            raise
        if on_commit is not None:
            on_commit()


async def _driver(connection: AsyncConnection) -> asyncpg.Connection:
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def _said(connection: AsyncConnection, sql: str, call: Any) -> None:
    """Await asyncpg's BEGIN or COMMIT; its error as SQLAlchemy's (a broken connection invalidated)."""
    try:
        await call
    except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as error:
        if isinstance(error, _CONNECTION_ERRORS):
            await connection.invalidate()
        raise error_class(error)(sql, None, PostgresError(error), hide_parameters=True) from error
