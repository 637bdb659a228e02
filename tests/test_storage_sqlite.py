"""SQLite's own cases: another connection's write lock, a full disk, and the files' permissions."""
from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.exc import DBAPIError

from bot.privacy import Privacy
from storage import Database, StorageBusy, StorageFull
from storage.engine import storage_error

PRIVACY = Privacy([Fernet.generate_key().decode()], "pepper")
SECRET = "my-secret-words-5551234"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "oberih.db"


@pytest.fixture
async def db(path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{path}", PRIVACY)
    await database.start()
    yield database
    await database.close()


async def save(db: Database, key: str) -> None:
    async with db.transaction() as tx:
        await tx.conversations.save(key, "telegram", {"text": SECRET})


async def stored(db: Database, key: str) -> bool:
    async with db.transaction() as tx:
        return await tx.conversations.get(key) is not None


async def delete_then_save(db: Database, key: str) -> None:
    async with db.transaction() as tx:
        await tx.conversations.delete("nobody")  # SQLAlchemy's path (not a prepared statement)
        await tx.conversations.save(key, "telegram", {"text": SECRET})


@pytest.mark.parametrize("write", [save, delete_then_save], ids=["prepared", "sqlalchemy"])
async def test_a_write_waits_for_another_connections_lock_while_the_event_loop_runs(
    db: Database, path: Path, write: Callable[[Database, str], Awaitable[None]]
) -> None:
    await save(db, "before")  # the schema is there and the connection is open
    attempts: list[str] = []
    tried_twice = asyncio.Event()

    def traced(sql: str) -> None:
        if sql.startswith("BEGIN"):
            attempts.append(sql)
            if len(attempts) == 2:
                tried_twice.set()

    await db.run_sync(lambda connection: connection.connection.driver_connection.set_trace_callback(traced))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        waiting = asyncio.create_task(write(db, "k1"))
        retried = asyncio.create_task(tried_twice.wait())
        await asyncio.wait([retried, waiting], return_when=asyncio.FIRST_COMPLETED)
        assert retried.done() and not waiting.done()  # this test ran between two attempts: the loop went on
        other.commit()
        await waiting
    finally:
        other.close()
    assert await stored(db, "k1")


async def test_a_lock_held_too_long_is_storage_busy_and_nothing_is_stored(path: Path) -> None:
    db = Database(f"sqlite:///{path}", PRIVACY, lock_wait=0.05)
    await db.start()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageBusy) as busy:
            await save(db, "k1")
        other.rollback()
        assert SECRET not in str(busy.value) and not await stored(db, "k1")
        await save(db, "k1")  # and on it goes
        assert await stored(db, "k1")
    finally:
        other.close()
        await db.close()


async def test_a_full_disk_is_storage_full_stores_nothing_and_writing_goes_on_when_space_returns(db: Database) -> None:
    await save(db, "before")
    pages = await db.run_sync(lambda connection: connection.exec_driver_sql("PRAGMA page_count").scalar())
    await db.run_sync(lambda connection: connection.exec_driver_sql(f"PRAGMA max_page_count = {pages}"))
    with pytest.raises(StorageFull) as full:
        async with db.transaction() as tx:
            await tx.conversations.save("k1", "telegram", {"text": SECRET * 2000})
    assert SECRET not in str(full.value) and "5551234" not in str(full.value)
    assert not await stored(db, "k1")
    await db.run_sync(lambda connection: connection.exec_driver_sql("PRAGMA max_page_count = 1073741823"))
    await save(db, "k1")
    assert await stored(db, "k1")


class _PostgresError(Exception):
    """What an asyncpg error looks like to SQLAlchemy's callers: its SQLSTATE as `sqlstate`."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__("an error")
        self.sqlstate = sqlstate


def _sqlite_error(code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("an error")
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(("cause", "typed"), [
    (_sqlite_error(sqlite3.SQLITE_FULL), StorageFull),
    (_PostgresError("53100"), StorageFull),  # disk_full
    (_sqlite_error(sqlite3.SQLITE_BUSY), StorageBusy),
    (_sqlite_error(517), StorageBusy),  # SQLITE_BUSY_SNAPSHOT
    (_sqlite_error(sqlite3.SQLITE_CONSTRAINT), None),
    (_PostgresError("23505"), None),  # unique_violation
    (ValueError("naive datetime"), None),
])
def test_database_errors_that_callers_must_tell_apart_become_typed(cause: Exception, typed: type | None) -> None:
    error = DBAPIError("UPDATE conversations SET state=?", None, cause)
    assert type(storage_error(error)) is (typed or type(None))


async def test_the_database_its_side_files_and_its_new_folders_are_private(tmp_path: Path) -> None:
    umask = os.umask(0o022)  # the usual one: files 0644 and folders 0755 unless created otherwise
    try:
        path = tmp_path / "data" / "deeper" / "oberih.db"
        db = Database(f"sqlite:///{path}", PRIVACY)
        await db.start()
        await save(db, "k1")
        created = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        modes = {file.name: stat.S_IMODE(file.stat().st_mode) for file in created}
        await db.close()
        raw = sqlite3.connect(path, isolation_level=None)  # a rollback journal, as without WAL
        try:
            raw.execute("PRAGMA journal_mode=DELETE")
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("DELETE FROM conversations")
            journal = Path(f"{path}-journal")
            modes[journal.name] = stat.S_IMODE(journal.stat().st_mode)
            raw.rollback()
        finally:
            raw.close()
    finally:
        os.umask(umask)
    assert modes == {file: 0o600 for file in ("oberih.db", "oberih.db-wal", "oberih.db-shm", "oberih.db-journal")}
    assert [stat.S_IMODE(folder.stat().st_mode) for folder in (path.parent.parent, path.parent)] == [0o700, 0o700]
