"""Engines for both databases, and the database errors callers must tell apart, made typed."""
from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.errors import StorageBusy, StorageError, StorageFull
from storage.sqlite import is_busy, is_full, make_sqlite_engine

POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


POOL_SIZE = 20


def make_engine(url: str, pool_size: int = POOL_SIZE) -> AsyncEngine | Engine:
    """A synchronous engine for a SQLite URL (it runs in-process, storage/sqlite.py), or an async
    engine for a PostgreSQL (asyncpg) URL with `pool_size` connections."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return make_sqlite_engine(parsed)
    # Error messages would otherwise quote bound values: pseudonyms and sealed text could reach logs.
    # No pre-ping (three round trips a checkout): storage/postgres.py throws away a connection
    # asyncpg knows is closed, and invalidates one that fails. No overflow: a busy process (a webhook
    # takes 40 updates at once) opened and closed extra connections, each a server process, a
    # connect and fresh statement preparations, and did half the steps a second; a transaction now
    # waits for a pooled connection instead.
    return create_async_engine(parsed, hide_parameters=True, pool_size=pool_size, max_overflow=0)


def storage_error(error: DBAPIError) -> StorageError | None:
    """The typed storage error a database error stands for (StorageFull, StorageBusy), or None."""
    cause = error.orig
    if is_full(cause) or getattr(cause, "sqlstate", None) == POSTGRES_DISK_FULL:
        return StorageFull("the disk or the database is full: nothing was stored")
    if is_busy(cause):
        return StorageBusy("the database was locked by another connection: nothing was stored")
    return None
