"""The shared storage tests (all test_storage*.py but SQLite-only ones) against PostgreSQL, one database per test."""
from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.privacy import Privacy
from storage import Database
from storage.values import StatEvent
from tests.test_storage import *  # noqa: F403 - the shared tests and their fixtures
from tests.test_storage_queues import *  # noqa: F403
from tests.test_storage_records import *  # noqa: F403
from tests.test_storage_leases import *  # noqa: F403

POSTGRES_URL = os.environ.get("OBERIH_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def _admin_engine() -> AsyncEngine:
    """An autocommit engine on the test database, or a skip saying why PostgreSQL is unusable."""
    engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5})
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure to connect means "no server here"
        await engine.dispose()
        pytest.skip(f"PostgreSQL does not answer at {make_url(POSTGRES_URL).render_as_string()}: {error!r}")
    return engine


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A fresh, empty database for each test (so runs in parallel never see each other's rows)."""
    admin = await _admin_engine()
    name = f"oberih_test_{uuid.uuid4().hex[:16]}"
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def test_postgres_is_really_used(db: Database) -> None:
    assert db.dialect == "postgresql"


async def test_concurrent_transactions_counting_the_same_counters_do_not_deadlock(db: Database) -> None:
    """Statistics counters are the rows every transaction shares. Two transactions that count the same
    two counters in opposite orders both commit (they are written at the commit, in one order), and
    nothing is counted twice or lost."""
    day = date(2026, 12, 6)
    first_counted, second_counted = asyncio.Event(), asyncio.Event()

    async def count(events: tuple[StatEvent, StatEvent], counted: asyncio.Event, wait_for: asyncio.Event) -> None:
        async with db.transaction() as tx:
            await tx.stats.count(day, events[0], channel="telegram")
            counted.set()
            await wait_for.wait()
            await tx.stats.count(day, events[1], channel="telegram")

    started, begun = StatEvent.CONVERSATION_STARTED, StatEvent.REPORT_BEGUN
    async with asyncio.timeout(20):
        await asyncio.gather(count((started, begun), first_counted, second_counted),
                             count((begun, started), second_counted, first_counted))
    async with db.transaction() as tx:
        counts = {count.event: count.count for count in await tx.stats.between(day, day)}
    assert counts == {started: 2, begun: 2}


async def test_a_busy_process_keeps_to_its_pool_and_reuses_its_connections(database_url: str, privacy: Privacy) -> None:
    """DATABASE_POOL_SIZE connections at most, kept: a burst of transactions larger than the pool waits
    for them instead of opening (and then closing) extra ones, each a server process and a connect."""
    db = Database(database_url, privacy, pool_size=3)
    await db.start()

    async def backend() -> int:
        async with db.transaction() as tx:
            connection = tx.heartbeats._session
            return int(await connection.run_sync(lambda sync: sync.exec_driver_sql("SELECT pg_backend_pid()").scalar()))

    try:
        first = set(await asyncio.gather(*(backend() for _ in range(12))))
        second = set(await asyncio.gather(*(backend() for _ in range(12))))
    finally:
        await db.close()
    assert len(first) <= 3 and second <= first
