"""SQLite in the event loop's own thread: its engine, its files, and its write lock taken without freezing.

SQLite is a library inside this process, not a server: a query on a local file takes microseconds,
while a thread per connection (aiosqlite) or SQLAlchemy's asyncio layer costs several times that on
every statement (bench/README.md, findings 7 and 10). So SQLite runs here the way it is meant to:
synchronously, on one connection of a standard synchronous SQLAlchemy engine (pysqlite), used from
the event loop's thread. The Database runs one transaction at a time on it (an asyncio lock), and a
transaction never waits on the network while it holds that lock (network calls wait for the commit:
`Transaction.after_commit`), so the lock is held only for the microseconds the statements take.

Another process holding SQLite's write lock (a backup, the sqlite3 shell, a second bot by mistake)
must not freeze the bot. A transaction takes the write lock at its first write (`BEGIN IMMEDIATE`,
which sqlite3 issues before the first INSERT, UPDATE or DELETE); while another connection holds it,
`SQLiteConnection` waits for it in short steps that let the event loop run and then runs that
statement again (nothing of the transaction was written before it), up to `LOCK_WAIT_SECONDS` in
all; after that the error ends the transaction, as `StorageBusy`. Once a transaction holds the lock
none of its statements waits.

The database file and its side files (-wal, -shm, -journal: SQLite gives them the database file's
permissions) hold sealed children's data: they are created readable by the bot's user only, and
the folders Oberih creates for them too.
"""
from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    create_engine,
    event,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

from storage.fast_path import FastPath

# Only a safety net for the rare brief lock inside SQLite (recovering the write-ahead log): waiting
# for another connection's write lock happens in `SQLiteConnection`, with the event loop running.
SQLITE_BUSY_TIMEOUT_MS = 5
LOCK_WAIT_SECONDS = 10.0
_FIRST_STEP, _LONGEST_STEP = 0.002, 0.1  # seconds between attempts: doubling from the first to the longest


def make_sqlite_engine(url: URL) -> Engine:
    """The engine for a SQLite URL (any driver name given: it runs on pysqlite): one connection
    (StaticPool) with the pragmas below."""
    _create_private(url.database)
    engine = create_engine(
        url.set(drivername="sqlite+pysqlite"),
        poolclass=StaticPool,  # one connection; the Database runs one transaction at a time
        hide_parameters=True,  # error messages would otherwise quote pseudonyms and sealed text
        connect_args={"isolation_level": "IMMEDIATE"},  # the write lock at the first write, not at COMMIT
    )
    event.listen(engine, "connect", _pragmas)
    return engine


class SQLiteConnection:
    """SQLite's one connection as repositories use it: `await connection.execute(...)`, run right here.

    The asyncio layer would run each statement in a greenlet and back (AsyncConnection.execute), which
    costs twice what SQLAlchemy's own work for a prebuilt statement costs (bench/README.md, finding 10);
    SQLite needs no event loop, so its transactions run on the synchronous connection directly, and
    statements marked `prepared` on the fast path (storage/fast_path.py)."""

    __slots__ = ("_driver", "_fast", "_lock_wait", "sync_connection")

    def __init__(self, sync_connection: Connection, lock_wait: float = LOCK_WAIT_SECONDS, fast: bool = True) -> None:
        self.sync_connection = sync_connection
        self._driver: sqlite3.Connection = sync_connection.connection.driver_connection
        self._lock_wait = lock_wait
        self._fast = FastPath(sync_connection.dialect) if fast else None

    @property
    def fast_path(self) -> FastPath | None:
        """The fast path for prepared statements (None if turned off)."""
        return self._fast

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        try:
            return self._run(statement, parameters)
        except DBAPIError as error:
            # Locked before this transaction wrote anything: wait, then run the statement again.
            if not is_busy(error.orig) or self._driver.in_transaction:
                raise
            first_error = error
        loop = asyncio.get_running_loop()
        deadline, step = loop.time() + self._lock_wait, _FIRST_STEP
        while loop.time() + step <= deadline:
            await asyncio.sleep(step)
            step = min(step * 2, _LONGEST_STEP)
            try:
                return self._run(statement, parameters)
            except DBAPIError as error:
                if not is_busy(error.orig) or self._driver.in_transaction:
                    raise
        raise first_error

    def _run(self, statement: Executable, parameters: Any) -> Any:
        plan = None if self._fast is None else self._fast.plan(statement, parameters, self.sync_connection)
        if plan is None:
            return self.sync_connection.execute(statement, parameters)
        return plan.run(self._driver, parameters or {})


def is_busy(error: BaseException) -> bool:
    """True for SQLite's "database is locked" (SQLITE_BUSY, any extended code)."""
    return isinstance(error, sqlite3.Error) and (getattr(error, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


def is_full(error: BaseException) -> bool:
    """True for SQLite's "database or disk is full" (SQLITE_FULL)."""
    return isinstance(error, sqlite3.Error) and (getattr(error, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL


def on_file(database: str | None) -> bool:
    """True if the SQLite database is a file of its own (not in memory, not a URI)."""
    return bool(database) and database != ":memory:" and not str(database).startswith("file:")


def _create_private(database: str | None) -> None:
    """Create the database's missing folders (0700) and its file (0600) before SQLite would (0644)."""
    if not on_file(database):
        return
    path = Path(str(database))
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; NORMAL syncs at checkpoints, not at every commit."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
