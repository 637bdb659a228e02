"""Database: engine lifecycle, migrations at start, and one-connection transactions with repositories."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime
from typing import TypeVar, cast

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import postgres
from storage.checkpoints import Checkpoints
from storage.engine import POOL_SIZE, make_engine, storage_error
from storage.fast_path import FastPath
from storage.migrate import upgrade
from storage.postgres import OnStatement, PostgresConnection
from storage.repositories.base import Context
from storage.repositories.cases import Cases
from storage.repositories.conversations import Conversations
from storage.repositories.heartbeats import Heartbeats
from storage.repositories.inbox import Inbox
from storage.repositories.messages import CaseMessages, ChatMessages
from storage.repositories.openings import TopicOpenings
from storage.repositories.outbox import Outbox
from storage.repositories.receipts import CaseChats, ReceiptFailures
from storage.repositories.staff import Audit, Staff
from storage.repositories.stats import Stats
from storage.sqlite import LOCK_WAIT_SECONDS, SQLiteConnection, on_file
from storage.types import Clock, Sealer, utc_now

R = TypeVar("R")

log = logging.getLogger(__name__)


class Transaction:
    """Repositories sharing one connection; all of it commits or none of it does."""

    __slots__ = (
        "_after_commit", "_clock", "_on_commit", "audit", "case_chats", "case_messages", "cases", "chat_messages",
        "conversations", "heartbeats", "inbox", "outbox", "receipt_failures", "staff", "stats", "topic_openings",
    )  # fmt: skip

    def __init__(self, ctx: Context) -> None:
        self._clock = ctx.clock
        self._after_commit: list[Callable[[], Awaitable[object]]] = []
        self._on_commit: list[Callable[[], object]] = []
        self.conversations = Conversations(ctx)
        self.cases = Cases(ctx)
        self.outbox = Outbox(ctx)
        self.inbox = Inbox(ctx)
        self.heartbeats = Heartbeats(ctx)
        self.staff = Staff(ctx)
        self.audit = Audit(ctx)
        self.stats = Stats(ctx)
        self.chat_messages = ChatMessages(ctx)
        self.case_messages = CaseMessages(ctx)
        self.case_chats = CaseChats(ctx)
        self.receipt_failures = ReceiptFailures(ctx)
        self.topic_openings = TopicOpenings(ctx)

    @property
    def now(self) -> datetime:
        """The current time from the database's clock (aware UTC)."""
        return self._clock()

    def after_commit(self, call: Callable[[], Awaitable[object]]) -> None:
        """Run `call` once this transaction has committed (never if it rolls back), in the background.

        For network calls a handler makes along the way (a button's spinner, a reply to a staff
        command): they must not hold the transaction open, must not happen if it fails, and must not
        hold up the next update of the chat either. Each call runs in a task of its own: a transaction
        may carry the calls of several updates (bot/inbox.py), and none waits for another's."""
        self._after_commit.append(call)

    def on_commit(self, call: Callable[[], object]) -> None:
        """Call `call` right after this transaction commits (never if it rolls back), before anything
        else runs: for what must act on the commit at once, such as handing a new outbox item to the
        delivery worker before one of its rounds could find the item."""
        self._on_commit.append(call)


async def _run_after_commit(call: Callable[[], Awaitable[object]]) -> None:
    try:
        await call()
    except Exception as error:  # noqa: BLE001 - the work is committed; a lost courtesy call is logged
        log.warning("a call after commit failed", extra={"reason": type(error).__name__})


