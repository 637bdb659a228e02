"""Schema, conversations and cases on SQLite; tests not named test_sqlite_* also run on PostgreSQL."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import inspect, text

from bot.privacy import Privacy
from storage import (
    KEEP,
    CaseKind,
    CaseStatus,
    ConcurrentUpdate,
    Database,
    DuplicateNumber,
    NotFound,
    current_revision,
    head_revision,
    upgrade,
)
from storage.migrate import main as migrate_main
from storage.models import Base
from storage.sqlite import SQLITE_BUSY_TIMEOUT_MS

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "Мене шантажують фотографіями, допоможіть"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def privacy() -> Privacy:
    return Privacy([Fernet.generate_key().decode()], "pepper")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'oberih.db'}"


@pytest.fixture
async def db(database_url: str, privacy: Privacy, clock: FakeClock) -> AsyncIterator[Database]:
    database = Database(database_url, privacy, clock=clock)
    await database.start()
    try:
        yield database
    finally:
        await database.close()


CASE = {"kind": "report", "channel": "telegram", "language": "uk", "country": "UA", "consent": "counsellor"}


async def new_case(db: Database, number: str, **fields: object) -> int:
    async with db.transaction() as tx:
        return (await tx.cases.create(number=number, **(CASE | fields))).id


# --- schema ---------------------------------------------------------------------------------------


async def test_migrations_apply_from_scratch_and_match_models(db: Database) -> None:
    assert await current_revision(db.engine) == head_revision() == "0007_delivery"

    def differences(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
        return compare_metadata(context, Base.metadata)

    assert await db.run_sync(differences) == []
    tables = await db.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert set(Base.metadata.tables) | {"alembic_version"} == tables


async def test_start_twice_and_upgrade_by_url_are_idempotent(db: Database, database_url: str, privacy: Privacy) -> None:
    await upgrade(database_url)
    again = Database(database_url, privacy)
    await again.start()
    await again.start()
    assert await again.ping()
    await again.close()
    assert not await again.ping()


async def test_ping(db: Database) -> None:
    assert await db.ping() is True


async def test_transaction_rolls_back_on_exception(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.conversations.save("k1", "telegram", {"step": "a"})
            raise RuntimeError("boom")
    async with db.transaction() as tx:
        assert await tx.conversations.get("k1") is None


# --- conversations --------------------------------------------------------------------------------


async def test_conversation_round_trip_and_keep_address(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        assert await tx.conversations.save("k1", "telegram", {"step": "a"}, {"chat_id": 123}) == 1
    clock.advance(minutes=5)
    async with db.transaction() as tx:
        assert await tx.conversations.save("k1", "telegram", {"step": "b"}, expected_version=1) == 2
        found = await tx.conversations.get("k1")
    assert found is not None
    assert (found.state, found.address, found.version) == ({"step": "b"}, {"chat_id": 123}, 2)
    assert (found.created_at, found.updated_at) == (START, START + timedelta(minutes=5))
    async with db.transaction() as tx:
        await tx.conversations.save("k1", "telegram", {}, None, expected_version=2)
        assert (await tx.conversations.get("k1")).address is None  # type: ignore[union-attr]
        assert await tx.conversations.all_keys_count() == 1
    assert repr(KEEP) == "KEEP"


async def test_optimistic_version_conflict(db: Database, database_url: str, privacy: Privacy) -> None:
    async with db.transaction() as tx:
        await tx.conversations.save("k1", "telegram", {"n": 0})
    async with db.transaction() as tx:
        with pytest.raises(ConcurrentUpdate):
            await tx.conversations.save("k1", "telegram", {"n": 9})  # insert over an existing row
    other_process = Database(database_url, privacy)  # one process runs one SQLite transaction at a time
    await other_process.start()
    async with db.transaction() as first:
        seen = await first.conversations.get("k1")
        assert seen is not None
        async with other_process.transaction() as second:
            await second.conversations.save("k1", "telegram", {"n": 1}, expected_version=seen.version)
        with pytest.raises(ConcurrentUpdate):
            await first.conversations.save("k1", "telegram", {"n": 2}, expected_version=seen.version)
    await other_process.close()
    async with db.transaction() as tx:
        found = await tx.conversations.get("k1")
        with pytest.raises(ConcurrentUpdate):
            await tx.conversations.save("gone", "telegram", {}, expected_version=1)
    assert found is not None and (found.state, found.version) == ({"n": 1}, 2)


async def test_daily_report_count_restarts_each_day(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.conversations.save("k1", "viber", {})
        counts = [await tx.conversations.count_report("k1", day) for day in ("2025-03-01",) * 3 + ("2025-03-02",)]
        with pytest.raises(NotFound):
            await tx.conversations.count_report("missing", "2025-03-01")
        version = (await tx.conversations.get("k1")).version  # type: ignore[union-attr]
    assert counts == [1, 2, 3, 1]
    assert version == 1  # counting must not invalidate a draft being saved


async def test_stale_and_delete(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        await tx.conversations.save("old", "telegram", {})
        clock.advance(hours=80)
        await tx.conversations.save("new", "telegram", {})
        stale = await tx.conversations.stale(clock.now - timedelta(hours=72), limit=10)
        assert [found.key for found in stale] == ["old"]
        assert await tx.conversations.delete("old") is True
        assert await tx.conversations.delete("old") is False
        assert await tx.conversations.all_keys_count() == 1


# --- cases ----------------------------------------------------------------------------------------


async def test_case_create_lookup_and_duplicate_number(db: Database) -> None:
    async with db.transaction() as tx:
        case = await tx.cases.create(
            number="482913", conversation_key="k1", answers={"text": SECRET}, receipt_hash="r1", urgent=True, **CASE
        )
        assert (case.kind, case.status, case.answers) == (CaseKind.REPORT, CaseStatus.NEW, {"text": SECRET})
        assert (case.sla_level, case.checkin_sent, case.reply_wanted, case.created_at) == (0, False, False, START)
        with pytest.raises(DuplicateNumber):
            await tx.cases.create(number="482913", **CASE)
        # The transaction is still usable after a duplicate (no aborted PostgreSQL transaction).
        await tx.cases.update(case.id, operator_topic_id=77, police_topic_id=88)
    async with db.transaction() as tx:
        assert (await tx.cases.get(case.id)).number == "482913"  # type: ignore[union-attr]
        assert (await tx.cases.by_number("482913")).id == case.id  # type: ignore[union-attr]
        assert (await tx.cases.by_operator_topic(77)).id == case.id  # type: ignore[union-attr]
        assert (await tx.cases.by_police_topic(88)).id == case.id  # type: ignore[union-attr]
        assert (await tx.cases.by_receipt("r1")).id == case.id  # type: ignore[union-attr]
        assert await tx.cases.get(999) is None and await tx.cases.by_number("000000") is None
        with pytest.raises(TypeError):
            await tx.cases.create(number="1", kind="report")
        with pytest.raises(TypeError):
            await tx.cases.update(case.id, colour="red")
        with pytest.raises(ValueError):
            await tx.cases.update(case.id, status="lost")
        with pytest.raises(NotFound):
            await tx.cases.update(999, status="closed")


async def test_case_update_and_open_for(db: Database, clock: FakeClock) -> None:
    first = await new_case(db, "100001", conversation_key="k1")
    clock.advance(minutes=1)
    second = await new_case(db, "100002", conversation_key="k1")
    clock.advance(minutes=1)
    async with db.transaction() as tx:
        assert (await tx.cases.open_for("k1")).id == second  # type: ignore[union-attr]
        updated = await tx.cases.update(second, status=CaseStatus.CLOSED, closed_at=clock.now, answers={"a": 1})
        assert (updated.status, updated.answers, updated.updated_at) == (CaseStatus.CLOSED, {"a": 1}, clock.now)
        assert (await tx.cases.open_for("k1")).id == first  # type: ignore[union-attr]
        await tx.cases.update(first, status="spam")
        assert await tx.cases.open_for("k1") is None
        assert await tx.cases.count_by_status() == {"closed": 1, "spam": 1}


async def test_open_cases_come_oldest_first_with_what_staff_did_last(db: Database, clock: FakeClock) -> None:
    first = await new_case(db, "100011", conversation_key="k2")
    second = await new_case(db, "100012", conversation_key="k2")
    await new_case(db, "100013", conversation_key="k2", status=CaseStatus.CLOSED)
    async with db.transaction() as tx:
        await tx.audit.add(first, "Olena", 800003, "take")
        await tx.audit.add(first, "child", None, "urgent")  # the child's own doings are no news
    clock.advance(minutes=5)
    async with db.transaction() as tx:
        await tx.audit.add(first, "Olena", 800003, "answer", "operator")
    async with db.transaction() as tx:
        listed = await tx.cases.open_with_news("k2")
    assert [(n.case.id, n.staff_action, n.staff_at) for n in listed] == [(first, "answer", clock.now),
                                                                        (second, None, None)]


async def test_a_step_learns_in_one_read_whether_the_child_may_have_a_case_open(db: Database) -> None:
    async with db.transaction() as tx:
        for key in ("none", "sent", "reconnected", "closed"):
            await tx.conversations.save(key, "telegram", {"lang": "en"}, {"chat_id": 1})
    await new_case(db, "100021", conversation_key="sent")
    elsewhere = await new_case(db, "100022", conversation_key="another-device")
    await new_case(db, "100023", conversation_key="closed", status=CaseStatus.CLOSED)
    async with db.transaction() as tx:
        await tx.case_chats.add(elsewhere, "reconnected", "telegram")  # opened with the receipt code
    async with db.transaction() as tx:
        found = {key: await tx.conversations.for_step(key) for key in ("none", "sent", "reconnected", "closed", "new")}
    assert {key: may_have_cases for key, (_conversation, may_have_cases) in found.items()} == {
        "none": False, "sent": True, "reconnected": True, "closed": False, "new": True}  # no row: ask
    assert found["sent"][0] is not None and found["sent"][0].state == {"lang": "en"} and found["new"][0] is None


async def test_detach_conversation(db: Database) -> None:
    ids = [await new_case(db, f"20000{n}", conversation_key="child") for n in range(2)]
    other = await new_case(db, "300000", conversation_key="someone-else")
    async with db.transaction() as tx:
        detached = await tx.cases.detach_conversation("child")
        assert [case.id for case in detached] == ids
        assert all(case.conversation_key is None for case in detached)
        assert await tx.cases.open_for("child") is None
        assert (await tx.cases.get(other)).conversation_key == "someone-else"  # type: ignore[union-attr]
        assert await tx.cases.detach_conversation("child") == []


async def test_case_sweeps(db: Database, clock: FakeClock) -> None:
    urgent = await new_case(db, "400001", urgent=True)
    normal = await new_case(db, "400002")
    clock.advance(minutes=30)
    async with db.transaction() as tx:
        assert [c.id for c in await tx.cases.unaccepted(clock.now, urgent=True, below_level=1)] == [urgent]
        assert [c.id for c in await tx.cases.unaccepted(clock.now, urgent=False, below_level=1)] == [normal]
        assert await tx.cases.unaccepted(START, urgent=False, below_level=1) == []
        await tx.cases.update(urgent, sla_level=1)
        assert await tx.cases.unaccepted(clock.now, urgent=True, below_level=1) == []
        await tx.cases.update(normal, checkin_due_at=clock.now, status="closed", closed_at=clock.now)
        await tx.cases.update(urgent, checkin_due_at=clock.now + timedelta(days=1))
        assert [c.id for c in await tx.cases.checkins_due(clock.now)] == [normal]
        await tx.cases.update(normal, checkin_sent=True)
        assert await tx.cases.checkins_due(clock.now + timedelta(days=2)) == [await tx.cases.get(urgent)]
        assert await tx.cases.closed_before(clock.now) == []
        assert [c.id for c in await tx.cases.closed_before(clock.now + timedelta(seconds=1))] == [normal]
        await tx.case_messages.add(normal, "operator", child_message_id=5, staff_message_id=6)
        assert await tx.cases.delete(normal) is True
        assert await tx.cases.delete(normal) is False
        assert await tx.case_messages.for_case(normal) == []
        assert await tx.cases.count_by_status() == {"new": 1}


# --- SQLite only ----------------------------------------------------------------------------------


async def test_sqlite_pragmas(db: Database) -> None:
    values = await db.run_sync(lambda connection: [
        connection.execute(text(f"PRAGMA {name}")).scalar()
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    ])
    assert values == ["wal", 1, 1, SQLITE_BUSY_TIMEOUT_MS]  # synchronous 1 is NORMAL


async def test_sqlite_file_holds_no_plaintext(db: Database, tmp_path: Path) -> None:
    async with db.transaction() as tx:
        await tx.conversations.save("k1", "telegram", {"draft": SECRET}, {"chat_id": 987654321})
        await tx.cases.create(number="800001", answers={"text": SECRET, "media": ["file-id-xyz"]}, **CASE)
        await tx.outbox.add("child", "telegram", "c:k1", "say", {"text": SECRET})
        await tx.inbox.add("telegram", "1", "c:k1", {"message": {"text": SECRET}})
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("oberih.db*"))  # the file, its WAL and index
    assert raw, "no database file found"
    for needle in (SECRET, "шантажують", "987654321", "file-id-xyz"):
        assert needle.encode() not in raw
        assert needle.encode("unicode_escape") not in raw


async def test_sqlite_in_memory_transactions_do_not_mix(privacy: Privacy) -> None:
    database = Database("sqlite://", privacy)
    await database.start()

    async def save_then_fail(key: str, fail: bool) -> None:
        async with database.transaction() as tx:
            await tx.conversations.save(key, "console", {})
            await asyncio.sleep(0.01)
            if fail:
                raise RuntimeError("rolled back")

    try:
        both = save_then_fail("kept", fail=False), save_then_fail("lost", fail=True)
        results = await asyncio.gather(*both, return_exceptions=True)
        async with database.transaction() as tx:
            kept, lost = await tx.conversations.get("kept"), await tx.conversations.get("lost")
    finally:
        await database.close()
    assert results[0] is None and isinstance(results[1], RuntimeError)
    assert kept is not None and lost is None


def test_sqlite_migrate_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'cli.db'}"
    assert migrate_main([url]) == 0
    assert (tmp_path / "sub" / "cli.db").exists()


# Shared with test_storage_postgres.py: fixtures and every test not specific to SQLite.
__all__ = ["FakeClock", "clock", "db", "privacy"] + [
    name for name in list(globals()) if name.startswith("test_") and not name.startswith("test_sqlite_")
]
