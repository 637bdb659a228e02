"""The fast path for statements marked `prepared`, fenced: one module, one SQLAlchemy series.

A prepared statement is one built once and run often (module constants). SQLAlchemy's execution
path costs several times what the database takes for such a statement: it makes an execution
context, constructs and processes the parameters and builds result metadata on every call, and on
PostgreSQL it runs each statement in a greenlet (bench/README.md, findings 17 and 20). A prepared
statement skips it: SQLAlchemy compiles it once per dialect (per set of parameter names), and each
call then orders and converts the parameters with the processors SQLAlchemy itself uses (each type's
`bind_processor` and `result_processor`), runs the SQL on the driver's connection (sqlite3 on SQLite,
storage/sqlite.py; asyncpg on PostgreSQL, storage/postgres.py) and returns the rows as a SQLAlchemy
`Result`; errors are raised as SQLAlchemy's error classes, parameters hidden. Statements with lists
of values (expanding `IN`), Python-side column defaults or several sets of parameters, and every
statement while an event listener is on the engine (it must see them all), take SQLAlchemy's path.
tests/test_fast_path.py runs every prepared statement of the repositories both ways, on both
databases, and compares what they give and raise.

This path was written for SQLAlchemy 2.1 (checked with 2.1.9) and is used only on 2.1.x: on any
other version every statement takes SQLAlchemy's path, and `FastPath` says so in the log once, at
start. What it reads of SQLAlchemy beyond its documented API, all of it here:
* `Connection._has_events`, `Engine._has_events`: whether event listeners are on (SQLAlchemy then
  dispatches events on every statement, so this path steps aside);
* `sqlalchemy.engine.result.SimpleResultMetaData`: the keys of a `Result` built from rows;
* of a compiled statement (`SQLCompiler`): `string`, `positional`, `positiontup`, `binds`,
  `construct_params`, and, to leave a statement to SQLAlchemy, `insert_prefetch`,
  `update_prefetch`, `post_compile_params`, `literal_execute_params`, `escaped_bind_names`.
"""
from __future__ import annotations

import logging
import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import Connection, Executable, Result
from sqlalchemy.engine import Dialect, IteratorResult
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

WRITTEN_FOR = "2.1"  # the SQLAlchemy release series (major.minor) the fast path was written for
_MARK = "oberih_prepared"  # the execution option that marks a prepared statement

S = TypeVar("S", bound=Executable)


def prepared(statement: S) -> S:
    """The statement, marked as built once and run often: it runs on the fast path. Mark only
    statements that are built once."""
    return statement.execution_options(**{_MARK: True})


def is_prepared(statement: Executable) -> bool:
    """True if the statement is marked `prepared`."""
    return bool(statement.get_execution_options().get(_MARK))


def written_for(version: str) -> bool:
    """True if the fast path was written for this SQLAlchemy version."""
    return version.split(".")[:2] == WRITTEN_FOR.split(".")


ACTIVE = written_for(sqlalchemy.__version__)


class FastPath:
    """The plans of the prepared statements of one database (one dialect), built on first use."""

    __slots__ = ("_active", "_dialect", "_plans")

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        if not ACTIVE:
            log.warning("SQLAlchemy %s is not the %s.x the fast path for prepared statements was written for: "
                        "every statement takes SQLAlchemy's own path", sqlalchemy.__version__, WRITTEN_FOR)
        self._active = ACTIVE
        # Per statement, per set of parameter names; weak, so that a statement's plans go with it.
        self._plans: weakref.WeakKeyDictionary[Executable, dict[tuple[str, ...], Plan | None]] = (
            weakref.WeakKeyDictionary())

    @property
    def statements(self) -> set[Executable]:
        """The prepared statements that have run on this path (for tests)."""
        return {statement for statement, plans in self._plans.items() if any(plans.values())}

    def plan(self, statement: Executable, parameters: Any, connection: Connection) -> Plan | None:
        """The statement's plan, or None if it must take SQLAlchemy's path on `connection`."""
        # With event listeners on the engine, every statement goes SQLAlchemy's way, so they see it.
        if not (self._active and is_prepared(statement)) or connection._has_events or connection.engine._has_events:
            return None
        if parameters is not None and not isinstance(parameters, Mapping):
            return None  # several sets of parameters (executemany): SQLAlchemy's path
        plans = self._plans.get(statement)
        if plans is None:
            plans = self._plans[statement] = {}
        # An INSERT's or UPDATE's columns are the parameters given: one plan per set of names.
        names = tuple(parameters or ())
        try:
            return plans[names]
        except KeyError:
            plan = plans[names] = Plan.build(statement, names, self._dialect)
            return plan


