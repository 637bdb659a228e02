"""What every repository shares: the connection, the sealer, the clock and dialect-portable upserts."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Executable, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from storage.errors import Misplaced
from storage.fast_path import prepared
from storage.postgres import PostgresConnection
from storage.sqlite import SQLiteConnection
from storage.types import Clock, Sealer, place

log = logging.getLogger(__name__)

ERROR_LIMIT = 500
_NEW_ROW_INSERTS: dict[tuple[Any, ...], Executable] = {}  # see Repository._insert_new


@dataclass(frozen=True, slots=True)
class Context:
    """One transaction's connection plus the tools repositories need."""

    connection: PostgresConnection | SQLiteConnection  # storage/postgres.py, storage/sqlite.py
    sealer: Sealer
    clock: Clock
    dialect: str


class Repository:
    """Base: holds the context; subclasses issue Core statements (no identity map, no stale rows)."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def _session(self) -> PostgresConnection | SQLiteConnection:
        return self._ctx.connection

    def _now(self) -> datetime:
        return self._ctx.clock()

    # Every sealed value is bound to its table, column and row (storage.types.place): copied anywhere
    # else, it does not open. `row` must be known when the row is written, so never a database-assigned id.

    def _seal(self, value: Any, table: str, column: str, row: object) -> bytes:
        return self._ctx.sealer.seal(value, place(table, column, row))

    def _unseal(self, token: bytes | None, table: str, column: str, row: object) -> Any:
        """The value; raises Misplaced (it belongs to another place, or was altered) or UnknownKey."""
        return self._ctx.sealer.unseal(token, place(table, column, row))

    def _unseal_or(self, token: bytes | None, table: str, column: str, row: object, absent: Any) -> Any:
        """The value, or `absent` if it was Misplaced (logged): for columns the row can do without,
        such as a chat address the child's next message brings again. UnknownKey is raised: a key
        missing from DATA_KEY must stop the work, never make good data read as absent."""
        try:
            return self._unseal(token, table, column, row)
        except Misplaced:
            refused(table, column)
            return absent

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it the same)."""
        if self._ctx.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def _insert_new(
        self, table: Table, values: Mapping[str, Any], conflict: Iterable[str], returning: ColumnElement[Any]
    ) -> Any | None:
        """INSERT ... ON CONFLICT DO NOTHING RETURNING: the new key, or None if the row existed.

        Built once per dialect, table and set of columns, with bind parameters for the values:
        SQLAlchemy then neither rebuilds nor re-hashes it on each call (bench/README.md, finding 3)."""
        shape = (self._ctx.dialect, table.name, tuple(conflict), returning.key, tuple(values))
        statement = _NEW_ROW_INSERTS.get(shape)
        if statement is None:
            statement = _NEW_ROW_INSERTS[shape] = prepared(
                self._insert(table)
                .values({name: bindparam(name) for name in values})
                .on_conflict_do_nothing(index_elements=list(conflict))
                .returning(returning)
            )
        return (await self._session.execute(statement, dict(values))).scalar_one_or_none()

    async def _affected(self, statement: Executable, params: Mapping[str, Any] | None = None) -> int:
        """Run an UPDATE or DELETE; return how many rows it touched."""
        result = cast(CursorResult[Any], await self._session.execute(statement, params))
        return result.rowcount


def refused(table: str, column: str) -> None:
    """Log a sealed value that did not open in its place (which row is not logged: no ids in logs)."""
    log.error("sealed value refused: written for another place, or altered", extra={"table": table, "column": column})


def clip(error: str) -> str:
    """Bound stored error text (platform errors can be long)."""
    return error if len(error) <= ERROR_LIMIT else error[: ERROR_LIMIT - 1] + "…"
