"""Alembic without alembic.ini: the configuration is built here; `await upgrade(url)` migrates.

A database already at the newest revision is told apart without alembic: importing it takes a tenth
of a second, and every restart of the bot would pay it for nothing.
"""
from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.engine import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant: PostgreSQL serialises concurrent starts of several processes on this lock.
_PG_LOCK_KEY = 0x0BE_21C


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at storage/migrations (the URL travels as an attribute, not ini text)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.attributes["url"] = url
    return config


def head_revision() -> str | None:
    """The newest revision shipped with the code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(target: str | AsyncEngine | Engine, revision: str = "head") -> None:
    """Run `alembic upgrade head` against a URL or an existing engine (SQLite's is synchronous)."""
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        if isinstance(engine, Engine):
            with engine.begin() as connection:
                _upgrade(connection, revision)
            return
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            await connection.run_sync(_upgrade, revision)
    finally:
        if isinstance(target, str):
            await engine.dispose() if isinstance(engine, AsyncEngine) else engine.dispose()


async def current_revision(engine: AsyncEngine | Engine) -> str | None:
    """The revision the database is at (None before the first migration)."""
    if isinstance(engine, Engine):
        with engine.connect() as connection:
            return _revision(connection)
    async with engine.connect() as connection:
        return await connection.run_sync(_revision)


def shipped_head() -> str:
    """The newest revision, read without alembic: the `revision` line of the file that sorts last in
    versions/ (tests/test_migrate.py checks that the files sort in revision order)."""
    newest = max((MIGRATIONS / "versions").glob("[0-9]*.py"))
    return re.search(r'^revision: str = "(.+)"$', newest.read_text(encoding="utf-8"), re.MULTILINE)[1]


def _at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars()) == [shipped_head()]


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> None:
    if revision == "head" and _at_head(connection):
        return
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def main(argv: list[str]) -> int:
    """`python -m storage [URL]`: upgrade the database at URL (default: DATABASE_URL)."""
    url = argv[0] if argv else os.environ.get("DATABASE_URL")
    if not url:
        print("usage: python -m storage DATABASE_URL (or set DATABASE_URL)", file=sys.stderr)
        return 2
    asyncio.run(upgrade(url))
    return 0