class Database:
    """Owns the engine; `start()` migrates to the newest schema before anything else touches it.

    A database error that callers must tell apart leaves a transaction typed (storage/errors.py):
    `StorageFull` for a full disk, `StorageBusy` for SQLite's write lock held elsewhere too long."""

    def __init__(self, url: str, privacy: Sealer, clock: Clock = utc_now, lock_wait: float = LOCK_WAIT_SECONDS,
                 pool_size: int = POOL_SIZE) -> None:
        self._url = url
        self._pool_size = pool_size  # PostgreSQL: connections kept and used at most
        self._privacy = privacy
        self._clock = clock
        self._lock_wait = lock_wait  # SQLite: seconds a transaction waits for another connection's write lock
        self._engine: AsyncEngine | Engine | None = None
        self._serial: AbstractAsyncContextManager[object] = nullcontext()
        self._calls: set[asyncio.Task[None]] = set()  # after-commit calls still running
        self._sqlite: SQLiteConnection | None = None  # SQLite's one connection, open while started
        self._checkpoints: Checkpoints | None = None  # SQLite on a file: its log's checkpoints
        self._fast: FastPath | None = None  # PostgreSQL's prepared statements
        self._on_statement: OnStatement | None = None  # PostgreSQL: `watch`
        self._on_commit: Callable[[], None] | None = None

    @property
    def engine(self) -> AsyncEngine | Engine:
        """The engine (for tools and tests; application code uses transaction()): an AsyncEngine for
        PostgreSQL, a synchronous Engine for SQLite (storage/sqlite.py)."""
        if self._engine is None:
            raise RuntimeError("Database.start() has not been awaited")
        return self._engine

    @property
    def sync_engine(self) -> Engine:
        """The synchronous Engine underneath, on which SQLAlchemy's event listeners are set."""
        engine = self.engine
        return engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @property
    def now(self) -> datetime:
        """The current time from the database's clock (aware UTC), as `Transaction.now`."""
        return self._clock()

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    async def start(self) -> None:
        """Create the engine and run `alembic upgrade head`."""
        if self._engine is not None:
            return
        engine = make_engine(self._url, self._pool_size)
        try:
            await upgrade(engine)
        except BaseException:
            await engine.dispose() if isinstance(engine, AsyncEngine) else engine.dispose()
            raise
        self._engine = engine
        if isinstance(engine, Engine):
            # SQLite has one shared connection (storage/sqlite.py): concurrent transactions would
            # commit each other's work. It stays open: checking it out and back in for every
            # transaction cost more than many of the transactions themselves.
            self._serial = asyncio.Lock()
            self._sqlite = SQLiteConnection(engine.connect(), self._lock_wait)
            if on_file(engine.url.database):
                # Checkpoints in a thread of their own (storage/checkpoints.py), not inside a commit.
                self._sqlite.sync_connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                self._sqlite.sync_connection.commit()
                self._checkpoints = Checkpoints(str(engine.url.database))
                self._checkpoints.start()
        else:
            self._fast = FastPath(engine.dialect)  # asyncpg begins, commits and runs them (storage/postgres.py)
        log.info("database ready (%s, schema at head)", engine.dialect.name)

    async def close(self) -> None:
        """Dispose of the engine and its connections."""
        engine, self._engine, sqlite, self._sqlite = self._engine, None, self._sqlite, None
        if self._checkpoints is not None:
            self._checkpoints.stop()
            self._checkpoints = None
        if sqlite is not None:
            sqlite.sync_connection.close()
        if isinstance(engine, AsyncEngine):
            await engine.dispose()
        elif engine is not None:
            engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One connection: commits when the block ends, rolls back if it raises (SQLite: one at a time).
        Calls registered with `Transaction.after_commit` run after the commit."""
        async with self._serial:
            try:
                async with self._begin() as connection:
                    tx = Transaction(Context(connection, self._privacy, self._clock, self.dialect))
                    yield tx
                    await tx.stats.flush()  # the shared counters last, in one order (storage/repositories/stats.py)
            except DBAPIError as error:
                typed = storage_error(error)
                if typed is None:
                    raise
                raise typed from error
        for call in tx._on_commit:
            try:
                call()
            except Exception as error:  # noqa: BLE001 - committed is committed: the caller must not see a failure
                log.error("a call on commit failed", extra={"reason": type(error).__name__})
        for call in tx._after_commit:
            task = asyncio.create_task(_run_after_commit(call), name="after-commit")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    def watch(self, on_statement: OnStatement | None, on_commit: Callable[[], None] | None = None) -> None:
        """On PostgreSQL, call `on_statement` with every statement a transaction runs, before it runs,
        and `on_commit` after every commit (the benchmark counts them so: an event listener would
        take the statements off the fast path). None stops watching."""
        self._on_statement, self._on_commit = on_statement, on_commit

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[PostgresConnection | SQLiteConnection]:
        if self._sqlite is not None:
            with self._sqlite.sync_connection.begin():
                yield self._sqlite
        else:
            async with postgres.transaction(cast(AsyncEngine, self.engine), self._fast, self._on_statement,
                                            self._on_commit) as connection:
                yield connection

    async def run_sync(self, call: Callable[[Connection], R]) -> R:
        """Run `call` with a synchronous SQLAlchemy Connection in a transaction of its own (for tools
        and tests: raw SQL, inspection, migrations' checks), on the connection transactions use."""
        async with self._serial, self._begin() as connection:
            if isinstance(connection, SQLiteConnection):
                return call(connection.sync_connection)
            return cast(R, await connection.run_sync(call))

    @property
    def calls_running(self) -> int:
        """How many after-commit calls are still running."""
        return len(self._calls)

    async def finish_calls(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for after-commit calls still running (at shutdown), then cancel them."""
        if self._calls:
            _done, late = await asyncio.wait(set(self._calls), timeout=timeout)
            for task in late:
                task.cancel()

    async def ping(self) -> bool:
        """True if the database answers a trivial query."""
        if self._engine is None:
            return False
        try:
            async with self._serial, self._begin() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - a health check reports, it does not raise
            log.warning("database ping failed: %s", type(error).__name__)
            return False
        return True