class _Rows(IteratorResult[Any]):
    """A statement's rows, with the result API repositories use (`one`, `scalars`, `rowcount`…)."""

    rowcount = -1


class Plan:
    """A prepared statement compiled for one dialect: its SQL, its parameters in order with
    SQLAlchemy's conversions (a datetime to text…), and its columns with theirs (text back to a
    datetime…). `run` runs it on sqlite3; storage/postgres.py runs it on asyncpg."""

    __slots__ = ("_columns", "_compiled", "_conversions", "_dialect", "_to_python", "returns_rows", "sql")

    def __init__(self, statement: Executable, compiled: Any, dialect: Dialect) -> None:
        self._compiled = compiled
        self._dialect = dialect
        self.sql: str = compiled.string
        binds = compiled.binds
        self._conversions = tuple(
            (name, binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in compiled.positiontup
        )
        # The columns of its rows: a SELECT's, or those of an INSERT's or UPDATE's RETURNING.
        columns = list(getattr(statement, "exported_columns", ()))
        self.returns_rows = bool(columns)
        self._columns = SimpleResultMetaData([column.key for column in columns])
        to_python = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self._to_python: tuple[Callable[[Any], Any] | None, ...] | None = (
            tuple(to_python) if any(to_python) else None
        )

    @classmethod
    def build(cls, statement: Executable, names: tuple[str, ...], dialect: Dialect) -> Plan | None:
        """The plan, or None for a statement this path does not cover: SQLAlchemy runs it then."""
        compiled: Any = statement.compile(dialect=dialect, column_keys=sorted(names))
        if (
            not compiled.positional
            or compiled.insert_prefetch or compiled.update_prefetch  # Python-side column defaults
            or compiled.post_compile_params or compiled.literal_execute_params  # IN lists of any length
            or compiled.escaped_bind_names
        ):
            return None
        return cls(statement, compiled, dialect)

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        """The statement's parameters in order, converted for the driver."""
        values = self._compiled.construct_params(parameters)
        return [values[name] if convert is None else convert(values[name]) for name, convert in self._conversions]

    def result(self, rows: Sequence[Sequence[Any]], rowcount: int) -> Result[Any]:
        """The driver's rows as SQLAlchemy's `Result`, each value converted back as SQLAlchemy does."""
        if self._to_python is not None and rows:
            to_python = self._to_python
            rows = [tuple(value if convert is None else convert(value) for value, convert in zip(row, to_python))
                    for row in rows]
        result = _Rows(self._columns, iter(rows))
        result.rowcount = rowcount
        return result

    def error(self, parameters: Mapping[str, Any], error: Exception, driver_error: type[Exception],
              error_class: type[DBAPIError] | None = None) -> DBAPIError:
        """The error as SQLAlchemy raises it (`error_class` where SQLAlchemy would not find it by
        name), the values left out of its message."""
        if error_class is not None:
            return error_class(self.sql, parameters, error, hide_parameters=True)
        return DBAPIError.instance(self.sql, parameters, error, driver_error, hide_parameters=True,
                                   dialect=self._dialect)

    def run(self, driver: sqlite3.Connection, parameters: Mapping[str, Any]) -> Result[Any]:
        """Run on sqlite3."""
        try:
            cursor = driver.execute(self.sql, self.arguments(parameters))
            rows = cursor.fetchall() if cursor.description else []
        except Exception as error:
            raise self.error(parameters, error, sqlite3.Error) from error
        return self.result(rows, cursor.rowcount)
