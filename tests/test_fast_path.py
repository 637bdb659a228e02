"""Prepared statements on SQLite skip SQLAlchemy's execution path and give exactly what it gives."""
from __future__ import annotations

import importlib
import logging
import pkgutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, Executable, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

import storage.repositories
from bot.privacy import Privacy
from storage import Target, Transaction, fast_path, postgres, upgrade
from storage.engine import make_engine
from storage.fast_path import FastPath, is_prepared, written_for
from storage.repositories import base, inbox
from storage.repositories.base import Context
from storage.sqlite import SQLiteConnection

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CASE = {"kind": "report", "channel": "telegram", "language": "uk", "country": "UA", "consent": "counsellor"}
PRIVACY = Privacy([Fernet.generate_key().decode()], "pepper")
Transactions = Callable[[], AbstractAsyncContextManager[Transaction]]


async def a_childs_day(transaction: Transactions) -> list[Any]:
    """What the repositories read back over a report's life, in order (ids, rows, counts, datetimes):
    every prepared statement runs at least once."""
    seen: list[Any] = []
    async with transaction() as tx:
        seen.append(await tx.inbox.add_done("telegram", [("1", "c:k1")]))
        seen.append(await tx.inbox.add_done("telegram", [("1", "c:k1")]))  # a redelivery: 0
        seen.append(await tx.inbox.add_done("telegram", [("3", "c:k3"), ("1", "c:k1"), ("4", "c:k1")]))  # 2 of 3
        seen.append(await tx.inbox.add_done("telegram", [(str(n), f"c:m{n}") for n in range(10, 33)]))  # 20 + 3
        seen.append(await tx.inbox.add("telegram", "2", "c:k2", {"message": {"text": "hi"}}))
        seen.append(await tx.inbox.waiting_in_lane("c:k2"))
        seen.append(await tx.inbox.pending(10))
        seen.append(await tx.inbox.claim("me", 10, 60))
        seen.append(await tx.inbox.mark_done(seen[-4], "me"))
        seen.append(await tx.conversations.save("k1", "telegram", {"step": "start"}, {"chat_id": 5}))
        conversation = await tx.conversations.get("k1")
        assert conversation is not None
        seen.append(await tx.conversations.save("k1", "telegram", {"step": "what"}, expected_version=1))
        seen.append(await tx.conversations.save("k1", "telegram", {"step": "when"}, {"chat_id": 6}, expected_version=2))
        seen.append(await tx.conversations.count_report("k1", "2025-03-01"))
        case = await tx.cases.create(number="100001", conversation_key="k1", answers={"what": "bullying"}, **CASE)
        seen.append(await tx.cases.open_for("k1"))
        opening = await tx.topic_openings.add(case.id, Target.OPERATOR, -100)
        assert opening is not None
        await tx.topic_openings.opened(opening, 77)
        seen.append(await tx.topic_openings.current(case.id, Target.OPERATOR))
        await tx.topic_openings.attached(case.id, Target.OPERATOR)
        seen.append(await tx.cases.open_with_news("k1"))
        seen += [await tx.conversations.for_step("k1"), await tx.conversations.for_step("nobody")]
        seen.append(await tx.cases.update(case.id, operator_topic_id=77, police_topic_id=78, urgent=True,
                                          receipt_hash="r1"))
        seen += [await tx.cases.by_operator_topic(77), await tx.cases.by_police_topic(78),
                 await tx.cases.by_receipt("r1"), await tx.cases.by_number("100001"), await tx.cases.get(case.id),
                 await tx.cases.latest_for("k1")]
        seen.append(await tx.outbox.add("operator", "telegram", "case:1", "case_card", {"n": 1}, case_id=case.id))
        seen.append(await tx.outbox.add_leased("me", 60, "child", "telegram", "c:k1", "say", {"text": "hi"},
                                               conversation_key="k1", address={"chat_id": 5}))
        seen.append(await tx.outbox.add_leased("me", 60, "child", "telegram", "c:k1", "say", {"text": "2"},
                                               conversation_key="k1"))  # the lane waits: None
    async with transaction() as tx:
        first, second, third = (item.id for item in await tx.outbox.items())
        seen.append(await tx.outbox.mark_sent(second, "c:k1", {"message_ids": [10, 11]}, wipe=True))  # to a child; third waits
        seen.append(await tx.outbox.mark_sent(second, "c:k1", None))  # no longer pending: None
        seen.append(await tx.outbox.claim_next_in_lane("c:k1", START, "me", 60))  # the third, behind it
        seen.append(await tx.outbox.claim_next_in_lane("c:k1", START, "you", 60))  # held by "me": None
        seen.append(await tx.outbox.retry_later(third, START + timedelta(minutes=1), "network"))
        await tx.outbox.release(third)
        seen.append(await tx.outbox.mark_failed(first, "chat not found"))
        await tx.chat_messages.add("k1", 10, True)
        seen.append(await tx.chat_messages.for_conversation("k1"))
        seen.append(await tx.case_messages.add(case.id, "operator", 3, 4))
        seen.append(await tx.case_messages.by_staff_message("operator", 4))
        seen.append(await tx.case_messages.by_child_message(case.id, 3))
        seen.append(await tx.audit.add(case.id, "Olena", 42, "took"))
        seen.append(await tx.cases.open_with_news("k1"))  # with the staff member's news
        seen.append(await tx.staff.get(42))
        seen.append(conversation)
        seen.append(await tx.outbox.items())
    return seen


