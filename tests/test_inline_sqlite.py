"""Prepared statements on SQLite skip SQLAlchemy's execution path and give exactly what it gives."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event, exc

from bot.privacy import Privacy
from storage import Database, inline_sqlite

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CASE = {"kind": "report", "channel": "telegram", "language": "uk", "country": "UA", "consent": "counsellor"}
PRIVACY = Privacy([Fernet.generate_key().decode()], "pepper")


@pytest.fixture
async def direct_runs(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    """The SQL of every statement that took the direct path."""
    runs: list[str] = []
    execute = inline_sqlite._execute

    def counted(driver: Any, sql: str, parameters: Any) -> Any:
        runs.append(sql)
        return execute(driver, sql, parameters)

    monkeypatch.setattr(inline_sqlite, "_execute", counted)
    yield runs


async def a_childs_day(db: Database) -> list[Any]:
    """What the repositories read back over a report's life, in order (ids, rows, counts, datetimes)."""
    seen: list[Any] = []
    async with db.transaction() as tx:
        seen.append(await tx.inbox.add_done("telegram", "1", "c:k1"))
        seen.append(await tx.inbox.add_done("telegram", "1", "c:k1"))  # a redelivery: None
        seen.append(await tx.conversations.save("k1", "telegram", {"step": "start"}, {"chat_id": 5}))
        conversation = await tx.conversations.get("k1")
        assert conversation is not None
        seen.append(await tx.conversations.save("k1", "telegram", {"step": "what"}, expected_version=1))
        seen.append(await tx.conversations.count_report("k1", "2025-03-01"))
        case = await tx.cases.create(number="100001", conversation_key="k1", answers={"what": "bullying"}, **CASE)
        seen.append(await tx.cases.open_for("k1"))
        seen.append(await tx.cases.update(case.id, operator_topic_id=77, urgent=True))
        seen.append(await tx.cases.by_operator_topic(77))
        seen.append(await tx.outbox.add("operator", "telegram", "case:1", "case_card", {"n": 1}, case_id=case.id))
        seen.append(await tx.outbox.add_leased("me", 60, "child", "telegram", "c:k1", "say", {"text": "hi"},
                                               conversation_key="k1", address={"chat_id": 5}))
        seen.append(await tx.outbox.add_leased("me", 60, "child", "telegram", "c:k1", "say", {"text": "2"},
                                               conversation_key="k1"))  # the lane waits: None
    async with db.transaction() as tx:
        first, second, third = (item.id for item in await tx.outbox.items())
        seen.append(await tx.outbox.mark_sent(second, {"message_ids": [10, 11]}))
        seen.append(await tx.outbox.mark_sent(second, None))  # no longer pending: False
        seen.append(await tx.outbox.retry_later(third, START + timedelta(minutes=1), "network"))
        seen.append(await tx.outbox.mark_failed(first, "chat not found"))
        await tx.chat_messages.add("k1", 10, True)
        seen.append(await tx.chat_messages.for_conversation("k1"))
        await tx.case_messages.add(case.id, "operator", 3, 4)
        seen.append(await tx.case_messages.by_staff_message("operator", 4))
        seen.append(await tx.staff.get(42))
        seen.append(conversation)
        seen.append(await tx.outbox.items())
    return seen


async def started(path: Path) -> Database:
    db = Database(f"sqlite:///{path}", PRIVACY, clock=lambda: START)
    await db.start()
    return db


async def test_prepared_statements_read_back_what_sqlalchemy_reads(tmp_path: Path, direct_runs: list[str]) -> None:
    direct = await started(tmp_path / "direct.db")
    seen_direct = await a_childs_day(direct)
    await direct.close()
    assert len(direct_runs) >= 20  # the step's statements took the direct path

    through_sqlalchemy = await started(tmp_path / "sqlalchemy.db")
    # An engine listener makes every statement go SQLAlchemy's way, so that listeners see them all.
    event.listen(through_sqlalchemy.engine.sync_engine, "before_cursor_execute", lambda *_: None)
    direct_runs.clear()
    seen_sqlalchemy = await a_childs_day(through_sqlalchemy)
    await through_sqlalchemy.close()
    assert direct_runs == []

    assert seen_direct == seen_sqlalchemy
    assert seen_direct[1] is None and seen_direct[-1][0].created_at.tzinfo is UTC


async def test_errors_are_sqlalchemys_and_never_quote_values(tmp_path: Path, direct_runs: list[str]) -> None:
    db = await started(tmp_path / "oberih.db")
    try:
        with pytest.raises(exc.StatementError) as naive:
            async with db.transaction() as tx:
                await tx.outbox.retry_later(1, datetime(2025, 3, 1), "secret-reason-5551234")
        assert isinstance(naive.value.orig, ValueError) and "5551234" not in str(naive.value)
        async with db.transaction() as tx:
            for number in ("5551234", "100002"):
                await tx.cases.create(number=number, **CASE)
        with pytest.raises(exc.IntegrityError) as taken:
            async with db.transaction() as tx:
                await tx.cases.update(2, number="5551234")  # numbers are unique
        assert "5551234" not in str(taken.value) and "[SQL parameters hidden" in str(taken.value)
        assert any(sql.startswith("UPDATE cases") for sql in direct_runs)
    finally:
        await db.close()


def test_statements_with_lists_of_values_take_sqlalchemys_path() -> None:
    from storage.repositories.outbox import _CLAIM

    assert inline_sqlite._Plan.build(_CLAIM, ("ids", "now", "until", "owner"), _dialect()) is None


def _dialect() -> Any:
    return inline_sqlite.InlineSQLiteDialect()
