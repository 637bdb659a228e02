"""The database Oberih runs on during the benchmark: a temporary SQLite file (default), or a scratch
database created on the PostgreSQL server named by `--database` and dropped afterwards."""
from __future__ import annotations

import contextlib
import secrets
from typing import AsyncIterator

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine


def is_postgresql(url: str | None) -> bool:
    return bool(url) and make_url(url).get_backend_name().startswith("postgres")


@contextlib.asynccontextmanager
async def scratch_database(url: str | None) -> AsyncIterator[tuple[str | None, str]]:
    """Yields (URL for the bot, description). None: the bot's default (a SQLite file in its data dir).

    For PostgreSQL a fresh database `oberih_bench_<random>` is created next to the one named (so old
    rows and an old polling offset cannot blur the figures) and dropped at the end. Without the right
    to create databases, the named database is used as it is, and the description says so.
    """
    if not url:
        yield None, "sqlite (temporary file)"
        return
    parsed = make_url(url)
    if not is_postgresql(url):
        yield url, f"{parsed.get_backend_name()} (as given)"
        return
    name = f"oberih_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - fall back to the database as given
        await admin.dispose()
        yield url, f"postgresql, database {parsed.database!r} as given (could not create a scratch one: " \
                   f"{type(error).__name__})"
        return
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False), \
            f"postgresql (scratch database on {parsed.host or 'localhost'}, dropped afterwards)"
    finally:
        try:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            await admin.dispose()