def prepared_statements() -> tuple[set[Executable], set[Executable]]:
    """The repositories' prepared statements on SQLite: module constants, and those built on first use
    (one per table and set of columns given, so other tests may have built more of them)."""
    constants: set[Executable] = set()
    for module_info in pkgutil.iter_modules(storage.repositories.__path__):
        module = importlib.import_module(f"storage.repositories.{module_info.name}")
        constants |= {value for value in vars(module).values() if isinstance(value, Executable) and is_prepared(value)}
    built_on_use = [statement for shape, statement in base._NEW_ROW_INSERTS.items() if shape[0] == "sqlite"]
    built_on_use += inbox._ADD_DONE["sqlite"].values()
    return constants, {statement for statement in built_on_use if is_prepared(statement)}


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    made: list[Engine] = []

    async def engine(name: str) -> Engine:
        made.append(created := make_engine(f"sqlite:///{tmp_path / name}"))
        assert isinstance(created, Engine)
        await upgrade(created)
        return created

    yield engine
    for created in made:
        created.dispose()


def transactions(connection: SQLiteConnection) -> Transactions:
    @asynccontextmanager
    async def transaction() -> AsyncIterator[Transaction]:
        with connection.sync_connection.begin():
            yield Transaction(Context(connection, PRIVACY, lambda: START, "sqlite"))

    return transaction


async def test_every_prepared_statement_reads_back_what_sqlalchemy_reads(engines: Any) -> None:
    fast = SQLiteConnection((await engines("fast.db")).connect())
    seen_fast = await a_childs_day(transactions(fast))
    through_sqlalchemy = SQLiteConnection((await engines("sqlalchemy.db")).connect(), fast=False)
    seen_sqlalchemy = await a_childs_day(transactions(through_sqlalchemy))

    assert fast.fast_path is not None
    constants, built_on_use = prepared_statements()
    assert constants <= fast.fast_path.statements <= constants | built_on_use  # each ran on the fast path
    # Built on first use here: the INSERTs of an update stored, of updates done (by one, four and twenty),
    # a conversation, a topic opening and a case; the case's leaves columns to their Python-side
    # defaults, which only SQLAlchemy's path fills in.
    assert len(fast.fast_path.statements - constants) == 6
    assert seen_fast == seen_sqlalchemy  # rows, types, rowcounts (as True/False), ids
    assert seen_fast[:4] == [1, 0, 2, 23] and seen_fast[-1][0].created_at.tzinfo is UTC


