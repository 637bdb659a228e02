"""Datetimes, sealing, staff and audit, statistics and message-id maps."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import exc

from storage import Database, Role, Target
from storage.models import Base
from tests import test_storage as shared
from tests.test_storage import CASE, SECRET, START, FakeClock, new_case

# pytest finds fixtures by name in the module: borrow the shared ones.
clock, database_url, db, privacy = shared.clock, shared.database_url, shared.db, shared.privacy


async def test_aware_datetimes_round_trip(db: Database, clock: FakeClock) -> None:
    kyiv = timezone(timedelta(hours=3))
    clock.now = datetime(2025, 7, 1, 15, 30, 45, 123456, tzinfo=kyiv)
    case_id = await new_case(db, "500001", checkin_due_at=datetime(2025, 7, 4, 9, 0, tzinfo=kyiv))
    async with db.transaction() as tx:
        case = await tx.cases.get(case_id)
    assert case is not None
    assert case.created_at == clock.now and case.created_at.tzinfo is UTC and case.created_at.hour == 12
    assert case.checkin_due_at == datetime(2025, 7, 4, 6, 0, tzinfo=UTC) and case.checkin_due_at.tzinfo is UTC
    with pytest.raises(exc.StatementError) as raised:
        async with db.transaction() as tx:
            await tx.cases.update(case_id, closed_at=datetime(2025, 7, 5), outcome="outcome-987654321")
    assert isinstance(raised.value.orig, ValueError)
    assert "987654321" not in str(raised.value)  # bound values never reach error messages (and so logs)


async def test_sealed_columns_hold_no_plaintext(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.conversations.save("k1", "telegram", {"draft": SECRET}, {"chat_id": 987654321})
        await tx.cases.create(number="600001", answers={"text": SECRET}, **CASE)
        await tx.outbox.add("child", "telegram", "c:k1", "say", {"text": SECRET})
        await tx.inbox.add("telegram", "1", "c:k1", {"message": {"text": SECRET, "chat": {"id": 987654321}}})
    dumps = await db.run_sync(lambda connection: {
        table.name: repr(connection.execute(table.select()).all()) for table in Base.metadata.sorted_tables
    })
    for name, dump in dumps.items():
        assert SECRET not in dump and "987654321" not in dump, name


async def test_staff_and_audit(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        member = await tx.staff.grant(10**12, "counsellor", "Olena", granted_by=1)
        assert (member.role, member.granted_at) == (Role.COUNSELLOR, START)
        clock.advance(minutes=1)
        await tx.staff.grant(10**12, Role.MODERATOR, "Olena K", granted_by=2)
        await tx.staff.grant(5, "admin", "Boss", granted_by=None)
        found = await tx.staff.get(10**12)
        assert found is not None and (found.role, found.alias, found.granted_by) == (Role.MODERATOR, "Olena K", 2)
        assert [m.user_id for m in await tx.staff.all()] == [5, 10**12]
        assert await tx.staff.revoke(5) is True and await tx.staff.revoke(5) is False
        assert await tx.staff.get(5) is None
        with pytest.raises(ValueError):
            await tx.staff.grant(6, "king", "X", None)
        first = await tx.audit.add(3, "Olena", 10**12, "accepted")
        await tx.audit.add(3, "system", None, "sla_reminder", "level 1")
        await tx.audit.add(4, "Olena", 10**12, "closed")
        entries = await tx.audit.for_case(3)
    assert [(e.id, e.action, e.detail) for e in entries] == [
        (first, "accepted", None),
        (first + 1, "sla_reminder", "level 1"),
    ]
    assert entries[0].at == clock.now


async def test_chat_and_case_messages(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        for message_id, from_bot in ((11, False), (12, True)):
            await tx.chat_messages.add("k1", message_id, from_bot)
        clock.advance(hours=47)
        await tx.chat_messages.add("k1", 13, True)
        await tx.chat_messages.add("k2", 99, True)
        assert await tx.chat_messages.for_conversation("k1") == [11, 12, 13]
        assert await tx.chat_messages.forget_before(clock.now - timedelta(hours=1)) == 2
        assert await tx.chat_messages.delete_for("k1") == 1
        assert await tx.chat_messages.for_conversation("k1") == []
        assert await tx.chat_messages.for_conversation("k2") == [99]
        await tx.case_messages.add(1, "operator", child_message_id=501, staff_message_id=9001)
        await tx.case_messages.add(1, Target.POLICE, child_message_id=501, staff_message_id=77)
        await tx.case_messages.add(1, "child", child_message_id=502, staff_message_id=9002)
        by_child = await tx.case_messages.by_child_message(1, 501)
        by_staff = await tx.case_messages.by_staff_message("operator", 9001)
        assert await tx.case_messages.by_staff_message("police", 9001) is None
    assert by_child is not None and (by_child.chat, by_child.staff_message_id) == (Target.POLICE, 77)
    assert by_staff is not None and (by_staff.case_id, by_staff.child_message_id) == (1, 501)


# --- hot-path statements are built once per process: each call must still bring its own values -----


async def test_prebuilt_conversation_statements_take_each_calls_values(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        assert await tx.conversations.save("k1", "telegram", {"n": 1}) == 1  # no address given: NULL
        assert await tx.conversations.save("k2", "viber", {"n": 2}, {"chat_id": 2}) == 1
        fresh = await tx.conversations.get("k1")
        assert fresh is not None and (fresh.address, fresh.reports_today, fresh.reports_day) == (None, 0, "")
        clock.advance(minutes=1)
        assert await tx.conversations.save("k1", "console", {"n": 3}, {"chat_id": 1}, expected_version=1) == 2
        assert await tx.conversations.save("k2", "viber", {"n": 4}, expected_version=1) == 2  # address kept
        assert await tx.conversations.save("k1", "console", {"n": 5}, expected_version=2) == 3  # address kept
        first, second = await tx.conversations.get("k1"), await tx.conversations.get("k2")
        assert await tx.conversations.get("k3") is None
    assert first is not None and second is not None
    assert (first.channel, first.state, first.address, first.version) == ("console", {"n": 5}, {"chat_id": 1}, 3)
    assert (second.channel, second.state, second.address, second.version) == ("viber", {"n": 4}, {"chat_id": 2}, 2)
    assert (first.created_at, first.updated_at, second.created_at, second.updated_at) == (
        START, clock.now, START, clock.now)


async def test_prebuilt_case_lookups_and_updates(db: Database) -> None:
    old = await new_case(db, "900001", conversation_key="k1")
    new = await new_case(db, "900002", conversation_key="k1")
    other = await new_case(db, "900003", conversation_key="k2")
    async with db.transaction() as tx:
        closed = await tx.cases.update(new, status="closed", outcome="helped")
        rated = await tx.cases.update(other, rating=5)  # other columns: nothing of the last update carries over
        assert (closed.status, closed.outcome, closed.rating) == ("closed", "helped", None)
        assert (rated.status, rated.outcome, rated.rating) == ("new", None, 5)
        assert (await tx.cases.open_for("k1")).id == old  # type: ignore[union-attr]
        assert (await tx.cases.latest_for("k1")).id == new  # type: ignore[union-attr]  # whatever its status
        assert (await tx.cases.open_for("k2")).id == other  # type: ignore[union-attr]
        assert await tx.cases.open_for("k3") is None and await tx.cases.latest_for("k3") is None
        assert (await tx.cases.get(old)).status == "new"  # type: ignore[union-attr]


async def test_prebuilt_inbox_statements(db: Database, clock: FakeClock) -> None:
    async with db.transaction() as tx:
        ids = [await tx.inbox.add("telegram", str(n), f"lane{n}", {"n": n}) for n in range(3)]
        assert [item.id for item in await tx.inbox.pending(1)] == ids[:1]
        assert [item.id for item in await tx.inbox.pending(5)] == ids
        assert [item.id for item in await tx.inbox.claim("me", 5, 60)] == ids
        clock.advance(seconds=3)
        assert await tx.inbox.mark_done(ids[1], "me")  # type: ignore[arg-type]
        pending = [(i.id, i.lane, i.payload, i.status, i.attempts, i.received_at) for i in await tx.inbox.pending(2)]
        done = await tx.inbox.get(ids[1])  # type: ignore[arg-type]
    assert pending == [
        (ids[0], "lane0", {"n": 0}, "pending", 0, START),
        (ids[2], "lane2", {"n": 2}, "pending", 0, START),
    ]
    assert done is not None
    assert (done.status, done.payload, done.done_at, done.error) == ("done", None, clock.now, None)

__all__ = [name for name in list(globals()) if name.startswith("test_") and not name.startswith("test_sqlite_")]
