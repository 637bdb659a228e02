"""Alembic environment: reuses a connection handed in by storage.migrate, or opens an engine of its own."""
from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection, Engine

from storage.engine import make_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: pass one to storage.migrate or set DATABASE_URL")
    return str(url)


def _configure(connection: Connection) -> None:
    # Batch mode lets later migrations alter SQLite tables (SQLite has almost no ALTER TABLE).
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = make_engine(url)
    if isinstance(engine, Engine):  # SQLite: synchronous (storage/sqlite.py)
        try:
            with engine.begin() as connection:
                _configure(connection)
        finally:
            engine.dispose()
        return
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_configure)
    finally:
        await engine.dispose()


def run_offline() -> None:
    """Emit SQL instead of running it (`--sql`)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate through the given connection, or through a fresh engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_with_own_engine(_url()))


if context.is_offline_mode():
    run_offline()
else:
    run_online()
