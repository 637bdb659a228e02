"""Nothing outlives its purpose, in storage: a parked update's content goes after RETENTION_DAYS and at
the child's /forget, relayed-message links go with /forget, and a purged case's audit rows keep only
anonymous counts of what was done."""
from __future__ import annotations

from datetime import timedelta

from cryptography.fernet import Fernet

from bot.privacy import Privacy
from handlers.telegram.inbound import update_lane
from storage import Database, InboxStatus
from tests import test_storage as shared
from tests.test_storage import FakeClock, new_case

# pytest finds fixtures by name in the module: borrow the shared ones.
clock, database_url, db, privacy = shared.clock, shared.database_url, shared.db, shared.privacy


async def park(db: Database, external_id: str, lane: str) -> int:
    async with db.transaction() as tx:
        item = await tx.inbox.add("telegram", external_id, lane, {"message": {"text": "my name is Zlata"}})
        assert await tx.inbox.fail(item, "Boom", max_attempts=1)
    return item


async def inbox_rows(db: Database) -> dict[int, tuple]:
    rows = await db.run_sync(lambda connection: connection.exec_driver_sql(
        "SELECT id, lane, status, payload IS NULL FROM inbox").all())
    return {row[0]: tuple(row[1:]) for row in rows}


def test_the_forgetting_side_computes_the_lane_the_adapters_file_updates_under():
    sealer = Privacy([Fernet.generate_key().decode()], "pepper")
    update = {"update_id": 5, "message": {"message_id": 1, "chat": {"id": 4242, "type": "private"}, "text": "hi"}}
    assert update_lane(update, sealer.pseudonym) == sealer.inbox_lane("telegram", 4242)
    press = {"update_id": 6, "callback_query": {"id": "q", "from": {"id": 4242}, "message": {"chat": {"id": 4242}}}}
    assert update_lane(press, sealer.pseudonym) == sealer.inbox_lane("telegram", "4242")


async def test_forgetting_a_lane_wipes_its_parked_updates_and_keeps_them_counted(db: Database):
    mine, theirs = "tg:mine", "tg:theirs"
    parked, other = await park(db, "1", mine), await park(db, "2", theirs)
    async with db.transaction() as tx:
        later = await tx.inbox.add("telegram", "3", mine, {"message": {"text": "hello again"}})
        assert await tx.inbox.forget_lane(mine) == 1
        assert await tx.inbox.forget_lane(mine) == 0
        assert (await tx.inbox.get(parked)).payload is None
        assert (await tx.inbox.get(later)).payload == {"message": {"text": "hello again"}}  # written after /forget
        assert (await tx.inbox.get(other)).payload is not None
    rows = await inbox_rows(db)
    assert rows[parked] == ("-", "parked", 1)  # no content, no lane: only that something was parked
    assert rows[other] == (theirs, "parked", 0)


async def test_parked_updates_lose_their_content_after_the_retention_period(db: Database, clock: FakeClock):
    old = await park(db, "1", "tg:a")
    clock.advance(days=30)
    recent = await park(db, "2", "tg:b")
    async with db.transaction() as tx:
        assert await tx.inbox.wipe_parked(tx.now - timedelta(days=10)) == 1
        assert await tx.inbox.wipe_parked(tx.now - timedelta(days=10)) == 0
        assert (await tx.inbox.get(old)).status is InboxStatus.PARKED
    rows = await inbox_rows(db)
    assert rows[old] == ("-", "parked", 1) and rows[recent] == ("tg:b", "parked", 0)


async def test_relayed_message_links_go_with_the_cases_of_a_child_who_forgot(db: Database):
    kept, forgotten = await new_case(db, "800001"), await new_case(db, "800002")
    async with db.transaction() as tx:
        for case_id in (kept, forgotten, forgotten):
            await tx.case_messages.add(case_id, "operator", child_message_id=10, staff_message_id=case_id * 100)
        assert await tx.case_messages.delete_for_cases([forgotten]) == 2
        assert await tx.case_messages.delete_for_cases([]) == 0
        assert [link.case_id for link in await tx.case_messages.for_case(kept)] == [kept]
        assert await tx.case_messages.for_case(forgotten) == []


async def test_a_purged_cases_audit_keeps_only_anonymous_counts(db: Database, clock: FakeClock):
    purged, other = await new_case(db, "800003"), await new_case(db, "800004")
    async with db.transaction() as tx:
        await tx.audit.add(purged, "Olena", 800003, "take")
        clock.advance(hours=30)
        await tx.audit.add(purged, "Olena", 800003, "close", detail="advice")
        await tx.audit.add(purged, "child", None, "forget")
        await tx.audit.add(other, "Ada", 700001, "take")
        await tx.audit.add(None, "Ada", 700001, "grant", detail="counsellor")
        assert await tx.audit.anonymise_case(purged) == 3
        assert await tx.audit.for_case(purged) == []
        assert [entry.action for entry in await tx.audit.for_case(other)] == ["take"]
        assert await tx.audit.anonymous_counts() == {"take": 1, "close": 1, "forget": 1}
    rows = await db.run_sync(lambda connection: connection.exec_driver_sql(
        "SELECT action, actor_alias, actor_id, detail, at FROM audit WHERE case_id IS NULL AND action != 'grant' "
        "ORDER BY id").all())
    assert [row[:4] for row in rows] == [("take", "", None, None), ("close", "", None, None), ("forget", "", None, None)]
    assert all(str(row[4])[11:] == "00:00:00.000000" for row in rows)  # SQLite's text of a datetime
    assert len({str(row[4])[:10] for row in rows}) == 2  # the days stay, the times go
