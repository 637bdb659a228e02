"""Database: engine lifecycle, migrations at start, and one-session transactions with repositories."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import StaticPool

from storage.engine import make_engine
from storage.migrate import upgrade
from storage.repositories.base import Context
from storage.repositories.cases import Cases
from storage.repositories.conversations import Conversations
from storage.repositories.inbox import Inbox
from storage.repositories.messages import CaseMessages, ChatMessages
from storage.repositories.outbox import Outbox
from storage.repositories.staff import Audit, Staff
from storage.repositories.stats import Stats
from storage.types import Clock, Sealer, utc_now

log = logging.getLogger(__name__)


class Transaction:
    """Repositories sharing one session; all of it commits or none of it does."""

    __slots__ = (
        "_clock", "audit", "case_messages", "cases", "chat_messages", "conversations", "inbox", "outbox", "staff",
        "stats",
    )  # fmt: skip

    def __init__(self, ctx: Context) -> None:
        self._clock = ctx.clock
        self.conversations = Conversations(ctx)
        self.cases = Cases(ctx)
        self.outbox = Outbox(ctx)
        self.inbox = Inbox(ctx)
        self.staff = Staff(ctx)
        self.audit = Audit(ctx)
        self.stats = Stats(ctx)
        self.chat_messages = ChatMessages(ctx)
        self.case_messages = CaseMessages(ctx)

    @property
    def now(self) -> datetime:
        """The current time from the database's clock (aware UTC)."""
        return self._clock()


class Database:
    """Owns the engine; `start()` migrates to the newest schema before anything else touches it."""

    def __init__(self, url: str, privacy: Sealer, clock: Clock = utc_now) -> None:
        self._url = url
        self._privacy = privacy
        self._clock = clock
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._serial: AbstractAsyncContextManager[object] = nullcontext()

    @property
    def engine(self) -> AsyncEngine:
        """The engine (for tools and tests; application code uses transaction())."""
        if self._engine is None:
            raise RuntimeError("Database.start() has not been awaited")
        return self._engine

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    async def start(self) -> None:
        """Create the engine and run `alembic upgrade head`."""
        if self._engine is not None:
            return
        engine = make_engine(self._url)
        try:
            await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        if isinstance(engine.pool, StaticPool):
            # In-memory SQLite has one shared connection: concurrent transactions would commit each other's work.
            self._serial = asyncio.Lock()
        log.info("database ready (%s, schema at head)", engine.dialect.name)

    async def close(self) -> None:
        """Dispose of the engine and its connections."""
        engine, self._engine, self._sessions = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One session: commits when the block ends, rolls back if it raises (in-memory SQLite: one at a time)."""
        if self._sessions is None:
            raise RuntimeError("Database.start() has not been awaited")
        async with self._serial, self._sessions() as session, session.begin():
            yield Transaction(Context(session, self._privacy, self._clock, self.dialect))

    async def ping(self) -> bool:
        """True if the database answers a trivial query."""
        if self._engine is None:
            return False
        try:
            async with self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - a health check reports, it does not raise
            log.warning("database ping failed: %s", type(error).__name__)
            return False
        return True