async def test_errors_are_sqlalchemys_and_never_quote_values(engines: Any) -> None:
    raised: dict[bool, list[exc.StatementError]] = {}
    for fast in (True, False):
        connection = SQLiteConnection((await engines(f"{fast}.db")).connect(), fast=fast)
        transaction, errors = transactions(connection), raised.setdefault(fast, [])
        with pytest.raises(exc.StatementError) as naive:
            async with transaction() as tx:
                await tx.outbox.retry_later(1, datetime(2025, 3, 1), "secret-reason-5551234")
        errors.append(naive.value)
        async with transaction() as tx:
            for number in ("5551234", "100002"):
                await tx.cases.create(number=number, **CASE)
        with pytest.raises(exc.IntegrityError) as taken:
            async with transaction() as tx:
                await tx.cases.update(2, number="5551234")  # numbers are unique
        errors.append(taken.value)
    for fast_error, sqlalchemy_error in zip(raised[True], raised[False], strict=True):
        assert type(fast_error) is type(sqlalchemy_error)
        assert type(fast_error.orig) is type(sqlalchemy_error.orig)
        assert str(fast_error) == str(sqlalchemy_error)
        assert "5551234" not in str(fast_error)
    assert isinstance(raised[True][0].orig, ValueError)
    assert "[SQL parameters hidden" in str(raised[True][1])


async def test_with_an_event_listener_every_statement_goes_sqlalchemys_way(engines: Any) -> None:
    engine = await engines("listened.db")
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    connection = SQLiteConnection(engine.connect())
    async with transactions(connection)() as tx:
        await tx.conversations.save("k1", "telegram", {"step": "start"})
        assert await tx.conversations.get("k1") is not None
    assert connection.fast_path is not None and connection.fast_path.statements == set()
    assert [sql.split()[0] for sql in seen] == ["INSERT", "SELECT"]


def test_the_fast_path_is_used_only_on_the_sqlalchemy_series_it_was_written_for() -> None:
    assert [written_for(version) for version in ("2.1.0", "2.1.9", "2.1.14")] == [True, True, True]
    assert [written_for(version) for version in ("2.0.40", "2.2.0", "3.0.0b1")] == [False, False, False]


async def test_on_another_sqlalchemy_version_it_says_so_once_and_takes_sqlalchemys_path(
    engines: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fast_path, "ACTIVE", False)
    with caplog.at_level(logging.WARNING, logger=fast_path.__name__):
        connection = SQLiteConnection((await engines("other.db")).connect())
        seen = await a_childs_day(transactions(connection))
    assert connection.fast_path is not None and connection.fast_path.statements == set()
    assert [record.message for record in caplog.records if "fast path for prepared statements" in record.message] != []
    assert len(caplog.records) == 1
    assert seen[:4] == [1, 0, 2, 23] and seen[-1][0].created_at.tzinfo is UTC


def test_statements_with_lists_of_values_take_sqlalchemys_path() -> None:
    from storage.repositories.outbox import _CLAIM

    assert fast_path.Plan.build(_CLAIM, ("ids", "now", "until", "owner"), SQLiteDialect_pysqlite()) is None


# PostgreSQL: the same day through asyncpg's fast path and through SQLAlchemy's, each on a database of its own.

