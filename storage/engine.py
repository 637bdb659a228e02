"""Engine creation: SQLite pragmas on every connection, parameters hidden from error messages."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from storage.inline_sqlite import NAME as INLINE_SQLITE

registry.register(INLINE_SQLITE, "storage.inline_sqlite", "InlineSQLiteDialect")

SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str) -> AsyncEngine:
    """An async engine for a SQLite URL (any driver name: it runs in-process, storage/inline_sqlite.py)
    or a PostgreSQL (asyncpg) URL."""
    parsed = make_url(url)
    # Error messages would otherwise quote bound values: pseudonyms and sealed text could reach logs.
    options: dict[str, Any] = {"hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        _ensure_directory(parsed.database)
        parsed = parsed.set(drivername=INLINE_SQLITE.replace(".", "+"))
        options["poolclass"] = StaticPool  # one connection; the Database runs one transaction at a time
    else:
        options["pool_pre_ping"] = True
    engine = create_async_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _ensure_directory(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; the busy timeout makes writers queue instead of fail."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