@pytest.fixture
async def postgres_engines() -> AsyncIterator[Callable[[], Any]]:
    from tests.test_storage_postgres import POSTGRES_URL, _admin_engine

    admin = await _admin_engine()
    made: list[tuple[str, AsyncEngine]] = []

    async def engine() -> AsyncEngine:
        name = f"oberih_test_{uuid.uuid4().hex[:16]}"
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        created = make_engine(make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
        assert isinstance(created, AsyncEngine)
        made.append((name, created))
        await upgrade(created)
        return created

    yield engine
    for name, created in made:
        await created.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


def postgres_transactions(engine: AsyncEngine, fast: FastPath | None) -> Transactions:
    @asynccontextmanager
    async def transaction() -> AsyncIterator[Transaction]:
        async with postgres.transaction(engine, fast) as connection:
            yield Transaction(Context(connection, PRIVACY, lambda: START, "postgresql"))

    return transaction


async def test_on_postgresql_every_prepared_statement_reads_back_what_sqlalchemy_reads(postgres_engines: Any) -> None:
    engine = await postgres_engines()
    fast = FastPath(engine.dialect)
    seen_fast = await a_childs_day(postgres_transactions(engine, fast))
    seen_sqlalchemy = await a_childs_day(postgres_transactions(await postgres_engines(), None))

    constants, _built = prepared_statements()
    assert constants <= fast.statements  # each ran on the fast path
    assert seen_fast == seen_sqlalchemy
    assert seen_fast[:4] == [1, 0, 2, 23] and seen_fast[-1][0].created_at.tzinfo is UTC


async def test_on_postgresql_errors_are_sqlalchemys_and_never_quote_values(postgres_engines: Any) -> None:
    raised: dict[bool, list[exc.StatementError]] = {}
    for fast in (True, False):
        engine = await postgres_engines()
        transaction = postgres_transactions(engine, FastPath(engine.dialect) if fast else None)
        errors = raised.setdefault(fast, [])
        with pytest.raises(exc.StatementError) as naive:
            async with transaction() as tx:
                await tx.outbox.retry_later(1, datetime(2025, 3, 1), "secret-reason-5551234")
        errors.append(naive.value)
        async with transaction() as tx:
            for number in ("5551234", "100002"):
                await tx.cases.create(number=number, **CASE)
        with pytest.raises(exc.IntegrityError) as taken:
            async with transaction() as tx:
                await tx.cases.update(2, number="5551234")  # numbers are unique
        errors.append(taken.value)
        async with transaction() as tx:  # the connection is good again after both
            assert await tx.cases.by_number("100002") is not None
    for fast_error, sqlalchemy_error in zip(raised[True], raised[False], strict=True):
        assert type(fast_error) is type(sqlalchemy_error)
        assert getattr(fast_error.orig, "sqlstate", None) == getattr(sqlalchemy_error.orig, "sqlstate", None)
        assert "5551234" not in str(fast_error)
    assert isinstance(raised[True][0].orig, ValueError)


async def test_on_postgresql_a_connection_the_server_closed_is_replaced(postgres_engines: Any) -> None:
    engine = await postgres_engines()
    transaction = postgres_transactions(engine, FastPath(engine.dialect))
    async with transaction() as tx:
        await tx.conversations.save("k1", "telegram", {"step": "start"})
    async with engine.connect() as other:  # the server ends every other session of the database
        await other.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    await other.close()
    async with transaction() as tx:  # a closed connection is not handed out; no ping needed
        assert await tx.conversations.get("k1") is not None


async def test_on_postgresql_a_transaction_begins_with_its_first_statement(postgres_engines: Any) -> None:
    engine = await postgres_engines()
    commits: list[None] = []
    statements: list[object] = []

    @asynccontextmanager
    async def transaction() -> AsyncIterator[Transaction]:
        async with postgres.transaction(engine, FastPath(engine.dialect), statements.append,
                                        lambda: commits.append(None)) as connection:
            yield Transaction(Context(connection, PRIVACY, lambda: START, "postgresql"))

    async with transaction():
        pass  # no statement: no BEGIN, no COMMIT (two round trips saved)
    with pytest.raises(RuntimeError):
        async with transaction():
            raise RuntimeError("before any statement")
    assert commits == [] and statements == []
    async with transaction() as tx:
        await tx.conversations.save("k1", "telegram", {"step": "start"})
    assert len(commits) == 1
    with pytest.raises(RuntimeError):  # begun by its first statement: what it wrote is rolled back
        async with transaction() as tx:
            await tx.conversations.save("k2", "telegram", {"step": "start"})
            raise RuntimeError("after a statement")
    async with transaction() as tx:
        assert await tx.conversations.get("k1") is not None and await tx.conversations.get("k2") is None
    assert len(commits) == 2
